"""A TLS server context that presents the latest valid pair of a ``kubernetes.io/tls``
volume, as controller-runtime's certwatcher does for Go's ``tls.Config.GetCertificate``.

    context = server_context("/etc/tls")  # tls.crt and tls.key, followed
    server.socket = context.wrap_socket(server.socket, server_side=True)
    ...
    context.close()  # stops following

Each new handshake gets the pair in force when it starts: the returned context's
``sni_callback`` switches the connection to an inner context loaded with the volume's
current snapshot (one snapshot: a certificate is never paired with another version's key).
Connections already open keep the pair they were made with. A new pair is loaded into a
scratch context before it is accepted (``validate``): a pair that does not load is rejected,
the previous one goes on being served, and the watcher's ``last_error`` says why.

uvicorn (0.47 and later) takes such a context from ``Config``'s ``ssl_context_factory``::

    uvicorn.Config(app, ssl_context_factory=lambda config, default: server_context("/etc/tls"))

:func:`client_context` is the mutual-TLS client's side: each new connection presents the
pair in force (pooled connections keep theirs; see :class:`FollowingClientContext`).

The private key is never written to a named file: ``load_cert_chain`` reads it from an
anonymous in-memory file (``memfd_create``) through ``/proc/self/fd/N``, closed at once.
Off Linux (no ``memfd_create``) a private temporary directory (mode 0700) holds the two
files for the length of the load and is removed at once.
"""

from __future__ import annotations

import os
import socket
import ssl
import threading
from collections.abc import Callable

from secretwatch import SecretWatcher, Snapshot, ValidationError, watch
from secretwatch._memfd import in_memory, no_passphrase

_MEMFD = "secretwatch-tls"  # the name of its in-memory files (/proc/self/fd)

__all__ = ["FollowingClientContext", "FollowingContext", "client_context", "server_context"]


class FollowingContext(ssl.SSLContext):
    """An :class:`ssl.SSLContext` that hands each new handshake the pair in force.

    ``watcher`` follows the pair's volume (``last_error``, ``wait_for_change``...);
    ``ca_watcher`` the separate CA path, when one was given. :meth:`close` stops them.
    """

    watcher: SecretWatcher
    ca_watcher: SecretWatcher | None

    def close(self) -> None:
        """Stop following: new handshakes keep the last pair loaded."""
        self.watcher.stop()
        if self.ca_watcher is not None:
            self.ca_watcher.stop()


def server_context(
    path: str | os.PathLike[str],
    *,
    cert: str = "tls.crt",
    key: str = "tls.key",
    ca: str | os.PathLike[str] | None = None,
    configure: Callable[[ssl.SSLContext], object] | None = None,
) -> FollowingContext:
    """A server context presenting the latest valid ``cert``/``key`` pair of the volume at
    ``path`` (started watching; :meth:`FollowingContext.close` stops it).

    Args:
        path: the ``kubernetes.io/tls`` volume (or any directory with the two keys).
        cert: the key holding the certificate chain (PEM, leaf first).
        key: the key holding its unencrypted private key (PEM).
        ca: CA certificates (PEM) that client certificates are verified with: a key of
            the same volume (a name such as ``"ca.crt"``), or the path of another volume
            or file (absolute, or a :class:`os.PathLike`), followed too. It sets
            ``verify_mode`` to ``CERT_REQUIRED``; ``configure`` may change that.
        configure: called with every context made (the listening one and each inner
            one) to set ciphers, ALPN, ``verify_mode``... (OpenSSL takes ``verify_mode``
            from the listening context, the CAs and the rest from the inner one).

    Raises:
        secretwatch.SecretWatchError: the volume can't be read, or its first pair does not
            load (naming the path and keys, never their content).
    """
    context = FollowingContext(ssl.PROTOCOL_TLS_SERVER)
    if ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED  # OpenSSL keeps the listening one's mode
    if configure is not None:
        configure(context)  # before watching: nothing to stop if it raises
    pair = _follow(path, cert, key, ca, configure, server=True)
    context.watcher = pair.watcher
    context.ca_watcher = pair.ca_source

    def switch(connection: ssl.SSLObject, server_name: str | None, _: ssl.SSLContext) -> None:
        connection.context = pair.current()

    context.sni_callback = switch
    return context


