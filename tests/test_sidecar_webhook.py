"""The sidecar's webhook against hostile servers: bounded in time, in memory, and at SIGTERM."""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from secretwatch._cli.sidecar.actions import ActionError, Event, Webhook
from secretwatch._http import bounded_transport
from secretwatch.testing import AtomicVolume

from .conftest import TIMEOUT
from .hostile_webhooks import (
    HostileServer,
    Unaccepting,
    flood,
    silent,
    tls_server_context,
    trickle,
    trickle_body,
)
from .sidecar import Receiver, Sidecar

CANARY = "CANARY-webhook-5c1a"
MIB = 1 << 20


@pytest.fixture
def vol(tmp_path: Path) -> AtomicVolume:
    volume = AtomicVolume(tmp_path / "secret")
    volume.write({"token": CANARY + "-1"})
    return volume


def watching(vol: AtomicVolume, *urls: str, options: tuple[str, ...] = (), **env: str) -> Sidecar:
    webhooks = [arg for url in urls for arg in ("--webhook", url)]
    return Sidecar("watch", str(vol.path), *webhooks, "--debounce", "0", *options, env=env)


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_trickling_server_fails_the_attempt_at_the_timeout(
    vol: AtomicVolume, tmp_path: Path, scheme: str
) -> None:
    """A response sent a byte every 0.5 s, forever: --webhook-timeout ends the attempt
    (connect, send and response together), and the retry comes."""
    tls, cert_file = tls_server_context(tmp_path) if scheme == "https" else (None, None)
    env = {"SSL_CERT_FILE": str(cert_file)} if cert_file else {}
    options = ("--webhook-timeout", "1", "--webhook-retries", "1")
    with (
        HostileServer(trickle, tls=tls) as server,
        watching(vol, server.url(f"/reload?token={CANARY}"), options=options, **env) as sidecar,
    ):
        sidecar.event("secretwatch.watching")
        vol.write({"token": CANARY + "-2"})
        server.connection()
        first = sidecar.event("secretwatch.action_failed", action="webhook", attempt=1)
        assert "ReadTimeout" in first["error"]
        assert "1.0 s" in first["error"]
        server.connection()  # the retry
        sidecar.event("secretwatch.action_failed", action="webhook", attempt=2)
        sidecar.event("secretwatch.action_gave_up", action="webhook")
        assert sidecar.stop() == 0
    assert CANARY not in sidecar.output()


def test_a_trickling_body_after_the_status_is_cut_off(vol: AtomicVolume) -> None:
    """A 200 whose body trickles forever: the status decided, so the attempt is done, and
    the body's drain ends by --webhook-timeout with the connection closed."""
    with (
        HostileServer(trickle_body, tls=None) as server,
        watching(vol, server.url(), options=("--webhook-timeout", "1")) as sidecar,
    ):
        sidecar.event("secretwatch.watching")
        vol.write({"token": CANARY + "-2"})
        sidecar.event("secretwatch.action_done", action="webhook", attempt=1)
        assert server.client_closed.wait(TIMEOUT), "the connection stayed open"
        assert server.connections.qsize() == 1  # done: no retry
        assert sidecar.stop() == 0


HOSTILE = {
    "trickling": lambda: HostileServer(trickle, tls=None),
    "silent": lambda: HostileServer(silent, tls=None),
    "unaccepting": Unaccepting,
}


@pytest.mark.parametrize("kind", HOSTILE)
def test_sigterm_ends_the_sidecar_whatever_the_server_does(vol: AtomicVolume, kind: str) -> None:
    """SIGTERM during an attempt on a server that trickles, never answers or never accepts:
    the attempt ends by --webhook-timeout, no retry follows, and the sidecar exits 0."""
    make: Callable[[], HostileServer | Unaccepting] = HOSTILE[kind]  # type: ignore[assignment]
    with (
        make() as server,
        watching(vol, server.url(), options=("--webhook-timeout", "2")) as sidecar,
    ):
        sidecar.event("secretwatch.watching")
        vol.write({"token": CANARY + "-2"})
        if isinstance(server, HostileServer):
            server.connection()  # the attempt is under way
        else:
            sidecar.event("secretwatch.changed", volume_version=2)
        assert sidecar.stop() == 0  # fails when it still runs after TIMEOUT (10 s)
        assert sidecar.event("secretwatch.stopping")
    failed = [line for line in sidecar.lines if "secretwatch.action_failed" in line]
    assert len(failed) <= 1  # the running attempt, and no retry


