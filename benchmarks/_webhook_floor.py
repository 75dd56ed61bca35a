"""The cheapest Python webhook sidecar: the floor of the sidecar benchmark.

    python benchmarks/_webhook_floor.py VOLUME URL

No library, and nothing a sidecar would need beyond the reaction: one inotify watch on the
volume directory (through ctypes), and on each ``..data`` renamed into place (the kubelet's
commit), one POST with ``http.client`` on a new connection. Prints ``ready`` once the watch
is in place; exits when its stdin closes. Run as a script, not with ``-m``: importing the
``benchmarks`` package would load more than the floor needs.
"""

from __future__ import annotations

import ctypes
import http.client
import json
import os
import select
import struct
import sys
from urllib.parse import urlsplit

IN_MOVED_TO = 0x00000080
IN_ONLYDIR = 0x01000000
EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len; then the name


def main() -> int:
    volume, url = sys.argv[1:]
    parts = urlsplit(url)
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(os.O_CLOEXEC)
    if fd < 0 or libc.inotify_add_watch(fd, os.fsencode(volume), IN_MOVED_TO | IN_ONLYDIR) < 0:
        raise OSError(ctypes.get_errno(), "inotify")
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    poller.register(sys.stdin.fileno(), select.POLLIN)
    print("ready", flush=True)
    version = 0
    while True:
        for ready, _ in poller.poll():
            if ready != fd:  # stdin closed: the benchmark is done
                return 0
            events = os.read(fd, 65536)
            offset = 0
            while offset < len(events):
                _, _, _, length = EVENT.unpack_from(events, offset)
                start = offset + EVENT.size
                name = events[start : start + length].rstrip(b"\0")
                offset = start + length
                if name == b"..data":
                    version += 1
                    post(parts.hostname or "", parts.port or 80, parts.path, version)


def post(host: str, port: int, path: str, version: int) -> None:
    body = json.dumps({"version": version}).encode()
    connection = http.client.HTTPConnection(host, port, timeout=5)
    try:
        connection.request("POST", path, body, {"Content-Type": "application/json"})
        connection.getresponse().read()
    finally:
        connection.close()


if __name__ == "__main__":
    sys.exit(main())
