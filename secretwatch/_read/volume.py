"""Reading a mounted secret volume: one consistent version, never a mix of two.

Pure functions over the file system, no threads. Three layouts are understood:

- ``kubelet``: a directory holding a ``..data`` symlink to the current version directory
  (Kubernetes secret, configMap and projected volumes, the secrets-store CSI driver). Keys
  are the relative paths of the regular files under the resolved ``..data``.
- ``directory``: a plain directory (docker secrets, Vault Agent or consul-template output).
  Keys are the relative paths of its regular files.
- ``file``: a single file; its name is the key.

Every name below the volume's root is resolved without following a link (:mod:`.listing`):
the root is opened once, following the user's path; each directory below it, ``..data``'s
version directory included, is opened relative to its parent's descriptor with
``O_NOFOLLOW | O_DIRECTORY``, and each file relative to its directory's with ``O_NOFOLLOW``.
A directory or file swapped with a link while the volume is read fails that open, and the
volume is read again: what is read is inside the volume. Two links are followed on purpose:
a single watched file is opened through its link (``/etc/secret/tls.crt`` is
``..data/tls.crt``), and a link in the volume to a regular file in it is resolved by the
listing to that file's path below the root (one that leads out raises
``SymlinkEscapeError``), which is then opened like any other, without following links.

Names starting with ``..`` are the writer's own and never keys. A directory that is empty,
or holds the atomic writer's names but no ``..data`` yet, is not written yet: reading it
raises a *transient* ``ReadError`` (a watcher waits for the writer's next event instead of
applying an empty version). Reading resolves ``..data`` once, reads every key from that
version and confirms afterwards that ``..data`` still points where it did; without
``..data``, it confirms that no file was replaced or written while the volume was read; in
both cases, that the path is still the directory read. Otherwise it starts over. A kubelet
version is not checked file by file: it is never written after its commit (and is
read-only in a pod); an edit in place there is followed like any writer without a commit
point, by the read its event brings.
"""

from __future__ import annotations

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
    TooLargeError,
    VolumeNotFoundError,
)
from secretwatch._read.listing import (
    CHANGED,
    DATA_LINK,
    Layout,
    Listing,
    Opener,
    WatchDir,
    changing,
    list_open,
    open_root,
)

__all__ = [
    "DATA_LINK",
    "Fingerprint",
    "Layout",
    "Listing",
    "Version",
    "WatchDir",
    "fingerprint",
    "is_subpath_mount",
    "list_volume",
    "read_volume",
]

_ATTEMPTS = 8  # reads of a volume before giving up; backoff 0, 1, 2, 4 ... 64 ms between them
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC  # O_NONBLOCK: a FIFO never blocks us
_CHUNK = 65536  # the first read of a file, which takes a typical key whole
_MAX_CHUNK = 1024 * 1024  # the later ones, however large max_bytes is

Signature = tuple[int, int, int, int, int]


@dataclass(frozen=True, slots=True)
class Version:
    """One consistent version of a volume: every key's bytes, from one listing."""

    listing: Listing
    files: dict[str, bytes] = field(repr=False)


def list_volume(path: str, *, skip_bad_names: bool = False) -> Listing:
    """Find the layout, the keys and the directories of the volume at ``path``."""
    root = open_root(path)
    try:
        return list_open(path, root, skip_bad_names=skip_bad_names)
    finally:
        if root is not None:
            os.close(root)


