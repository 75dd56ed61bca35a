"""HTTP clients that bound a whole request in time, not each network operation.

Used by the AI Core client (:func:`bounded_client`) and by the sidecar's webhooks, which
send through the transport itself (:func:`bounded_transport`): a reload is one request to a
known address, and ``httpx.Client``'s machinery (auth flows, cookies, redirects, merging
defaults) cost more than the rest of a request on loopback.

httpx's timeouts bound each connect, read and write on its own: a server that sends one
byte a second keeps a request with a read timeout of 5 s going forever. Through a
:class:`DeadlineTransport`, every operation of a request's connection (the TCP connect, the
TLS handshake, each write and each read, of the response's body too) gets at most the time
left until the request's deadline, and none starts once that has passed: connect, send and
response together end within the transport's ``total`` seconds. No thread is needed: the
deadline is handed to the connection when the request opens it (a context variable), and
the connection keeps it. Connections are never reused, so a connection's deadline is its
request's.

httpx takes no network backend of its own (``httpx.HTTPTransport`` builds its httpcore
pool itself), so :class:`DeadlineTransport` is a small ``httpx.BaseTransport`` over an
httpcore pool with the bounding backend: a direct connection, or the HTTP proxy that the
environment names for the URL (:func:`environment_proxy`). A name that resolves to several
addresses is connected to one address at a time, each with what is left of the time (the
standard library would give each the whole timeout). The name lookup is the system
resolver's, bounded by its own timeouts (``/etc/resolv.conf``).
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import time
import urllib.request
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import Any

import httpcore
import httpx

__all__ = [
    "DeadlineTransport",
    "bounded_client",
    "bounded_transport",
    "ending_by",
    "environment_proxy",
    "tls_context",
]

# the deadline (time.monotonic()) of the request that is opening a connection
_OPENING: ContextVar[float] = ContextVar("secretwatch_deadline")
# a deadline of the caller's (a whole command's) that every request it sends ends by too
_UNTIL: ContextVar[float | None] = ContextVar("secretwatch_until", default=None)


@contextlib.contextmanager
def ending_by(until: float | None) -> Iterator[None]:
    """Every request sent through a :class:`DeadlineTransport` in this context (in this
    thread) ends by ``until`` (``time.monotonic()``) as well as within its own ``total``:
    so a token request made inside an auth flow obeys a whole command's deadline too.
    ``None`` adds no bound."""
    token = _UNTIL.set(until)
    try:
        yield
    finally:
        _UNTIL.reset(token)


class _Stream(httpcore.NetworkStream):
    """A connection whose every read, write and TLS handshake ends by ``deadline``."""

    def __init__(self, stream: httpcore.NetworkStream, deadline: float):
        self._stream = stream
        self._deadline = deadline

    def _left(self, timeout: float | None, error: type[httpcore.TimeoutException]) -> float:
        """The timeout of the next operation: ``timeout``, at most the time left; ``error``
        when none is."""
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise error("the request's deadline has passed")
        return left if timeout is None else min(timeout, left)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        # one call: a webhook's request (headers, a small JSON body) fits a send buffer
        self._stream.write(buffer, self._left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        timeout = self._left(timeout, httpcore.ConnectTimeout)
        tls = self._stream.start_tls(ssl_context, server_hostname, timeout)
        return _Stream(tls, self._deadline)

    def get_extra_info(self, info: str) -> object:
        return self._stream.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    """httpcore's own blocking backend, each connection bounded by its request's deadline."""

    def __init__(self) -> None:
        self._backend = httpcore.SyncBackend()

    def _left(self, timeout: float | None) -> tuple[float, float]:
        """The opening request's deadline, and the connect's timeout (at most what is left)."""
        deadline = _OPENING.get()
        left = deadline - time.monotonic()
        if left <= 0:
            raise httpcore.ConnectTimeout("the request's deadline has passed")
        return deadline, left if timeout is None else min(timeout, left)

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        deadline, _ = self._left(timeout)
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:  # the name does not resolve
            raise httpcore.ConnectError(str(exc)) from exc
        addresses = list(dict.fromkeys(str(address[4][0]) for address in found))
        failure: Exception = httpcore.ConnectError(f"no address for {host}")
        for address in addresses:  # each with what is left, not each the whole timeout
            _, left = self._left(timeout)
            try:
                stream = self._backend.connect_tcp(
                    address, port, left, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
                continue
            return _Stream(stream, deadline)
        raise failure

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        deadline, timeout = self._left(timeout)
        return _Stream(self._backend.connect_unix_socket(path, timeout, socket_options), deadline)

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def environment_proxy(url: httpx.URL) -> httpx.Proxy | None:
    """The proxy the environment names for ``url`` (``HTTPS_PROXY`` for an https URL...,
    else ``ALL_PROXY``), unless ``NO_PROXY`` exempts its host; ``ValueError`` for a proxy
    that is not http:// or https:// (a SOCKS proxy needs an extra that is not installed)."""
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(url.scheme) or proxies.get("all")
    bypass = urllib.request.proxy_bypass_environment(url.host, proxies)  # type: ignore[attr-defined]
    if not proxy or bypass:
        return None
    if "://" not in proxy:
        proxy = f"http://{proxy}"
    if not proxy.lower().startswith(("http://", "https://")):
        raise ValueError("the proxy that the environment names is not an http:// proxy")
    try:
        return httpx.Proxy(proxy)
    except httpx.InvalidURL:  # not quoted: a proxy's URL may hold credentials
        raise ValueError("the proxy that the environment names is not a valid URL") from None


