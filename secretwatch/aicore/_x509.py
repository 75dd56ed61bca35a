"""Client certificates for the token request of an X.509 service key, loaded without
writing the private key to a file.

The standard library loads a certificate chain and its key only from paths
(``SSLContext.load_cert_chain``). A key given as text (a service key's ``key``,
``AICORE_KEY_STR``) is written into an anonymous in-memory file (``memfd_create``), loaded
through ``/proc/self/fd/N``, and the file is closed at once: it never has a name in a file
system, and it is gone as soon as it is closed (the key then lives in the ``SSLContext``).
Where there is no ``memfd_create`` (not Linux) such a key is refused with a message that
says to use files (``AICORE_CERT_FILE_PATH``/``AICORE_KEY_FILE_PATH``).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from secretwatch._http import tls_context
from secretwatch._memfd import NoMemfdError, in_memory, no_passphrase
from secretwatch.aicore._errors import AICoreError

__all__ = ["CertificateSource", "client_context", "load_from_memory"]


@dataclass(frozen=True, repr=False)
class CertificateSource:
    """A client certificate chain and its key: PEM text, or the paths of PEM files.

    ``where`` names them for messages ("the service key's certificate and key", ...);
    the repr never shows the text.
    """

    where: str
    cert_pem: str | None = None
    key_pem: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    @property
    def in_memory(self) -> bool:
        """Whether the key is text (loaded through an in-memory file), not a file."""
        return self.key_pem is not None

    def __repr__(self) -> str:
        return f"CertificateSource({self.where!r})"


def client_context(source: CertificateSource) -> ssl.SSLContext:
    """A TLS context that trusts what :func:`tls_context` trusts and presents ``source``'s
    whole certificate chain (leaf, then intermediates) with its key.

    Raises:
        AICoreError: they can't be loaded (naming ``source.where``, never their text).
    """
    try:
        context = tls_context()
    except ValueError as exc:
        raise AICoreError(str(exc)) from None
    if source.cert_pem is not None and source.key_pem is not None:
        load_from_memory(context, source.cert_pem, source.key_pem, where=source.where)
        return context
    assert source.cert_file is not None
    assert source.key_file is not None
    problem = ""
    try:
        context.load_cert_chain(source.cert_file, source.key_file, password=no_passphrase)
    except FileNotFoundError:
        problem = "a file does not exist"
    except PermissionError:
        problem = "a file can't be read (permission denied)"
    except (ssl.SSLError, OSError):
        problem = "not a PEM certificate chain and its unencrypted private key"
    if problem:  # raised outside the handler: an SSL error's text is not repeated
        raise AICoreError(f"{source.where} could not be loaded: {problem}")
    return context


def load_from_memory(context: ssl.SSLContext, cert_pem: str, key_pem: str, *, where: str) -> None:
    """Load ``cert_pem`` (the whole chain) and ``key_pem`` into ``context`` through
    in-memory files that are closed before this returns.

    Raises:
        AICoreError: no ``memfd_create`` here, or the text is not a certificate chain and
            its key (naming ``where``, never the text).
    """
    # a PEM pasted into one line has literal "\n"s, which SAP's SDK turns into newlines
    texts = [text.replace("\\n", "\n").encode() for text in (cert_pem, key_pem)]
    unavailable = failed = False
    try:
        with in_memory(*texts, name="secretwatch-x509") as paths:
            context.load_cert_chain(paths[0], paths[1], password=no_passphrase)
    except NoMemfdError:
        unavailable = True
    except (ssl.SSLError, OSError):
        failed = True
    if unavailable:
        raise AICoreError(
            f"{where} can't be loaded without writing the key to a file on this system (no "
            "memfd_create): give files instead (AICORE_CERT_FILE_PATH, AICORE_KEY_FILE_PATH)"
        )
    if failed:  # raised outside the handler: the SSL error is not chained
        raise AICoreError(
            f"{where} could not be loaded: not a PEM certificate chain and its "
            "unencrypted private key"
        )
