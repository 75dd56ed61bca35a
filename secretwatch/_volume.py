"""Reading a mounted secret volume: one consistent version, never a mix of two.

Pure functions over the file system, no threads. Three layouts are understood:

- ``kubelet``: a directory holding a ``..data`` symlink to the current version directory
  (Kubernetes secret, configMap and projected volumes, the secrets-store CSI driver). Keys
  are the relative paths of the regular files under the resolved ``..data``.
- ``directory``: a plain directory (docker secrets, Vault Agent or consul-template output).
  Keys are the relative paths of its regular files.
- ``file``: a single file; its name is the key.

Names starting with ``..`` are the writer's own and never keys. A directory that is empty,
or holds the atomic writer's names but no ``..data`` yet, is not written yet: reading it
raises a *transient* ``ReadError`` (a watcher waits for the writer's next event instead of
applying an empty version). Reading resolves ``..data``
once, reads every key from that version and confirms afterwards that ``..data`` still
points where it did; without ``..data``, it confirms that no file was replaced or written
while the volume was read. Otherwise it starts over. A kubelet version is not checked file
by file: it is never written after its commit (and is read-only in a pod); an edit in place
there is followed like any writer without a commit point, by the read its event brings.
"""

from __future__ import annotations

import enum
import errno
import os
import re
import stat
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import NamedTuple

from secretwatch._errors import (
    ReadError,
    SecretWatchError,
    SymlinkEscapeError,
    TooLargeError,
    VolumeNotFoundError,
)

__all__ = [
    "DATA_LINK",
    "Fingerprint",
    "Layout",
    "Listing",
    "Version",
    "fingerprint",
    "is_subpath_mount",
    "list_volume",
    "read_volume",
]

DATA_LINK = "..data"
_ATTEMPTS = 8  # reads of a volume before giving up; backoff 0, 1, 2, 4 ... 64 ms between them
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC  # O_NONBLOCK: a FIFO never blocks us
_CHUNK = 65536  # the first read of a file, which takes a typical key whole
_MAX_CHUNK = 1024 * 1024  # the later ones, however large max_bytes is
_WRITER_NAME = re.compile(r"\.\.(data_tmp$|\d)")  # '..data_tmp' and the '..<timestamp>' dirs

Signature = tuple[int, int, int, int, int]
WatchDir = tuple[str, frozenset[str] | None]


class Layout(enum.StrEnum):
    """How a volume is laid out on disk."""

    KUBELET = "kubelet"
    """A directory with a ``..data`` symlink, written by the kubelet's atomic writer."""
    DIRECTORY = "directory"
    """A plain directory of files."""
    FILE = "file"
    """A single file."""


@dataclass(frozen=True, slots=True)
class Listing:
    """What one version of a volume is made of, found without reading any file."""

    layout: Layout
    revision: str | None
    """The ``..data`` target for the kubelet layout, else ``None``."""
    entries: tuple[tuple[str, str], ...]
    """``(key, file to open)`` pairs, sorted by key."""
    watch: tuple[WatchDir, ...]
    """Directories to watch for a change of this volume, each with the entry names that
    matter in it (``None``: all)."""


@dataclass(frozen=True, slots=True)
class Version:
    """One consistent version of a volume: every key's bytes, from one listing."""

    listing: Listing
    files: dict[str, bytes] = field(repr=False)


def list_volume(path: str) -> Listing:
    """Find the layout, the keys and the directories of the volume at ``path``."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise VolumeNotFoundError(f"{path} does not exist", path=path) from None
    except OSError as exc:
        raise ReadError(f"cannot open {path}: {exc.strerror}", path=path) from None
    if stat.S_ISREG(mode):
        return _list_file(path)
    if not stat.S_ISDIR(mode):
        raise ReadError(f"{path} is neither a directory nor a regular file", path=path)
    try:
        revision = os.readlink(os.path.join(path, DATA_LINK))
    except FileNotFoundError:
        return _list_directory(path)
    except OSError as exc:
        if exc.errno != errno.EINVAL:  # EINVAL: ..data is not a link; it is ignored as a '..' name
            raise ReadError(f"cannot read {path}/{DATA_LINK}: {exc.strerror}", path=path) from None
        return _list_directory(path)
    return _list_kubelet(path, revision)


def read_volume(
    path: str, *, max_bytes: int, on_listing: Callable[[Listing], bool] | None = None
) -> Version:
    """Read one consistent version of the volume at ``path``.

    ``on_listing`` is called with each listing before its files are read: a watcher arms
    its watches there. When it returns ``True`` (a directory was newly watched, so a change
    between the listing and the watch would go unseen) the volume is listed again, and read
    from the start if that listing differs.

    Raises:
        VolumeNotFoundError: ``path`` does not exist.
        ReadError: a file is unreadable, too large, or a link escapes the volume; or the
            volume kept changing (``transient``), or ``..data`` points nowhere.
    """
    failure: ReadError | None = None
    for attempt in range(_ATTEMPTS):
        if attempt:
            time.sleep(0.001 * 2 ** (attempt - 1))
        try:
            listing = list_volume(path)
            if on_listing is not None and on_listing(listing) and list_volume(path) != listing:
                message = f"{path} changed while its watches were added"
                failure = ReadError(message, path=path, transient=True)
                continue
            files, signatures = _read_files(path, listing, max_bytes)
            if _still_current(path, listing, signatures):
                return Version(listing, files)
            failure = _changing(path)
        except FileNotFoundError:  # a file or a version vanished under us: a writer is at work
            failure = _changing(path)
        except OSError as exc:  # listing a directory failed: permission denied, I/O error
            raise ReadError(f"{path} cannot be read: {exc.strerror}", path=path) from None
        except ReadError as exc:
            if not exc.transient:
                raise
            failure = exc
    assert failure is not None
    if not os.path.lexists(path):
        raise VolumeNotFoundError(f"{path} does not exist", path=path)
    if _is_dangling(path):
        raise ReadError(f"{path}/{DATA_LINK} points to a directory that does not exist", path=path)
    raise failure


class Fingerprint(NamedTuple):
    """A cheap stand-in for a volume's content, for polling (see :func:`fingerprint`)."""

    revision: str | None
    """The ``..data`` target for the kubelet layout, else ``None``."""
    state: Hashable


