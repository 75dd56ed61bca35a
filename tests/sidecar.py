"""Helpers for sidecar tests: the CLI as a real subprocess, and a real webhook receiver."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

import pytest

from .conftest import TIMEOUT


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """A webhook receiver on 127.0.0.1 that records requests and answers ``status``."""

    def __init__(self, status: int = 200, port: int = 0):
        self.requests: queue.SimpleQueue[Request] = queue.SimpleQueue()
        self.status = status
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                receiver.requests.put(Request(self.command, self.path, dict(self.headers), body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_PUT = do_GET = _record

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def url(self, path: str = "/reload", userinfo: str = "") -> str:
        return f"http://{userinfo}127.0.0.1:{self.port}{path}"

    def request(self, timeout: float = TIMEOUT) -> Request:
        try:
            return self.requests.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no webhook request within {timeout} s")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Sidecar:
    """``python -m secretwatch ARGS`` with JSON logs on stderr, read line by line."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()):
        environment = {**os.environ, "SECRETWATCH_LOG_FORMAT": "json", **(env or {})}
        self.process = subprocess.Popen(
            [*prefix, sys.executable, "-m", "secretwatch", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment,
            start_new_session=True,  # close() ends the session: what it started too
        )
        self.lines: list[str] = []  # everything it wrote, stdout and stderr
        self.events: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self.history: list[dict[str, Any]] = []  # every event logged so far, read or not
        self.logged = threading.Condition()  # notified at each event, and at the end
        self.stdout: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._readers = [
            threading.Thread(target=self._read_logs, daemon=True),
            threading.Thread(target=self._read_stdout, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_logs(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                event = {"event": "(not json)", "line": line}
            self.events.put(event)
            with self.logged:
                self.history.append(event)
                self.logged.notify_all()
        self.events.put(None)
        with self.logged:
            self.history.append({"event": "(exited)"})
            self.logged.notify_all()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            self.stdout.put(line)
        self.stdout.put(None)

    def event(self, name: str, timeout: float = TIMEOUT, **fields: object) -> dict[str, Any]:
        """The next log event called ``name`` (with these fields); fails the test otherwise."""
        while True:
            try:
                event = self.events.get(timeout=timeout)
            except queue.Empty:
                pytest.fail(f"no {name} event within {timeout} s: {self.output()}")
            if event is None:
                pytest.fail(f"exited ({self.process.poll()}) before {name}: {self.output()}")
            if event["event"] == name and all(event.get(k) == v for k, v in fields.items()):
                return event

    def said(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The next line the command printed on stdout, as JSON (``run``'s command)."""
        try:
            line = self.stdout.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"the command said nothing within {timeout} s: {self.output()}")
        if line is None:
            pytest.fail(f"the command's output ended: {self.output()}")
        return dict(json.loads(line))

    def total(self, name: str, field: str, at_least: int, timeout: float = TIMEOUT) -> int:
        """Wait until the ``field`` of every ``name`` event logged so far (whether read with
        :meth:`event` or not) adds up to ``at_least``; return the sum."""

        def summed() -> int:
            return sum(int(e[field]) for e in self.history if e["event"] == name)

        def done() -> bool:
            return summed() >= at_least or self.history[-1:] == [{"event": "(exited)"}]

        with self.logged:
            self.logged.wait_for(done, timeout)
            total = summed()
        if total < at_least:
            pytest.fail(f"{name} {field} add up to {total}, not {at_least}: {self.output()}")
        return total

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send ``sig`` and return the exit code."""
        self.process.send_signal(sig)
        return self.wait()

    def wait(self) -> int:
        try:
            code = self.process.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            pytest.fail(f"still running after {TIMEOUT} s: {self.output()}")
        for reader in self._readers:
            reader.join(TIMEOUT)
        return code

    def output(self) -> str:
        return "".join(self.lines)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Kill it if it still runs, and whatever of its session is left (the command of
        ``run``, in a process group of its own, when a test failed); close its pipes."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for pid in _session(self.process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for reader in self._readers:
            reader.join(TIMEOUT)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()


def _session(session: int) -> list[int]:
    """The processes of ``session`` (as ``/proc`` shows them)."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text().rpartition(")")[2].split()
            except OSError:  # ended meanwhile
                continue
            if int(stat[3]) == session:
                found.append(int(entry.name))
    return found