# httpcore's errors as httpx's, the most specific first
_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextlib.contextmanager
def _as_httpx_errors() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for theirs, ours in _ERRORS:
            if isinstance(exc, theirs):
                raise ours(str(exc)) from exc
        raise


class _Body(httpx.SyncByteStream):
    """A response body read from the pool, its errors httpx's."""

    def __init__(self, stream: Iterable[bytes]):
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        with _as_httpx_errors():
            yield from self._stream

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


class DeadlineTransport(httpx.BaseTransport):
    """Sends each request on a new connection (through ``proxy`` when given) and ends it
    within ``total`` seconds of its start: connect, send, response and body reads (and by
    the deadline of an enclosing :func:`ending_by`, when that is sooner).

    Without an ``ssl_context`` it sends plain HTTP only, and refuses an https:// request
    (httpcore would otherwise make a context of its own, which ignores ``SSL_CERT_FILE``).
    """

    def __init__(
        self,
        *,
        total: float,
        ssl_context: ssl.SSLContext | None,
        proxy: httpx.Proxy | None = None,
    ):
        self._total = total
        self._tls = ssl_context is not None
        backend = _Backend()
        self._pool: httpcore.ConnectionPool
        if proxy is None:
            self._pool = httpcore.ConnectionPool(
                ssl_context=ssl_context, max_keepalive_connections=0, network_backend=backend
            )
        else:
            self._pool = httpcore.HTTPProxy(
                proxy_url=_core_url(proxy.url),
                proxy_auth=proxy.raw_auth,
                proxy_headers=proxy.headers.raw,
                ssl_context=ssl_context,
                proxy_ssl_context=proxy.ssl_context,
                max_keepalive_connections=0,
                network_backend=backend,
            )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request``; the response's body is read as it is iterated."""
        if request.url.scheme == "https" and not self._tls:
            raise httpx.UnsupportedProtocol("this transport was made for http:// only")
        core = httpcore.Request(
            method=request.method,
            url=_core_url(request.url),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        ends = time.monotonic() + self._total
        until = _UNTIL.get()
        opening = _OPENING.set(ends if until is None else min(ends, until))
        try:
            with _as_httpx_errors():
                response = self._pool.handle_request(core)
        finally:
            _OPENING.reset(opening)
        assert isinstance(response.stream, Iterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_Body(response.stream),
            extensions=response.extensions,
            request=request,
        )

    def close(self) -> None:
        """Close its connections."""
        self._pool.close()


def _core_url(url: httpx.URL) -> httpcore.URL:
    return httpcore.URL(
        scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
    )


def bounded_transport(
    url: str | httpx.URL, *, timeout: float, ssl_context: ssl.SSLContext | None = None
) -> DeadlineTransport:
    """A transport for requests to ``url``'s scheme and host, each of which ends within
    ``timeout`` seconds in all (connect, send and response, its body's reads included), on a
    new connection each, through the proxy the environment names for ``url``. For an
    https:// URL, it trusts the CA that ``SSL_CERT_FILE`` names when set; for an http://
    one, it makes no TLS context (loading the CA bundle takes tens of milliseconds).
    ``ssl_context`` replaces the https:// one (an X.509 token request's, which presents a
    client certificate; see ``aicore/_x509.py``).

    Raises:
        ValueError: the environment names a proxy that is not http:// or https://, or TLS
            certificates that can't be loaded.
    """
    url = httpx.URL(url)
    return DeadlineTransport(
        total=timeout,
        ssl_context=(ssl_context or tls_context()) if url.scheme == "https" else None,
        proxy=environment_proxy(url),
    )


def tls_context() -> ssl.SSLContext:
    """httpx's TLS context: certifi's CAs, or those of ``SSL_CERT_FILE`` (``SSL_CERT_DIR``)
    when set; ``ValueError`` naming the variable and its file when they can't be loaded."""
    try:
        return httpx.create_ssl_context()
    except OSError as exc:  # ssl.SSLError too: a file that holds no certificate
        variable = next((v for v in ("SSL_CERT_FILE", "SSL_CERT_DIR") if os.environ.get(v)), None)
        where = f"{variable}={os.environ[variable]}" if variable else "the CA bundle"
        reason = exc.strerror or getattr(exc, "reason", None) or type(exc).__name__
        raise ValueError(f"{where} cannot be loaded ({reason})") from None


def bounded_client(
    url: str | httpx.URL,
    *,
    timeout: float,
    ssl_context: ssl.SSLContext | None = None,
    **options: Any,
) -> httpx.Client:
    """An ``httpx.Client`` for requests to ``url``'s host through a :func:`bounded_transport`
    (each request ends within ``timeout`` seconds in all; ``ssl_context`` as there).
    ``options`` as for ``httpx.Client``.

    Raises:
        ValueError: as :func:`bounded_transport`.
    """
    transport = bounded_transport(url, timeout=timeout, ssl_context=ssl_context)
    return httpx.Client(timeout=timeout, transport=transport, trust_env=False, **options)