def test_sigterm_skips_the_other_webhooks_of_the_change(vol: AtomicVolume) -> None:
    """SIGTERM while the first of two webhooks runs: it finishes (by its timeout), the second
    is not called but reported as skipped."""
    with (
        HostileServer(trickle, tls=None) as first,
        HostileServer(trickle, tls=None) as second,
        watching(vol, first.url(), second.url(), options=("--webhook-timeout", "2")) as sidecar,
    ):
        sidecar.event("secretwatch.watching")
        vol.write({"token": CANARY + "-2"})
        first.connection()
        assert sidecar.stop() == 0
        skipped = sidecar.event("secretwatch.actions_skipped", volume_version=2)
        assert skipped["actions"] == [f"#2 http://127.0.0.1:{second.port}/..."]
        assert second.connections.empty()


def test_run_exits_on_sigterm_during_a_trickling_webhook(vol: AtomicVolume) -> None:
    """``run``: SIGTERM reaches the command at once, and ``run`` exits with its exit code
    once the running attempt has ended by --webhook-timeout."""
    child = (
        "import signal; signal.signal(signal.SIGHUP, signal.SIG_IGN); "
        "print('ready', flush=True); signal.pause()"
    )
    with (
        HostileServer(trickle, tls=None) as server,
        Sidecar(
            "run",
            str(vol.path),
            "--debounce",
            "0",
            "--on-change",
            "signal:HUP",
            "--webhook",
            server.url(),
            "--webhook-timeout",
            "2",
            "--",
            sys.executable,
            "-c",
            child,
        ) as sidecar,
    ):
        assert sidecar.stdout.get(timeout=TIMEOUT) == "ready\n"  # SIGHUP is ignored now
        vol.write({"token": CANARY + "-2"})
        server.connection()
        assert sidecar.stop() == 128 + 15  # the command's: ended by SIGTERM


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (the peak) of a process, in bytes."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        fields = dict(line.split(":", 1) for line in status)
    return {name: int(fields[name].split()[0]) * 1024 for name in ("VmRSS", "VmHWM")}


@pytest.mark.parametrize(
    ("scheme", "chunked"),
    [("http", False), ("http", True), ("https", False)],
    ids=["content-length", "chunked", "https"],
)
def test_a_huge_response_body_is_not_read(
    vol: AtomicVolume, tmp_path: Path, scheme: str, chunked: bool
) -> None:
    """A 200 with a 1 GiB body: the status decides, at most a few KiB of the body are read,
    the connection is closed, and the sidecar's memory stays as it was."""
    tls, cert_file = tls_server_context(tmp_path) if scheme == "https" else (None, None)
    env = {"SSL_CERT_FILE": str(cert_file)} if cert_file else {}
    with (
        HostileServer(flood(chunked=chunked), tls=tls) as server,
        watching(vol, server.url(), **env) as sidecar,
    ):
        sidecar.event("secretwatch.watching")
        before = memory(sidecar.process.pid)["VmRSS"]
        vol.write({"token": CANARY + "-2"})
        sidecar.event("secretwatch.action_done", action="webhook", attempt=1)
        assert server.client_closed.wait(TIMEOUT), "the sidecar read on: the connection stayed open"
        grown = memory(sidecar.process.pid)["VmHWM"] - before
        assert grown < 20 * MIB, f"the sidecar grew by {grown / MIB:.0f} MiB"
        assert sidecar.stop() == 0


def test_the_webhook_goes_through_the_environments_proxy(vol: AtomicVolume) -> None:
    """HTTP_PROXY is honoured (the proxy gets the absolute URL), and NO_PROXY bypasses it."""
    proxy, direct = Receiver(), Receiver()
    try:
        env = {"HTTP_PROXY": proxy.url(""), "NO_PROXY": "localhost"}
        with watching(vol, "http://upstream.invalid:8080/reload", **env) as sidecar:
            sidecar.event("secretwatch.watching")
            vol.write({"token": CANARY + "-2"})
            assert proxy.request().path == "http://upstream.invalid:8080/reload"
            sidecar.event("secretwatch.action_done", action="webhook")
            assert sidecar.stop() == 0
        url = f"http://localhost:{direct.port}/reload"
        with watching(vol, url, **env) as sidecar:
            sidecar.event("secretwatch.watching")
            vol.write({"token": CANARY + "-3"})
            assert direct.request().path == "/reload"
            sidecar.event("secretwatch.action_done", action="webhook")
            assert sidecar.stop() == 0
        assert proxy.requests.empty()
    finally:
        proxy.close()
        direct.close()