def fingerprint(path: str) -> Fingerprint:
    """A cheap stand-in for the volume's content, for polling: the listing plus file stats.

    Equal fingerprints mean nothing changed; a change of content changes the fingerprint
    (size, mtime, ctime or inode), except for an in-place rewrite of the same size within one
    timestamp tick, which the periodic resync catches.
    """
    try:
        listing = list_volume(path)
        stats = tuple((key, _signature(os.stat(file))) for key, file in listing.entries)
    except VolumeNotFoundError:
        return Fingerprint(None, None)
    except SecretWatchError as exc:
        return Fingerprint(None, (type(exc).__name__, str(exc)))
    except OSError:  # vanished between listing and stat: unequal to anything, so a reload
        return Fingerprint(None, object())
    return Fingerprint(listing.revision, (listing.layout, stats))


def is_subpath_mount(path: str) -> bool:
    """Whether ``path`` looks like a ``subPath`` mount, which never sees a rotation.

    That is: a regular file (not a link), no ``..data`` beside it, and a mount point.
    """
    if os.path.islink(path) or not os.path.isfile(path):
        return False
    if os.path.lexists(os.path.join(os.path.dirname(os.path.abspath(path)), DATA_LINK)):
        return False
    return os.path.ismount(path) or os.path.realpath(path) in _mount_points()


def _list_file(path: str) -> Listing:
    key = os.path.basename(path)
    parent = os.path.dirname(os.path.abspath(path))
    real = os.path.realpath(path)
    watch: dict[str, frozenset[str]] = {parent: frozenset({key, DATA_LINK})}
    real_parent, real_name = os.path.split(real)
    watch[real_parent] = watch.get(real_parent, frozenset()) | {real_name}
    return Listing(Layout.FILE, None, ((key, path),), tuple(watch.items()))


def _list_directory(path: str) -> Listing:
    root = os.path.realpath(path)
    names = os.listdir(root)
    if not names:  # a mount point not populated yet, or a volume being created
        raise ReadError(f"{path} is empty", path=path, transient=True)
    if any(_WRITER_NAME.match(name) for name in names):
        # the atomic writer's own names without '..data': its first write is under way
        raise ReadError(f"{path} is being written", path=path, transient=True)
    entries, dirs = _walk(path, root, root)
    return Listing(Layout.DIRECTORY, None, entries, tuple((d, None) for d in dirs))


def _list_kubelet(path: str, revision: str) -> Listing:
    root = os.path.realpath(path)
    data_dir = os.path.realpath(os.path.join(root, revision))
    if data_dir == root or not _inside(data_dir, root):
        raise SymlinkEscapeError(f"{path}/{DATA_LINK} points outside the volume", path=path)
    entries, dirs = _walk(path, root, data_dir)
    watch: list[WatchDir] = [(root, frozenset({DATA_LINK}))]
    watch.extend((d, None) for d in dirs)
    return Listing(Layout.KUBELET, revision, entries, tuple(watch))


