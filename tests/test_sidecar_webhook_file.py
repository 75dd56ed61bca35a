"""``--webhook-file``: webhook URLs from a file (a mounted secret), followed like a volume,
their credentials never on the command line nor in the output."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from secretwatch.testing import AtomicVolume

from .sidecar import Receiver, Sidecar

CANARY = "CANARY-webhook-file-2c81"


@pytest.fixture
def receivers() -> Iterator[tuple[Receiver, Receiver]]:
    first, second = Receiver(), Receiver()
    try:
        yield first, second
    finally:
        first.close()
        second.close()


@pytest.fixture
def vol(tmp_path: Path) -> AtomicVolume:
    volume = AtomicVolume(tmp_path / "secret")
    volume.write({"token": CANARY + "-1"})
    return volume


@pytest.fixture
def urls(tmp_path: Path) -> AtomicVolume:
    """The secret that holds the webhook's URL, as the kubelet mounts it."""
    return AtomicVolume(tmp_path / "webhook")


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_webhooks_come_from_a_file_and_follow_its_rotation(
    vol: AtomicVolume, urls: AtomicVolume, receivers: tuple[Receiver, Receiver]
) -> None:
    """The file's URLs are called on a change, with the credentials they hold, which show
    in no log nor in the process's arguments; a rotation of the file brings its new URLs,
    used from the next change on; a --webhook given too comes first."""
    first, second = receivers
    urls.write({"url": "# the reload endpoint\n" + first.url(userinfo=f"app:{CANARY}@") + "\n"})
    with Sidecar(
        *("watch", str(vol.path), "--debounce", "0", "--webhook", second.url("/direct")),
        *("--webhook-file", str(urls.path / "url")),
    ) as sidecar:
        watching = sidecar.event("secretwatch.watching")
        assert len(watching["actions"]) == 2
        assert CANARY not in Path(f"/proc/{sidecar.process.pid}/cmdline").read_text()
        vol.write({"token": CANARY + "-2"})
        assert second.request().path == "/direct"  # #1, from --webhook
        request = first.request()  # #2, from the file
        assert request.headers["Authorization"] == basic("app", CANARY)
        assert request.json()["version"] == 2
        urls.write({"url": first.url("/rotated", userinfo=f"app:{CANARY}-new@")})
        sidecar.event("secretwatch.webhooks_changed", webhooks=1)
        vol.write({"token": CANARY + "-3"})
        assert second.request().path == "/direct"
        request = first.request()
        assert (request.path, request.headers["Authorization"]) == (
            "/rotated",
            basic("app", CANARY + "-new"),
        )
        assert sidecar.stop() == 0
    assert CANARY not in sidecar.output()


def test_a_bad_version_of_the_file_keeps_the_webhooks_in_force(
    vol: AtomicVolume, urls: AtomicVolume, receivers: tuple[Receiver, Receiver]
) -> None:
    """A version of the file with a line that is not a URL is rejected (the file and the
    line named, never the line), and the webhooks in force stay."""
    first, _ = receivers
    urls.write({"url": first.url(userinfo=f"app:{CANARY}@")})
    with Sidecar(
        *("watch", str(vol.path), "--debounce", "0"),
        *("--webhook-file", str(urls.path / "url")),
    ) as sidecar:
        sidecar.event("secretwatch.watching")
        urls.write({"url": f"{first.url()}\nftp://{CANARY}.example/\n"})
        rejected = sidecar.event("secretwatch.rejected")
        assert rejected["path"] == str(urls.path / "url")
        assert "URL 2 is not an http:// or https:// URL" in rejected["error"]
        vol.write({"token": CANARY + "-2"})
        assert first.request().headers["Authorization"] == basic("app", CANARY)
        assert sidecar.stop() == 0
    assert CANARY not in sidecar.output()


@pytest.mark.parametrize("content", [None, "# nothing but a comment\n", f"not a URL {CANARY}"])
def test_a_file_that_names_no_webhook_is_refused_at_start(
    vol: AtomicVolume, urls: AtomicVolume, content: str | None
) -> None:
    """A webhook file that is missing, empty or not URLs stops the sidecar at start (exit
    1), naming the file, never its content."""
    if content is not None:
        urls.write({"url": content})
    with Sidecar("watch", str(vol.path), "--webhook-file", str(urls.path / "url")) as sidecar:
        failed = sidecar.event("secretwatch.start_failed")
        assert failed["webhook_file"] == str(urls.path / "url")
        assert sidecar.wait() == 1
    assert CANARY not in sidecar.output()


def test_a_webhook_the_environment_cant_serve_is_refused_like_a_bad_url(
    vol: AtomicVolume, urls: AtomicVolume, tmp_path: Path
) -> None:
    """An https:// URL with TLS certificates that can't be loaded (SSL_CERT_FILE) is a bad
    version of the file, as a line that is not a URL is: refused at start in one line (no
    traceback), naming the variable, never the URL."""
    urls.write({"url": f"https://app:{CANARY}@127.0.0.1:1/reload"})
    with Sidecar(
        *("watch", str(vol.path), "--webhook-file", str(urls.path / "url")),
        env={"SSL_CERT_FILE": str(tmp_path / "missing.pem")},
    ) as sidecar:
        failed = sidecar.event("secretwatch.start_failed")
        assert "SSL_CERT_FILE" in failed["error"]
        assert sidecar.wait() == 1
    assert "Traceback" not in sidecar.output()
    assert CANARY not in sidecar.output()
