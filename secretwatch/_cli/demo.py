"""``secretwatch demo``: rotate a kubelet-style volume and show what a watcher sees.

Runs anywhere, needs nothing: the volume lives in a temporary directory and is written by
the test kit exactly as the kubelet writes it. Prints keys and versions, never a value.
"""

from __future__ import annotations

import json
import queue
import secrets as random_tokens
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from secretwatch._errors import SecretWatchError
from secretwatch._read.snapshot import Change
from secretwatch._watch.watcher import watch

if TYPE_CHECKING:  # imported by the demo alone: the test kit is no part of the other commands
    from secretwatch.testing import AtomicVolume

__all__ = ["run_demo"]

_TIMEOUT = 10.0


def run_demo(out: TextIO) -> int:
    """Run the demo, writing its report to ``out``; return the exit code."""
    from secretwatch.testing import AtomicVolume  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="secretwatch-demo-") as tmp:
        volume = AtomicVolume(Path(tmp) / "my-generic-secret")
        config = '{"endpoint": "https://api.example.com", "timeout": 5}'
        volume.write({"username": "app", "password": _token(), "config.json": config})
        print(f"kubelet-style volume: {volume.path}", file=out)

        changes: queue.SimpleQueue[Change] = queue.SimpleQueue()
        errors: queue.SimpleQueue[SecretWatchError] = queue.SimpleQueue()
        with watch(volume.path, decoders={"*.json": "json"}, debounce=0.05) as secrets:
            secrets.subscribe(changes.put)
            secrets.subscribe_errors(errors.put)
            snapshot = secrets.snapshot
            keys = ", ".join(sorted(snapshot))
            print(f"loaded    version {snapshot.version}: keys {keys}", file=out)

            def rotate(label: str, payload: dict[str, bytes]) -> bool:
                volume.write(payload)
                try:
                    change = changes.get(timeout=_TIMEOUT)
                except queue.Empty:
                    print(f"{label}: no change seen within {_TIMEOUT:.0f} s", file=out)
                    return False
                print(f"{label:<9} version {change.new.version}: {_describe(change)}", file=out)
                return True

            payload = volume.read()
            payload["password"] = _token().encode()
            if not rotate("rotated", payload):
                return 1
            payload["api-key"] = _token().encode()
            if not rotate("added", payload):
                return 1
            del payload["username"]
            if not rotate("removed", payload):
                return 1

            volume.write(payload, force=True)  # a new version directory, identical content
            version = secrets.reload().version
            print(f"no-op     version {version}: identical content, no new version", file=out)

            volume.write({**payload, "config.json": b'{"endpoint": '})  # truncated JSON
            try:
                error = errors.get(timeout=_TIMEOUT)
            except queue.Empty:
                print("rejected: no rejection seen", file=out)
                return 1
            print(f"rejected  {error.message}", file=out)
            print(f"          still serving version {secrets.snapshot.version}", file=out)

            payload["config.json"] = b'{"endpoint": "https://api.example.com", "timeout": 10}'
            if not rotate("repaired", payload):
                return 1
            print(
                f"done: {secrets.snapshot.version} versions applied, 1 rejected; "
                "no value was printed",
                file=out,
            )
        code = _sidecar_demo(volume, payload, out)
    return code or _operator_demo(out)


def _sidecar_demo(volume: AtomicVolume, payload: dict[str, bytes], out: TextIO) -> int:
    """The sidecar (``secretwatch watch --webhook``) reloading a neighbour on rotation."""
    try:
        from secretwatch._cli.sidecar.config import WatchOptionsModel  # noqa: PLC0415
        from secretwatch._cli.sidecar.service import Service, build_actions  # noqa: PLC0415
    except ModuleNotFoundError:
        print("\nsidecar: skipped (install the sidecar extra to see it)", file=out)
        return 0
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: PLC0415

    requests: queue.SimpleQueue[bytes] = queue.SimpleQueue()

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            requests.put(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/-/reload"
    print(f"\nsidecar: secretwatch watch {volume.path} --webhook {url}", file=out)
    options = WatchOptionsModel(paths=[str(volume.path)], webhook=[url], debounce=0.05)
    service = Service(options.paths, options, build_actions(options))
    try:
        if not service.start():
            return 1
        payload["password"] = _token().encode()
        volume.write(payload)
        try:
            body = json.loads(requests.get(timeout=_TIMEOUT))
        except queue.Empty:
            print("sidecar: the webhook was not called", file=out)
            return 1
        keys = ", ".join(body["changed_keys"])
        print(f"rotated   the webhook got version {body['version']}: changed {keys}", file=out)
    finally:
        service.close()
        server.shutdown()
        server.server_close()
    return 0


def _describe(change: Change) -> str:
    parts = [
        f"{what} {', '.join(sorted(keys))}"
        for what, keys in (
            ("added", change.added),
            ("removed", change.removed),
            ("modified", change.modified),
        )
        if keys
    ]
    return "; ".join(parts)


def _token() -> str:
    return random_tokens.token_urlsafe(24)


def _operator_demo(out: TextIO) -> int:
    """The operator's side: rotate through the AI Core API (a local stand-in), wait for
    replication, and watch the mounted volume of a deployment follow."""
    try:
        from secretwatch.aicore import Scope, SecretsAPI  # noqa: PLC0415 (the aicore extra)
    except ModuleNotFoundError:
        print("\noperator: skipped (install the aicore extra to see it)", file=out)
        return 0
    from secretwatch.testing import AtomicVolume, FakeAICore  # noqa: PLC0415

    with (
        tempfile.TemporaryDirectory(prefix="secretwatch-demo-") as tmp,
        FakeAICore(resource_groups=("default", "team-b"), replication_delay=0.3) as api_server,
    ):
        mounted = AtomicVolume(Path(tmp) / "shared-key")  # the deployment's mount
        api_server.project("shared-key", mounted, resource_group="default")
        tenant_wide = Scope.tenant_wide()
        print(f"\noperator: AI Core API stand-in at {api_server.url}", file=out)
        with SecretsAPI.from_service_key(api_server.service_key()) as api:
            api.create("shared-key", data={"token": _token()}, scope=tenant_wide)
            api.wait_replicated("shared-key", timeout=_TIMEOUT, interval=0.1)
            # the kubelet writes the volume after the replication: wait for its first write
            with watch(mounted.path, debounce=0.05, required=False) as deployment:
                if deployment.wait_for_change(timeout=_TIMEOUT, since=0) is None:
                    print("operator: the secret was never mounted", file=out)
                    return 1
                seen = deployment.snapshot.version
                print(
                    f"deployed  version {seen}: keys {', '.join(sorted(deployment.snapshot))}",
                    file=out,
                )
                api.update("shared-key", data={"token": _token()}, scope=tenant_wide)
                print("rotated   PATCH /v2/admin/secrets/shared-key (tenant-wide)", file=out)
                secret = api.wait_replicated("shared-key", timeout=_TIMEOUT, interval=0.1)
                groups = ", ".join(sorted(secret.replication or {}))
                print(f"replicated into {groups}", file=out)
                snapshot = deployment.wait_for_change(timeout=_TIMEOUT, since=seen)
                if snapshot is None:
                    print("operator: the deployment did not see the rotation", file=out)
                    return 1
                print(f"applied   version {snapshot.version} in the deployment", file=out)
    return 0