def _walk(path: str, root: str, top: str) -> tuple[tuple[tuple[str, str], ...], list[str]]:
    """Keys and directories under ``top``; links are followed only to files inside ``root``."""
    entries: list[tuple[str, str]] = []
    dirs = [top]
    pending = [(top, "")]
    while pending:
        directory, prefix = pending.pop()
        with os.scandir(directory) as scan:
            for entry in scan:
                if entry.name.startswith(".."):
                    continue
                key = prefix + entry.name
                if not key.isprintable():  # also bytes that are not UTF-8 (lone surrogates)
                    message = f"{path} has a file name that is not printable UTF-8: {key!r}"
                    raise ReadError(message, path=path)
                if entry.is_file(follow_symlinks=False):  # the most common first
                    entries.append((key, entry.path))
                elif entry.is_symlink():
                    target = os.path.realpath(entry.path)
                    if not _inside(target, root):
                        message = f"key {key!r} in {path} is a link that points outside the volume"
                        raise SymlinkEscapeError(message, path=path, key=key)
                    if os.path.isfile(target):  # links to directories are not followed
                        entries.append((key, target))
                elif entry.is_dir(follow_symlinks=False):
                    dirs.append(entry.path)
                    pending.append((entry.path, key + "/"))
    entries.sort()
    return tuple(entries), dirs


def _read_files(
    path: str, listing: Listing, max_bytes: int
) -> tuple[dict[str, bytes], dict[str, Signature]]:
    """Read each file of ``listing`` whole; without ``..data``, also each one's signature
    from before its read.

    A kubelet version is never written after its commit, and the final check of ``..data``
    tells whether it was swapped meanwhile: open, read, close is all it takes. In a volume
    without a commit point the signatures are compared with the files at the end, so that a
    file replaced or rewritten in place meanwhile makes the whole volume be read again.
    One loop, as it runs for every file of every version.
    """
    signed = listing.layout is not Layout.KUBELET
    # What the listing found are files (links were resolved, and checked): one that is a
    # link now was replaced since. A single watched file is opened through its link.
    flags = _OPEN_FLAGS if listing.layout is Layout.FILE else _OPEN_FLAGS | os.O_NOFOLLOW
    files: dict[str, bytes] = {}
    signatures: dict[str, Signature] = {}
    ask = min(_CHUNK, max_bytes + 1)
    for key, file in listing.entries:
        try:
            fd = os.open(file, flags)
        except FileNotFoundError:
            raise
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # made a link since the listing: list again
                raise _changing(path) from None
            raise _unreadable(path, key, exc) from None
        try:
            if signed:
                before = os.fstat(fd)
                if not stat.S_ISREG(before.st_mode):
                    message = f"key {key!r} in {path} is not a regular file"
                    raise ReadError(message, path=path, key=key)
                signatures[key] = _signature(before)
            data = os.read(fd, ask)
            if len(data) == ask:  # a regular file answers short only at its end: more to read
                data = _read_rest(fd, data, max_bytes)
                if len(data) > max_bytes:
                    raise _too_large(path, key, len(data), max_bytes)
        except OSError as exc:
            raise _unreadable(path, key, exc) from None
        finally:
            os.close(fd)
        files[key] = data
    return files, signatures


def _unreadable(path: str, key: str, exc: OSError) -> ReadError:
    message = f"key {key!r} in {path} cannot be read: {exc.strerror}"
    return ReadError(message, path=path, key=key)


def _read_rest(fd: int, first: bytes, max_bytes: int) -> bytes:
    """The first read's bytes and the rest, up to ``max_bytes + 1`` in all (more than
    ``max_bytes``: too large)."""
    chunks = [first]
    total = len(first)
    limit = max_bytes + 1
    while total < limit:
        chunk = os.read(fd, min(limit - total, _MAX_CHUNK))  # a read allocates what it asks
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def _changing(path: str) -> ReadError:
    return ReadError(f"{path} kept changing while being read", path=path, transient=True)


def _too_large(path: str, key: str, size: int, max_bytes: int) -> TooLargeError:
    message = f"key {key!r} in {path} has {size} bytes or more, over max_bytes={max_bytes}"
    return TooLargeError(message, path=path, key=key)


def _still_current(path: str, listing: Listing, signatures: dict[str, Signature]) -> bool:
    if listing.layout is Layout.KUBELET:
        return os.readlink(os.path.join(path, DATA_LINK)) == listing.revision
    return all(_signature(os.stat(file)) == signatures[key] for key, file in listing.entries)


def _signature(st: os.stat_result) -> Signature:
    return (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _is_dangling(path: str) -> bool:
    link = os.path.join(path, DATA_LINK)
    return os.path.islink(link) and not os.path.exists(link)


def _inside(target: str, root: str) -> bool:
    return target == root or target.startswith(root.rstrip(os.sep) + os.sep)


_MOUNTINFO_ESCAPE = re.compile(r"\\([0-7]{3})")


def _mount_points() -> set[str]:
    """Mount points of this process (``/proc/self/mountinfo``; empty where there is none).

    ``os.path.ismount`` misses a file bind-mounted from the same file system; this does not.
    """
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as info:
            lines = info.readlines()
    except OSError:
        return set()
    fields = (line.split() for line in lines)
    return {_MOUNTINFO_ESCAPE.sub(lambda m: chr(int(m[1], 8)), f[4]) for f in fields if len(f) > 4}
