"""The sidecar stops on SIGTERM whichever thread the kernel hands the signal to."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from structlog.testing import LogCapture

from secretwatch._cli.sidecar.signals import StopRequest

from .conftest import TIMEOUT, events

# The main thread blocks SIGTERM, so the kernel must deliver it to the other thread, as it
# may whenever the main thread has a signal pending already (a child's SIGCHLD, say).
SCRIPT = """
import logging, signal, sys, threading
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(message)s")
from secretwatch._cli.sidecar.signals import StopRequest, route_signals
stop = StopRequest()
route_signals({signal.SIGTERM: stop.on_signal})
idle = threading.Event()
threading.Thread(target=idle.wait, daemon=True).start()
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
print("ready", flush=True)
print(stop.wait(), flush=True)
"""


def test_a_signal_that_lands_on_another_thread_still_stops() -> None:
    """Python runs a signal's handler on the main thread, but only when that thread runs
    Python code: waiting on a lock, it never would, and the stop would hang."""
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n"
        os.kill(process.pid, signal.SIGTERM)
        out, logged = process.communicate(timeout=TIMEOUT)
    finally:
        process.kill()
        process.wait()
    assert out == "SIGTERM\n"
    assert logged == "secretwatch.stopping\n"  # through the application's logging
    assert process.returncode == 0


def test_a_stop_is_in_force_before_it_is_logged_or_seen(logs: LogCapture) -> None:
    """The stop's callbacks (the runner's cancel: no retry from here) run before
    ``secretwatch.stopping`` is logged and before the main thread wakes, so whatever is
    logged after it happened with the stop in force; and the stop is logged by the request
    itself, whatever the main thread is doing."""
    stop = StopRequest()
    seen: list[tuple[bool, list[object]]] = []
    stop.when_stopped(lambda: seen.append((stop.is_set(), list(logs.entries))))
    stop.on_signal(signal.SIGTERM)
    stop.on_signal(signal.SIGINT)  # only the first counts
    assert seen == [(False, [])]
    assert events(logs, "secretwatch.stopping") == [
        {"event": "secretwatch.stopping", "signal": "SIGTERM", "log_level": "info"}
    ]
    assert stop.wait() == "SIGTERM"
