"""The sidecar's HTTP endpoint: it answers, sleeps while idle, and close() wakes it at once."""

from __future__ import annotations

import httpx
import pytest

from secretwatch._sidecar.metrics import Metrics
from secretwatch._sidecar.server import StatusServer


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0", "::"])  # every interface, v4 and v6
def test_close_wakes_the_waiting_server(host: str) -> None:
    """The server thread waits for a request with no timeout (no polling while idle), so
    close() has to wake it: the thread has ended when close() returns, and the port is free."""
    try:
        server = StatusServer((host, 0), healthy=lambda: True, ready=bool, metrics=Metrics())
    except OSError as exc:  # no IPv6 here
        pytest.skip(f"cannot listen on {host}: {exc.strerror}")
    server.start()
    url = f"http://{'[::1]' if ':' in host else '127.0.0.1'}:{server.address[1]}"
    assert httpx.get(f"{url}/healthz").status_code == 200
    assert httpx.get(f"{url}/readyz").status_code == 503
    server.close()
    assert not server._thread.is_alive()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/healthz")
    server.close()  # again: nothing left to do


def test_close_before_start() -> None:
    """A server that never started closes without waiting for a thread."""
    server = StatusServer(("127.0.0.1", 0), healthy=bool, ready=bool, metrics=Metrics())
    server.close()
    assert not server._thread.is_alive()
