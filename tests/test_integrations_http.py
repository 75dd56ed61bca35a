"""secretwatch.integrations.http against a real HTTP server that rotates its accepted
credential before the volume follows (the kubelet delivers up to a minute late)."""

from __future__ import annotations

import asyncio
import base64
import queue
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from pydantic_settings import BaseSettings
from structlog.testing import LogCapture

import secretwatch
from secretwatch.integrations.http import BasicAuth, BearerAuth
from secretwatch.testing import AtomicVolume

from .conftest import TIMEOUT

CANARY = "CANARY-7f3a-http-auth-do-not-leak"
OLD = CANARY + "-old"
NEW = CANARY + "-new"
FAST: secretwatch.WatchOptions = {"debounce": 0}
SHORT = 0.2  # refresh_timeout where no newer version comes: the test waits it out


class RotatingServer:
    """Accepts one ``Authorization`` value (rotated by the test); records every request."""

    def __init__(self, accepted: str):
        self.accepted = accepted
        self.seen: queue.SimpleQueue[tuple[str | None, bytes]] = queue.SimpleQueue()
        self.refused = threading.Event()  # set once a request got its 401
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.body()
                authorization = self.headers.get("Authorization")
                server.seen.put((authorization, body))
                ok = authorization == server.accepted
                self.send_response(200 if ok else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()
                if not ok:
                    server.refused.set()

            def body(self) -> bytes:
                if self.headers.get("Transfer-Encoding") != "chunked":
                    return self.rfile.read(int(self.headers.get("Content-Length", 0)))
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0], 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()  # the CRLF after the chunk
                self.rfile.readline()  # the CRLF after the last (empty) chunk
                return b"".join(chunks)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/api"

    def requests(self) -> list[tuple[str | None, bytes]]:
        """Every request received so far."""
        received = []
        while not self.seen.empty():
            received.append(self.seen.get_nowait())
        return received

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(TIMEOUT)


def bearer(token: str) -> str:
    return f"Bearer {token}"


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


@pytest.fixture
def volume(tmp_path: Path) -> AtomicVolume:
    vol = AtomicVolume(tmp_path / "api-token")
    vol.write({"token": OLD, "other": "x"})
    return vol


@pytest.fixture
def watcher(volume: AtomicVolume) -> Iterator[secretwatch.SecretWatcher]:
    with secretwatch.watch(volume.path, **FAST) as secrets:
        yield secrets


@pytest.fixture
def server() -> Iterator[RotatingServer]:
    rotating = RotatingServer(bearer(NEW))  # rotated: the volume still holds OLD
    yield rotating
    rotating.close()


def rotate_after_refusal(server: RotatingServer, volume: AtomicVolume) -> threading.Thread:
    """A thread that writes the new token to the volume once the server refused the old."""

    def rotate() -> None:
        assert server.refused.wait(TIMEOUT)
        volume.write({"token": NEW, "other": "x"})

    thread = threading.Thread(target=rotate)
    thread.start()
    return thread


def assert_no_canary(logs: LogCapture, *texts: str) -> None:
    for text in (str(logs.entries), *texts):
        assert CANARY not in text


def test_sync_401_waits_for_the_new_token_and_retries_once(
    watcher: secretwatch.SecretWatcher,
    volume: AtomicVolume,
    server: RotatingServer,
    logs: LogCapture,
) -> None:
    """A 401 with the old token is followed by one retry, body included, with the new token."""
    auth = BearerAuth(watcher, "token", refresh_timeout=TIMEOUT)
    rotating = rotate_after_refusal(server, volume)
    with httpx.Client(auth=auth) as client:
        response = client.post(server.url, content=b"payload")
    rotating.join(TIMEOUT)
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [401]
    assert server.requests() == [(bearer(OLD), b"payload"), (bearer(NEW), b"payload")]
    assert [e["event"] for e in logs.entries if e["event"].startswith("secretwatch.http")] == [
        "secretwatch.http_auth_retry"
    ]
    assert_no_canary(logs, repr(auth), repr(response.request.headers))


def test_sync_401_without_a_newer_version_is_returned(
    watcher: secretwatch.SecretWatcher, server: RotatingServer, logs: LogCapture
) -> None:
    """With no newer version within refresh_timeout the 401 is the response, after one request."""
    with httpx.Client(auth=BearerAuth(watcher, "token", refresh_timeout=SHORT)) as client:
        url = server.url.replace("//", f"//user:{CANARY}@") + f"?key={CANARY}"
        response = client.post(url, content=b"payload")
    assert response.status_code == 401
    assert server.requests() == [(bearer(OLD), b"payload")]
    (refused,) = [e for e in logs.entries if e["event"] == "secretwatch.http_auth_refused"]
    assert refused["url"] == server.url
    assert [e["event"] for e in logs.entries if e["event"].startswith("secretwatch.http")] == [
        "secretwatch.http_auth_refused"
    ]
    assert_no_canary(logs)


