"""PEM text loaded into an ``SSLContext`` without a named file on disk.

``SSLContext.load_cert_chain`` reads files only. :func:`in_memory` gives it paths that read
anonymous in-memory files (``memfd_create``, through ``/proc/self/fd/N``), closed when the
``with`` ends; off Linux, only when the caller allows it, files in a private temporary
directory (mode 0700), removed at once. :func:`no_passphrase` keeps OpenSSL from asking
for an encrypted key's passphrase on the terminal: such a key fails to load instead.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["NoMemfdError", "in_memory", "no_passphrase"]


class NoMemfdError(OSError):
    """This system has no ``memfd_create`` (or no ``/proc``), and no fallback was allowed."""


def no_passphrase() -> bytes:
    """``load_cert_chain``'s ``password``: an encrypted key fails to load, as with a wrong
    passphrase, and OpenSSL never prompts (which would hang past any deadline)."""
    return b""


@contextmanager
def in_memory(*contents: bytes, name: str, fallback: bool = False) -> Iterator[list[str]]:
    """Paths that read ``contents``, valid inside the ``with``.

    Raises:
        NoMemfdError: no ``memfd_create`` here and not ``fallback``.
    """
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is None or not os.path.isdir("/proc/self/fd"):
        if not fallback:
            raise NoMemfdError(f"no memfd_create on this system for {name}")
        with tempfile.TemporaryDirectory(prefix=f"{name}-") as scratch:
            paths = []
            for index, content in enumerate(contents):
                paths.append(os.path.join(scratch, str(index)))
                descriptor = os.open(paths[-1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                try:
                    _write_all(descriptor, content)
                finally:
                    os.close(descriptor)
            yield paths
        return
    descriptors: list[int] = []
    try:
        for content in contents:
            descriptors.append(memfd_create(name))  # MFD_CLOEXEC: not inherited
            _write_all(descriptors[-1], content)
        yield [f"/proc/self/fd/{descriptor}" for descriptor in descriptors]
    finally:
        for descriptor in descriptors:
            os.close(descriptor)


def _write_all(descriptor: int, content: bytes) -> None:
    view = memoryview(content)
    while view:
        view = view[os.write(descriptor, view) :]
