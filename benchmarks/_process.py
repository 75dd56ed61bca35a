"""Child processes for the benchmarks: the secretwatch sidecar, and what /proc says of them.

Linux only: CPU time, threads, descriptors and memory are read from ``/proc``.
"""

from __future__ import annotations

import compileall
import http.client
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import secretwatch

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Sample:
    """What a process holds at one moment."""

    seconds: float
    fds: int
    threads: int
    rss_kib: int


def sample(pid: int, start: float = 0.0) -> Sample:
    """The open descriptors, threads and resident memory of process ``pid``."""
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return Sample(
        seconds=time.monotonic() - start,
        fds=len(os.listdir(f"/proc/{pid}/fd")),
        threads=int(status["Threads"]),
        rss_kib=int(status["VmRSS"].split()[0]),
    )


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads, exited ones too) used so far by ``pid``."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_SECOND  # utime, stime


def compile_secretwatch() -> None:
    """Compile secretwatch's bytecode, as installing its wheel does: a start-up time is then
    the sidecar's, not the compiler's (with ``PYTHONDONTWRITEBYTECODE`` set, an editable
    install would compile every module at every start)."""
    compileall.compile_dir(Path(secretwatch.__file__).parent, quiet=1)


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (closed again before the sidecar binds it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def sidecar_command(paths: Sequence[Path], listen: str, *actions: str) -> list[str]:
    """``secretwatch watch`` on ``paths``, serving /readyz on ``listen``, logging warnings."""
    return [
        sys.executable,
        "-m",
        "secretwatch",
        "watch",
        *map(str, paths),
        *actions,
        "--listen",
        listen,
        "--log-level",
        "warning",
    ]


def wait_ready(listen: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Until the sidecar listening on ``listen`` (``host:port``) answers /readyz with 200.

    Asks every 5 ms with ``http.client``, which costs next to nothing per request (an httpx
    call builds a client and its TLS context each time).
    """
    host, port = listen.rsplit(":", 1)
    deadline = time.monotonic() + timeout
    pace = threading.Event()  # never set: a paced wait
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the sidecar exited with {process.returncode}")
        connection = http.client.HTTPConnection(host, int(port), timeout=1)
        try:
            connection.request("GET", "/readyz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            connection.close()
        pace.wait(0.005)
    raise SystemExit(f"the sidecar was not ready within {timeout} s")


@contextmanager
def subject(kind: str, paths: Sequence[Path]) -> Iterator[subprocess.Popen[str]]:
    """A process watching ``paths`` the ``kind`` way (see ``_subject``), once it is ready."""
    command = [sys.executable, "-m", "benchmarks._subject", kind, *map(str, paths)]
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=_ROOT
    )
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        line = process.stdout.readline()
        if line.strip() != "ready":
            process.wait(30)
            raise RuntimeError(f"{kind} with {len(paths)} volume(s) did not start: {line!r}")
        yield process
    finally:
        process.stdin.close()
        if process.wait(30):
            raise RuntimeError(f"{kind} exited with {process.returncode}")


_ROOT = Path(__file__).parent.parent
