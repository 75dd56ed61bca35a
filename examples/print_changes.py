"""Print what changes in a mounted secret volume (keys and versions, never values).

    python examples/print_changes.py /etc/my-generic-secret

Stops on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import signal
import sys

import structlog

import secretwatch


def show(change: secretwatch.Change) -> None:
    """Print one applied change."""
    print(
        f"version {change.new.version}: added {sorted(change.added)}, "
        f"removed {sorted(change.removed)}, modified {sorted(change.modified)}",
        flush=True,
    )


def main(path: str) -> None:
    """Watch ``path`` until interrupted."""
    with secretwatch.watch(path) as secrets:
        # subscribe before anything else: a rotation that lands meanwhile is still shown
        secrets.subscribe(show)
        secrets.subscribe_errors(lambda error: print(f"rejected: {error}", flush=True))
        snapshot = secrets.snapshot
        print(f"version {snapshot.version}: keys {sorted(snapshot)}", flush=True)
        signal.sigwait({signal.SIGINT, signal.SIGTERM})


if __name__ == "__main__":
    # show secretwatch's events on stderr, through structlog, and keep stdout for ours
    # (with no structlog configuration they would go to logging's "secretwatch" logger)
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    main(sys.argv[1])