def test_a_second_401_is_returned_never_a_third_request(
    watcher: secretwatch.SecretWatcher, volume: AtomicVolume, server: RotatingServer
) -> None:
    """A retry that is refused too ends the request: two requests at most, never a loop."""
    server.accepted = bearer("something else entirely")
    rotating = rotate_after_refusal(server, volume)
    with httpx.Client(auth=BearerAuth(watcher, "token", refresh_timeout=TIMEOUT)) as client:
        response = client.post(server.url, content=b"payload")
    rotating.join(TIMEOUT)
    assert response.status_code == 401
    assert server.requests() == [(bearer(OLD), b"payload"), (bearer(NEW), b"payload")]


def test_a_change_of_other_keys_is_not_a_new_token(
    watcher: secretwatch.SecretWatcher, volume: AtomicVolume, server: RotatingServer
) -> None:
    """A new version whose token is the same is waited past: the retry carries the new token."""

    def rotate() -> None:
        assert server.refused.wait(TIMEOUT)
        seen = watcher.snapshot.version
        volume.write({"token": OLD, "other": "y"})
        assert watcher.wait_for_change(TIMEOUT, since=seen) is not None
        volume.write({"token": NEW, "other": "y"})

    thread = threading.Thread(target=rotate)
    thread.start()
    with httpx.Client(auth=BearerAuth(watcher, "token", refresh_timeout=TIMEOUT)) as client:
        response = client.post(server.url, content=b"payload")
    thread.join(TIMEOUT)
    assert response.status_code == 200
    assert server.requests() == [(bearer(OLD), b"payload"), (bearer(NEW), b"payload")]


def test_async_401_waits_off_the_event_loop_and_retries_once(
    watcher: secretwatch.SecretWatcher, volume: AtomicVolume, server: RotatingServer
) -> None:
    """The async flow retries with the new token and streamed body; the loop runs meanwhile."""

    async def main() -> httpx.Response:
        async def rotate() -> None:  # on the loop: it could not run if the auth blocked it
            assert await asyncio.to_thread(server.refused.wait, TIMEOUT)
            volume.write({"token": NEW, "other": "x"})

        async def body() -> AsyncIterator[bytes]:  # read once by nature: aread() keeps it
            yield b"pay"
            yield b"load"

        auth = BearerAuth(watcher, "token", refresh_timeout=TIMEOUT)
        async with httpx.AsyncClient(auth=auth) as client:
            rotating = asyncio.create_task(rotate())
            response = await client.post(server.url, content=body())
            await rotating
        return response

    response = asyncio.run(main())
    assert response.status_code == 200
    assert server.requests() == [(bearer(OLD), b"payload"), (bearer(NEW), b"payload")]


def test_async_401_without_a_newer_version_is_returned(
    watcher: secretwatch.SecretWatcher, server: RotatingServer
) -> None:
    """The async flow returns the 401 after refresh_timeout, after one request."""

    async def main() -> httpx.Response:
        auth = BearerAuth(watcher, "token", refresh_timeout=SHORT)
        async with httpx.AsyncClient(auth=auth) as client:
            return await client.post(server.url, content=b"payload")

    assert asyncio.run(main()).status_code == 401
    assert server.requests() == [(bearer(OLD), b"payload")]


def test_async_wait_takes_no_thread(
    watcher: secretwatch.SecretWatcher, server: RotatingServer
) -> None:
    """Waiting for a newer token after a 401 runs on the loop: no executor thread is started."""

    async def main() -> list[str]:
        async with httpx.AsyncClient(auth=BearerAuth(watcher, "token", refresh_timeout=SHORT)) as c:
            assert (await c.post(server.url)).status_code == 401
        return [t.name for t in threading.enumerate() if t.name.startswith("asyncio_")]

    assert asyncio.run(main()) == []