def read_volume(
    path: str,
    *,
    max_bytes: int,
    on_listing: Callable[[Listing], bool] | None = None,
    skip_bad_names: bool = False,
) -> Version:
    """Read one consistent version of the volume at ``path``.

    A name that is not printable UTF-8 can't be a key: it fails the read, or, with
    ``skip_bad_names`` (to show a volume, never to load one), is left unread and named in
    the listing's ``bad_names``.

    ``on_listing`` is called with each listing before its files are read: a watcher arms
    its watches there. When it returns ``True`` (a directory was newly watched, so a change
    between the listing and the watch would go unseen) the volume is listed again, and read
    from the start if that listing differs.

    Raises:
        VolumeNotFoundError: ``path`` does not exist.
        ReadError: a file is unreadable, too large, or a link escapes the volume; a name is
            not printable UTF-8 (without ``skip_bad_names``); or the volume kept changing
            (``transient``), or ``..data`` points nowhere.
    """
    failure: ReadError | None = None
    for attempt in range(_ATTEMPTS):
        if attempt:
            time.sleep(0.001 * 2 ** (attempt - 1))
        root = open_root(path)
        try:
            listing = list_open(path, root, skip_bad_names=skip_bad_names)
            newly_watched = on_listing is not None and on_listing(listing)
            if newly_watched and list_volume(path, skip_bad_names=skip_bad_names) != listing:
                message = f"{path} changed while its watches were added"
                failure = ReadError(message, path=path, transient=True)
                continue
            files, signatures = _read_files(path, root, listing, max_bytes)
            if _still_current(path, root, listing, signatures):
                return Version(listing, files)
            failure = changing(path)
        except OSError as exc:
            if exc.errno not in CHANGED:  # listing a directory failed: permission, I/O error
                raise ReadError(f"{path} cannot be read: {exc.strerror}", path=path) from None
            failure = changing(path)  # a name vanished or became a link: a writer is at work
        except ReadError as exc:
            if not exc.transient:
                raise
            failure = exc
        finally:
            if root is not None:
                os.close(root)
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
        root = open_root(path)
        try:
            listing = list_open(path, root)
            stats = tuple(_signatures(root, listing).items())
        finally:
            if root is not None:
                os.close(root)
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


def _read_files(
    path: str, root: int | None, listing: Listing, max_bytes: int
) -> tuple[dict[str, bytes], dict[str, Signature]]:
    """Read each file of ``listing`` (below ``root``) whole; without ``..data``, also each
    one's signature from before its read.

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
    here, where = None, None  # the directory of the last file, and its descriptor
    with Opener(root) as opener:
        for key, directory, name in listing.entries:
            if directory != here:  # OSError: a directory gone, or a link now
                here, where = directory, opener.directory(directory)
            try:
                fd = os.open(name, flags, dir_fd=where)
            except FileNotFoundError:
                raise
            except OSError as exc:
                if exc.errno == errno.ELOOP:  # made a link since the listing: list again
                    raise changing(path) from None
                raise _unreadable(path, key, exc) from None
            try:
                if signed:
                    before = os.fstat(fd)
                    if not stat.S_ISREG(before.st_mode):
                        message = f"key {key!r} in {path} is not a regular file"
                        raise ReadError(message, path=path, key=key)
                    signatures[key] = _signature(before)
                data = os.read(fd, ask)
                if len(data) == ask:  # a regular file answers short only at its end: more
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


def _too_large(path: str, key: str, size: int, max_bytes: int) -> TooLargeError:
    message = f"key {key!r} in {path} has {size} bytes or more, over max_bytes={max_bytes}"
    return TooLargeError(message, path=path, key=key)


def _still_current(
    path: str, root: int | None, listing: Listing, signatures: dict[str, Signature]
) -> bool:
    """Whether the version read is still the volume's: ``path`` is still the directory read
    (not moved, unmounted or replaced meanwhile), and ``..data`` still names the version
    read, or (without ``..data``) every file is still the one read."""
    if root is not None and not os.path.samestat(os.fstat(root), os.stat(path)):
        return False
    if listing.layout is Layout.KUBELET:
        return os.readlink(DATA_LINK, dir_fd=root) == listing.revision
    return _signatures(root, listing) == signatures


def _signatures(root: int | None, listing: Listing) -> dict[str, Signature]:
    """The signature of each file of ``listing`` as it is now; a file that is a link now
    is not followed (and so differs), except a single watched file."""
    follow = listing.layout is Layout.FILE
    signatures = {}
    with Opener(root) as opener:
        for key, directory, name in listing.entries:
            where = opener.directory(directory)
            signatures[key] = _signature(os.stat(name, dir_fd=where, follow_symlinks=follow))
    return signatures


def _signature(st: os.stat_result) -> Signature:
    return (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _is_dangling(path: str) -> bool:
    link = os.path.join(path, DATA_LINK)
    return os.path.islink(link) and not os.path.exists(link)


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
