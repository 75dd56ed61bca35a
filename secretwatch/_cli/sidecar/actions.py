"""What a change triggers: a webhook, a signal, a command. Each one either succeeds or raises.

An action is called with the :class:`Event` (which volume, which version, which keys) and
raises :class:`ActionError` with a message that is safe to log: no credentials of a webhook
URL, no output of a command.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal as signals
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import httpx

from secretwatch._cli.sidecar.reaper import spawn

__all__ = [
    "DRAIN_BYTES",
    "Action",
    "ActionError",
    "Event",
    "Exec",
    "Signal",
    "Webhook",
    "parse_webhook_url",
    "redact_url",
]


@dataclass(frozen=True, slots=True)
class Event:
    """One applied change of one volume, as actions see it."""

    path: str
    version: int
    keys: tuple[str, ...]  # the keys added, removed or modified


class ActionError(Exception):
    """An action failed; the message names the action, never a secret."""


class Action(Protocol):
    """Something to do on a change."""

    kind: str  # "webhook", "signal" or "exec": the label of its metrics
    target: str  # which one, for the logs (a webhook without credentials)

    def __call__(self, event: Event) -> None:
        """Do it; raise :class:`ActionError` when it did not work."""


def redact_url(url: httpx.URL) -> str:
    """The URL to log: its scheme, host and port only. Credentials hide in the user
    information, the query (``?token=``) and the path (``/services/T0/B0/<token>``)."""
    port = f":{url.port}" if url.port else ""
    rest = "/..." if url.raw_path not in (b"", b"/") else "/"
    return f"{url.scheme}://{url.host}{port}{rest}"


def parse_webhook_url(url: str, number: int) -> httpx.URL:
    """``url``, parsed; ``ValueError`` unless it is an http:// or https:// URL with a host.
    The message names the webhook by its number, never by its URL (credentials)."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError):  # a byte that is not UTF-8 is a UnicodeError
        raise ValueError(f"--webhook: webhook #{number} is not a valid URL") from None
    if parsed.scheme not in {"http", "https"} or not parsed.host:
        raise ValueError(f"--webhook: webhook #{number} is not an http:// or https:// URL")
    return parsed


class Webhook:
    """An HTTP request with a JSON body naming the volume, version and changed keys.

    One attempt (connect, send and response together) takes at most ``timeout`` seconds,
    whatever the server does: a server that trickles its answer a byte at a time is cut off
    there too. The status line decides; of the body, at most :data:`DRAIN_BYTES` are read
    (so that a short answer ends cleanly), then the connection is closed.

    Each call is sent through the transport itself, with the headers made once: an
    ``httpx.Client`` around it (auth flow, cookies, redirects, merged defaults) would add
    more to a reload's latency than the rest of the request takes on loopback.
    """

    kind = "webhook"

    def __init__(self, url: str, *, method: str, status: int, timeout: float, number: int = 1):
        # imported here: a sidecar without webhooks never loads httpcore nor h11
        from secretwatch._http import bounded_transport  # noqa: PLC0415

        parsed = parse_webhook_url(url, number)
        self._headers = {"Accept": "*/*", "User-Agent": f"python-httpx/{httpx.__version__}"}
        self._auth = None  # sent as basic auth, never in the request line
        if parsed.userinfo:
            self._auth = httpx.BasicAuth(parsed.username, parsed.password)
        self._url = parsed.copy_with(userinfo=b"") if parsed.userinfo else parsed
        self._method = method.upper()
        self._status = status
        self._timeout = timeout
        # one transport for the process's life, so one TLS context (making one costs tens
        # of milliseconds, and memory, every time); a new connection per call, though: a
        # kept-alive one may have been closed by the server since the last rotation
        try:
            self._transport = bounded_transport(parsed, timeout=timeout)
        except ValueError as exc:  # the environment's proxy, or its TLS certificates
            raise ValueError(f"--webhook: webhook #{number}: {exc}") from None
        self._extensions = {"timeout": httpx.Timeout(timeout).as_dict()}
        self.target = f"#{number} {redact_url(parsed)}"  # the number tells webhooks apart

    def __call__(self, event: Event) -> None:
        body = {"path": event.path, "version": event.version, "changed_keys": list(event.keys)}
        request = httpx.Request(
            self._method, self._url, json=body, headers=self._headers, extensions=self._extensions
        )
        if self._auth is not None:
            request = next(self._auth.sync_auth_flow(request))  # sets the header, as a client does
        try:
            response = self._transport.handle_request(request)
            try:
                _drain(response)
            finally:
                response.close()
        except httpx.TimeoutException as exc:
            raise ActionError(
                f"webhook {self.target}: {type(exc).__name__}, not done within {self._timeout} s"
            ) from None
        except httpx.HTTPError as exc:
            raise ActionError(f"webhook {self.target}: {type(exc).__name__}") from None
        if response.status_code != self._status:
            raise ActionError(
                f"webhook {self.target}: status {response.status_code}, expected {self._status}"
            )

    def close(self) -> None:
        """Close the transport's connections."""
        self._transport.close()

    def __repr__(self) -> str:
        return f"Webhook({self._method} {self.target})"