def test_a_cancelled_async_request_stops_waiting(
    watcher: secretwatch.SecretWatcher, server: RotatingServer
) -> None:
    """Cancelling a request that waits for a newer token ends it, long before refresh_timeout."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        auth = BearerAuth(watcher, "token", refresh_timeout=600.0)
        with ThreadPoolExecutor(1, thread_name_prefix="test-wait") as pool:
            async with httpx.AsyncClient(auth=auth) as client:
                request = asyncio.create_task(client.post(server.url))
                assert await loop.run_in_executor(pool, server.refused.wait, TIMEOUT)
                request.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await asyncio.wait_for(request, TIMEOUT)

    asyncio.run(main())


def test_a_stopped_source_returns_the_401_without_waiting(
    watcher: secretwatch.SecretWatcher, server: RotatingServer
) -> None:
    """A stopped watcher will bring no newer token: the 401 is returned, not waited on."""
    watcher.stop()
    auth = BearerAuth(watcher, "token", refresh_timeout=600.0)  # a wait would time the test out
    with httpx.Client(auth=auth) as client:
        assert client.post(server.url).status_code == 401

    async def main() -> httpx.Response:
        async with httpx.AsyncClient(auth=auth) as client:
            return await client.post(server.url)

    assert asyncio.run(main()).status_code == 401
    assert len(server.requests()) == 2


class Api(BaseSettings):
    username: str
    password: SecretStr


def test_basic_auth_follows_live_settings_fields(tmp_path: Path, logs: LogCapture) -> None:
    """BasicAuth reads both fields of one LiveSettings instance (SecretStr unwrapped), retrying."""
    volume = AtomicVolume(tmp_path / "api")
    volume.write({"username": "app", "password": OLD})
    server = RotatingServer(basic("app", NEW))
    try:
        with secretwatch.watch_settings(Api, secrets_dir=volume.path, watch_options=FAST) as live:
            auth = BasicAuth(live, "username", "password", refresh_timeout=TIMEOUT)

            def rotate() -> None:
                assert server.refused.wait(TIMEOUT)
                volume.write({"username": "app", "password": NEW})

            thread = threading.Thread(target=rotate)
            thread.start()
            with httpx.Client(auth=auth) as client:
                response = client.post(server.url, content=b"payload")
            thread.join(TIMEOUT)
    finally:
        server.close()
    assert response.status_code == 200
    assert server.requests() == [
        (basic("app", OLD), b"payload"),
        (basic("app", NEW), b"payload"),
    ]
    assert repr(auth) == (
        "BasicAuth(username_key='username', password_key='password', refresh_timeout=10.0)"
    )
    assert_no_canary(logs, repr(auth))


def test_unknown_field_is_refused_by_name(tmp_path: Path) -> None:
    """A field the model does not have is refused when the auth is made, naming model and field."""
    volume = AtomicVolume(tmp_path / "api")
    volume.write({"username": "app", "password": OLD})
    with (
        secretwatch.watch_settings(Api, secrets_dir=volume.path, watch_options=FAST) as live,
        pytest.raises(ValueError, match="Api has no field 'pasword'"),
    ):
        BasicAuth(live, "username", "pasword")


def test_missing_key_and_bad_token_are_refused_without_the_value(
    watcher: secretwatch.SecretWatcher, volume: AtomicVolume, server: RotatingServer
) -> None:
    """A missing key, or a token with a newline inside, is an error naming the key, not value."""
    with (
        httpx.Client(auth=BearerAuth(watcher, "tokn")) as client,
        pytest.raises(KeyError, match="has no key 'tokn'") as missing,
    ):
        client.post(server.url)
    seen = watcher.snapshot.version
    volume.write({"token": f"{OLD}\n{OLD}", "other": "x"})
    assert watcher.wait_for_change(TIMEOUT, since=seen) is not None
    with (
        httpx.Client(auth=BearerAuth(watcher, "token")) as client,
        pytest.raises(ValueError, match="the token of 'token'") as bad,
    ):
        client.post(server.url)
    assert server.requests() == []
    assert_no_canary(LogCapture(), str(missing.value), str(bad.value))


def test_surrounding_whitespace_of_a_token_is_dropped(
    watcher: secretwatch.SecretWatcher, volume: AtomicVolume, server: RotatingServer
) -> None:
    """A token file ending in a newline (written with echo) sends the token without it."""
    seen = watcher.snapshot.version
    volume.write({"token": NEW + "\n", "other": "x"})
    assert watcher.wait_for_change(TIMEOUT, since=seen) is not None
    with httpx.Client(auth=BearerAuth(watcher, "token")) as client:
        assert client.post(server.url, content=b"payload").status_code == 200


@pytest.mark.parametrize("timeout", [-1, float("nan"), float("inf"), "5"])
def test_refresh_timeout_must_be_finite_seconds(
    watcher: secretwatch.SecretWatcher, timeout: object
) -> None:
    """A negative, infinite or non-number refresh_timeout is refused when the auth is made."""
    with pytest.raises(ValueError, match="refresh_timeout"):
        BearerAuth(watcher, "token", refresh_timeout=timeout)  # type: ignore[arg-type]


def test_a_streamed_body_is_sent_again_with_the_retry(
    watcher: secretwatch.SecretWatcher, volume: AtomicVolume, server: RotatingServer
) -> None:
    """A body from a generator (read once by nature) is read first, so the retry carries it."""
    rotating = rotate_after_refusal(server, volume)
    with httpx.Client(auth=BearerAuth(watcher, "token", refresh_timeout=TIMEOUT)) as client:
        response = client.post(server.url, content=iter([b"pay", b"load"]))
    rotating.join(TIMEOUT)
    assert response.status_code == 200
    assert server.requests() == [(bearer(OLD), b"payload"), (bearer(NEW), b"payload")]