def _follow(
    path: str | os.PathLike[str],
    cert: str,
    key: str,
    ca: str | os.PathLike[str] | None,
    configure: Callable[[ssl.SSLContext], object] | None,
    *,
    server: bool,
) -> _Pair:
    """The pair of the volume at ``path`` and its CA (a key there, or another path),
    followed: the watchers are started (and stopped again if the second can't start)."""
    ca_key = ca if isinstance(ca, str) and not os.path.isabs(ca) else None
    pair = _Pair(cert, key, ca_key, configure, server=server)
    if ca is not None and ca_key is None:
        pair.ca_source = watch(ca, decoders={"*": "bytes"}, validate=_check_ca)
    try:
        pair.watcher = watch(path, decoders={"*": "bytes"}, validate=pair.check)
    except BaseException:
        if pair.ca_source is not None:
            pair.ca_source.stop()
        raise
    return pair


class _Pair:
    """The inner context for the volume's current snapshot, made once per version."""

    watcher: SecretWatcher
    ca_source: SecretWatcher | None = None

    def __init__(
        self,
        cert: str,
        key: str,
        ca_key: str | None,
        configure: Callable[[ssl.SSLContext], object] | None,
        *,
        server: bool,
    ):
        self._cert, self._key, self._ca_key = cert, key, ca_key
        self._configure = configure
        self._server = server
        self._lock = threading.Lock()
        self._made: tuple[tuple[int, int], ssl.SSLContext] | None = None

    def check(self, snapshot: Snapshot) -> None:
        """``validate``: the pair (and a CA of the same volume) load, into a scratch context."""
        self._load(snapshot, self._ca_pem())

    def current(self) -> ssl.SSLContext:
        """The inner context for the snapshots in force (made on the first handshake after
        a change: they were validated, so it loads)."""
        snapshot = self.watcher.snapshot
        ca = self.ca_source.snapshot if self.ca_source is not None else None
        versions = (snapshot.version, ca.version if ca is not None else 0)
        made = self._made
        if made is not None and made[0] == versions:
            return made[1]
        with self._lock:
            made = self._made
            if made is None or made[0] != versions:
                made = (versions, self._load(snapshot, self._ca_pem(ca)))
                self._made = made
            return made[1]

    def _ca_pem(self, ca: Snapshot | None = None) -> bytes | None:
        if self.ca_source is None:
            return None
        snapshot = ca if ca is not None else self.ca_source.snapshot
        return _joined(snapshot)

    def _load(self, snapshot: Snapshot, ca_pem: bytes | None) -> ssl.SSLContext:
        wanted = [self._cert, self._key] + ([self._ca_key] if self._ca_key else [])
        missing = [name for name in wanted if name not in snapshot]
        if missing:
            raise ValidationError(f"no {', '.join(missing)} in the volume")
        if self._server:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        elif self._ca_key is None and ca_pem is None:
            context = ssl.create_default_context()  # the system's CAs
        else:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # only the CA given
        if self._configure is not None:
            self._configure(context)
        try:
            with in_memory(
                snapshot.raw(self._cert), snapshot.raw(self._key), name=_MEMFD, fallback=True
            ) as paths:
                context.load_cert_chain(paths[0], paths[1], password=no_passphrase)
        except (ssl.SSLError, OSError):
            failed = True
        else:
            failed = False
        if failed:  # raised outside the handler: the SSL error is not chained
            raise ValidationError(
                f"{self._cert} and {self._key} are not a PEM certificate chain and its "
                "unencrypted private key"
            )
        if self._ca_key is not None:
            _load_ca(context, bytes(snapshot.raw(self._ca_key)), self._ca_key)
        elif ca_pem is not None:
            _load_ca(context, ca_pem, "the CA path")
        return context


