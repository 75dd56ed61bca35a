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

import os
import ssl
from dataclasses import dataclass

from secretwatch._http import tls_context
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


def _NO_PASSPHRASE() -> bytes:
    """An encrypted key fails to load, as a wrong passphrase: OpenSSL never asks for one on
    the terminal (which would hang a command past its deadline)."""
    return b""


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
        context.load_cert_chain(source.cert_file, source.key_file, password=_NO_PASSPHRASE)
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
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is None or not os.path.isdir("/proc/self/fd"):
        raise AICoreError(
            f"{where} can't be loaded without writing the key to a file on this system (no "
            "memfd_create): give files instead (AICORE_CERT_FILE_PATH, AICORE_KEY_FILE_PATH)"
        )
    # a PEM pasted into one line has literal "\n"s, which SAP's SDK turns into newlines
    texts = [text.replace("\\n", "\n").encode() for text in (cert_pem, key_pem)]
    descriptors: list[int] = []
    failed = False
    try:
        for text in texts:
            descriptor = memfd_create("secretwatch-x509")  # MFD_CLOEXEC: not inherited
            descriptors.append(descriptor)
            view = memoryview(text)
            while view:
                view = view[os.write(descriptor, view) :]
        paths = [f"/proc/self/fd/{descriptor}" for descriptor in descriptors]
        try:
            context.load_cert_chain(paths[0], paths[1], password=_NO_PASSPHRASE)
        except (ssl.SSLError, OSError):
            failed = True
    finally:
        for descriptor in descriptors:
            os.close(descriptor)
    if failed:  # raised outside the handler: the SSL error is not chained
        raise AICoreError(
            f"{where} could not be loaded: not a PEM certificate chain and its "
            "unencrypted private key"
        )
