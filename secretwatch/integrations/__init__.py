"""Drop-in integrations: a rotated credential followed where services use it.

- :mod:`secretwatch.integrations.tls`: TLS server and client contexts that present the
  latest valid pair of a ``kubernetes.io/tls`` volume (standard library ``ssl``);
- :mod:`secretwatch.integrations.http`: ``httpx`` authentication (bearer, basic) read from
  the current snapshot per request (the ``httpx`` extra);
- :mod:`secretwatch.integrations.sqlalchemy`: an engine's logins follow rotated database
  credentials (the ``sqlalchemy`` extra).

Import the module you use: each imports only its own library, and nothing here is loaded
by ``import secretwatch``. This wing sits above the library's (``_read``, ``_watch``,
``_settings``) and uses only the public API's objects; nothing below imports it.
"""
