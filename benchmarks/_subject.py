"""A process that watches volumes and waits: the subject of the idle and footprint benchmarks.

    python -m benchmarks._subject KIND PATH...

KIND is how the volumes are watched: ``secretwatch``, ``secretwatch-polling`` (every 1 s),
``watchdog`` (one ``Observer``, a schedule per volume, a handler that reads the volume on
each event), ``watchfiles`` (one ``watch()`` of every volume, on a thread, reading the
volumes that changed) or ``naive`` (a thread per volume reading every file every second).
Prints ``ready`` once every volume is watched; exits when its stdin closes.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

# Each kind imports only its own library, so that the memory figures are its own.


def read_all(path: Path) -> dict[str, bytes]:
    """Every key of a volume, read as a naive reader would."""
    return {file.name: file.read_bytes() for file in path.iterdir() if file.is_file()}


@contextmanager
def threads(paths: list[Path], loop: Callable[[Path, threading.Event], None]) -> Iterator[None]:
    stop = threading.Event()
    started = [threading.Thread(target=loop, args=(path, stop), daemon=True) for path in paths]
    for thread in started:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in started:
            thread.join(10)


def watch_secretwatch(paths: list[Path], stack: ExitStack, *, polling: bool = False) -> None:
    import structlog  # noqa: PLC0415

    import secretwatch  # noqa: PLC0415

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    for path in paths:
        stack.enter_context(secretwatch.watch(path, polling=polling))


def watch_watchdog(paths: list[Path], stack: ExitStack) -> None:
    from watchdog.events import FileSystemEvent, FileSystemEventHandler  # noqa: PLC0415
    from watchdog.observers import Observer  # noqa: PLC0415

    class Reader(FileSystemEventHandler):
        def __init__(self, path: Path):
            self.path = path

        def on_any_event(self, event: FileSystemEvent) -> None:
            read_all(self.path)

    observer = Observer()
    for path in paths:
        observer.schedule(Reader(path), str(path))
    observer.start()
    stack.callback(observer.join, 10)
    stack.callback(observer.stop)


def watch_watchfiles(paths: list[Path], stack: ExitStack) -> None:
    import watchfiles  # noqa: PLC0415

    stop = threading.Event()

    def loop() -> None:  # one watch() of every volume, as watchfiles would have it
        for changes in watchfiles.watch(*paths, stop_event=stop, raise_interrupt=False):
            for path in paths:
                if any(file.startswith(f"{path}/") for _, file in changes):
                    read_all(path)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    stack.callback(thread.join, 10)
    stack.callback(stop.set)


def watch_naive(paths: list[Path], stack: ExitStack) -> None:
    def loop(path: Path, stop: threading.Event) -> None:
        while not stop.wait(1.0):
            read_all(path)

    stack.enter_context(threads(paths, loop))


KINDS: dict[str, Callable[[list[Path], ExitStack], None]] = {
    "secretwatch": watch_secretwatch,
    "secretwatch-polling": lambda paths, stack: watch_secretwatch(paths, stack, polling=True),
    "watchdog": watch_watchdog,
    "watchfiles": watch_watchfiles,
    "naive": watch_naive,
}


def main() -> int:
    kind, *paths = sys.argv[1:]
    with ExitStack() as stack:
        KINDS[kind]([Path(path) for path in paths], stack)
        print("ready", flush=True)
        sys.stdin.read()  # until the benchmark closes it
    return 0


if __name__ == "__main__":
    sys.exit(main())