DRAIN_BYTES = 4096  # of a webhook response's body read before the connection is closed


def _drain(response: httpx.Response) -> None:
    """Read at most :data:`DRAIN_BYTES` of the body (the reads stop at the first that
    brings the total there: one network read is at most 64 KiB), undecoded, so that no
    compressed body is inflated. The status has decided already: an error here is no
    failure, the connection is closed anyway."""
    read = 0
    with contextlib.suppress(httpx.HTTPError):
        for chunk in response.iter_raw():
            read += len(chunk)
            if read >= DRAIN_BYTES:
                break


class Signal:
    """A signal to the process in a pid file, or to the processes of a name."""

    kind = "signal"

    def __init__(self, number: signals.Signals, *, pid_file: str | None, process_name: str | None):
        self._signal = number
        self._pid_file = pid_file
        self._process_name = process_name
        self.target = f"pid file {pid_file}" if pid_file else f"process {process_name}"

    def __call__(self, event: Event) -> None:
        sent = 0
        for pid in self._pids():
            try:
                os.kill(pid, self._signal)
            except ProcessLookupError:  # ended meanwhile: the others still get it
                continue
            except OSError as exc:
                raise ActionError(
                    f"signal {self._signal.name} to pid {pid}: {exc.strerror}"
                ) from None
            sent += 1
        if not sent:
            raise ActionError(f"signal {self._signal.name}: no process for {self.target}")

    def _pids(self) -> list[int]:
        if self._pid_file is not None:
            try:
                with open(self._pid_file, encoding="ascii") as file:
                    text = file.read().strip()
            except OSError as exc:
                raise ActionError(f"pid file {self._pid_file}: {exc.strerror}") from None
            # 0 and negative numbers signal process groups (this one's, with 0), and 1 is the
            # container's init: none of them is a server to reload
            if not text.isdigit() or not 1 < int(text) < 2**22:
                raise ActionError(f"pid file {self._pid_file} holds no pid of a process")
            return [int(text)]
        assert self._process_name is not None
        return sorted(_processes_named(self._process_name))

    def __repr__(self) -> str:
        return f"Signal({self._signal.name} to {self.target})"


def _processes_named(name: str) -> Iterator[int]:
    """Processes (other than this one) whose name, or first argument's base name, is ``name``."""
    own = os.getpid()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == own:
            continue
        try:
            with open(f"/proc/{entry.name}/comm", encoding="utf-8", errors="replace") as f:
                comm = f.read().strip()
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                argv0 = f.read().split(b"\0", 1)[0].decode("utf-8", "replace")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if name in (comm, os.path.basename(argv0)):
            yield int(entry.name)


class Exec:
    """A command, run without a shell, with the change in its environment."""

    kind = "exec"

    def __init__(self, command: str, *, timeout: float):
        self._argv = shlex.split(command)
        if not self._argv:
            raise ValueError("--exec needs a command")
        self._timeout = timeout
        self.target = self._argv[0]

    def __call__(self, event: Event) -> None:
        env = {  # the change, but none of secretwatch's settings (a webhook's credentials)
            **{k: v for k, v in os.environ.items() if not k.upper().startswith("SECRETWATCH_")},
            "SECRETWATCH_PATH": event.path,
            "SECRETWATCH_VERSION": str(event.version),
            "SECRETWATCH_CHANGED_KEYS": ",".join(event.keys),
        }
        try:  # its own process group: on a timeout, what it started is killed with it
            process = spawn(self._argv, env=env, stdin=subprocess.DEVNULL, start_new_session=True)
        except OSError as exc:
            raise ActionError(f"exec {self.target}: {exc.strerror}") from None
        try:
            returncode = process.wait(self._timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):  # it may have ended just now
                os.killpg(process.pid, signals.SIGKILL)
            process.wait()
            raise ActionError(
                f"exec {self.target}: still running after {self._timeout} s (killed)"
            ) from None
        if returncode:
            raise ActionError(f"exec {self.target}: exit code {returncode}")

    def __repr__(self) -> str:
        return f"Exec({self.target})"