def test_a_socks_proxy_is_refused_clearly(vol: AtomicVolume) -> None:
    """A proxy the webhook can't use (SOCKS) is a usage error naming the webhook, not a
    traceback, and the proxy's URL (it may hold credentials) is not shown."""
    env = {"ALL_PROXY": "socks5://proxy-user:proxy-password@127.0.0.1:1080"}
    with watching(vol, "http://upstream.invalid/reload", **env) as sidecar:
        assert sidecar.wait() == 2
    output = sidecar.output()
    assert "--webhook: webhook #1: the proxy that the environment names is not an http://" in output
    assert "Traceback" not in output
    assert "proxy-password" not in output


@pytest.mark.parametrize("content", [None, b"not a certificate"], ids=["missing", "not-pem"])
def test_tls_certificates_that_cant_be_loaded_are_refused_clearly(
    vol: AtomicVolume, tmp_path: Path, content: bytes | None
) -> None:
    """An SSL_CERT_FILE that is missing or holds no certificate stops an https:// webhook's
    sidecar at start with exit 2 and one line naming the variable and its file, not a
    traceback; the webhook's URL (it may hold credentials) is not shown."""
    cert_file = tmp_path / "ca.pem"
    if content is not None:
        cert_file.write_bytes(content)
    url = f"https://user:{CANARY}@upstream.invalid/reload"
    with watching(vol, url, SSL_CERT_FILE=str(cert_file)) as sidecar:
        assert sidecar.wait() == 2
    output = sidecar.output()
    assert f"--webhook: webhook #1: SSL_CERT_FILE={cert_file} cannot be loaded (" in output
    assert "Traceback" not in output
    assert CANARY not in output


def test_an_http_webhook_needs_no_tls_certificates(vol: AtomicVolume, tmp_path: Path) -> None:
    """An http:// webhook makes no TLS context: an SSL_CERT_FILE that can't be loaded (set
    for another program of the pod) does not stop it, and each change is still posted."""
    receiver = Receiver()
    try:
        missing = str(tmp_path / "missing.pem")
        with watching(vol, receiver.url("/reload"), SSL_CERT_FILE=missing) as sidecar:
            sidecar.event("secretwatch.watching")
            vol.write({"token": CANARY + "-2"})
            assert receiver.request().path == "/reload"
            sidecar.event("secretwatch.action_done", action="webhook")
            assert sidecar.stop() == 0
    finally:
        receiver.close()


def test_a_transport_made_for_http_refuses_https() -> None:
    """A transport made without a TLS context (for an http:// URL) refuses an https://
    request instead of letting httpcore make a context that ignores SSL_CERT_FILE."""
    transport = bounded_transport("http://127.0.0.1:9/", timeout=1)
    try:
        with pytest.raises(httpx.UnsupportedProtocol):
            transport.handle_request(httpx.Request("POST", "https://127.0.0.1:9/"))
    finally:
        transport.close()


def test_the_addresses_of_a_name_share_one_attempts_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A name that resolves to many addresses, none answering, fails the attempt at its
    timeout: the addresses share it (the standard library gives each the whole timeout, so
    eight took eight times as long, and a stop waited for it)."""
    first = Unaccepting("127.0.0.2")
    servers = [first] + [Unaccepting(f"127.0.0.{i}", first.port) for i in range(3, 10)]
    found = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (s.host, s.port)) for s in servers]
    resolve = socket.getaddrinfo

    def many(host: str, *args: Any, **kwargs: Any) -> Any:
        return found if host == "many.invalid" else resolve(host, *args, **kwargs)

    # the resolver, the one part that can't be made for real here: a name with 8 addresses
    monkeypatch.setattr(socket, "getaddrinfo", many)
    webhook = Webhook(f"http://many.invalid:{first.port}/", method="POST", status=200, timeout=1)
    started = time.monotonic()
    try:
        with pytest.raises(ActionError, match="ConnectTimeout, not done within 1"):
            webhook(Event("/secret", 2, ("token",)))
        assert time.monotonic() - started < 4  # one timeout, not eight
    finally:
        webhook.close()
        for server in servers:
            server.close()


def test_a_url_that_is_not_utf8_is_refused_without_a_byte_of_it(vol: AtomicVolume) -> None:
    """A webhook URL with a byte that is not UTF-8 (a lone surrogate once decoded) is a usage
    error naming the webhook, not the codec's message quoting the character."""
    url = "http://127.0.0.1:1/" + os.fsdecode(b"\xff") + CANARY
    with Sidecar("watch", str(vol.path), "--once", "--webhook", url) as sidecar:
        assert sidecar.wait() == 2
    assert "webhook #1 is not a valid URL" in sidecar.output()
    assert CANARY not in sidecar.output()
    assert "codec" not in sidecar.output()
