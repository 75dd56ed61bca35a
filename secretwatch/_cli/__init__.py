"""The command line, ``secretwatch`` and ``python -m secretwatch``: ``show``, ``demo``,
``rotate`` and ``status`` (``aicore``), and the sidecar (``watch`` and ``run``, in
``sidecar``), which shares the command line's configuration.

The top wing: it may import every other (``_settings``, ``_watch``, ``_read``), the public
``aicore`` and ``testing`` packages, and the leaves; nothing but ``__main__`` and the
console script imports it. Entry point: :func:`main.main`.
"""