class FollowingClientContext(ssl.SSLContext):
    """A client :class:`ssl.SSLContext` whose new connections present the pair in force.

    OpenSSL's client side has no per-handshake certificate callback that Python exposes,
    so each ``wrap_socket``/``wrap_bio`` (what ``http.client``, ``httpx``/``httpcore``,
    ``asyncio`` and ``anyio`` call for each new connection) is handed to an inner context
    loaded with the volume's current snapshot. Connections already open keep their pair:
    a connection pool (``httpx.Client``) goes on using its kept-alive connections with the
    old certificate until they are closed; servers that refuse the old certificate close
    them, and the pool then connects anew with the new one. The settings of this outer
    context are not used: give them to ``configure``.
    """

    watcher: SecretWatcher
    ca_watcher: SecretWatcher | None
    _pair: _Pair

    def current(self) -> ssl.SSLContext:
        """The inner context new connections are made with now."""
        return self._pair.current()

    def wrap_socket(  # noqa: PLR0917  # the arguments of SSLContext.wrap_socket
        self,
        sock: socket.socket,
        server_side: bool = False,
        do_handshake_on_connect: bool = True,
        suppress_ragged_eofs: bool = True,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLSocket:
        """``wrap_socket`` of :meth:`current`."""
        return self.current().wrap_socket(
            sock,
            server_side,
            do_handshake_on_connect,
            suppress_ragged_eofs,
            server_hostname,
            session,
        )

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        """``wrap_bio`` of :meth:`current`."""
        return self.current().wrap_bio(incoming, outgoing, server_side, server_hostname, session)

    def close(self) -> None:
        """Stop following: new connections keep the last pair loaded."""
        self.watcher.stop()
        if self.ca_watcher is not None:
            self.ca_watcher.stop()


def client_context(
    path: str | os.PathLike[str],
    *,
    cert: str = "tls.crt",
    key: str = "tls.key",
    ca: str | os.PathLike[str] | None = None,
    configure: Callable[[ssl.SSLContext], object] | None = None,
) -> FollowingClientContext:
    """A mutual-TLS client context presenting the latest valid ``cert``/``key`` pair of the
    volume at ``path`` on each new connection (see :class:`FollowingClientContext`).

    Args:
        path: the volume with the client's pair.
        cert: the key holding the client certificate chain (PEM, leaf first).
        key: the key holding its unencrypted private key (PEM).
        ca: the CA certificates that server certificates are verified with, instead of
            the system's: a key of the same volume (``"ca.crt"``), or the path of another
            volume or file, followed too. Without it, the system's CAs.
        configure: called with each inner context (``check_hostname``, ALPN...).

    Raises:
        secretwatch.SecretWatchError: the volume can't be read, or its first pair does not
            load (naming the path and keys, never their content).

    Examples:
        >>> context = client_context("/etc/client-tls", ca="ca.crt")  # doctest: +SKIP
        >>> with httpx.Client(verify=context) as http:  # doctest: +SKIP
        ...     http.get("https://api.internal/")
    """
    pair = _follow(path, cert, key, ca, configure, server=False)
    context = FollowingClientContext(ssl.PROTOCOL_TLS_CLIENT)
    context.watcher = pair.watcher
    context.ca_watcher = pair.ca_source
    context._pair = pair
    return context


def _check_ca(snapshot: Snapshot) -> None:
    """``validate`` of a separate CA path: its PEM certificates load."""
    _load_ca(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), _joined(snapshot), "the CA path")


def _joined(snapshot: Snapshot) -> bytes:
    return b"\n".join(bytes(snapshot.raw(key)) for key in sorted(snapshot))


def _load_ca(context: ssl.SSLContext, pem: bytes, where: str) -> None:
    try:
        context.load_verify_locations(cadata=pem.decode("ascii"))
    except (ssl.SSLError, ValueError):
        failed = True
    else:
        failed = False
    if failed:
        raise ValidationError(f"{where} holds no PEM CA certificates")
