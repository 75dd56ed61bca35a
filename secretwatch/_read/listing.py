"""Listing a volume: its layout, its keys and the file of each, its directories; found
without reading a file, and below the volume's root without following a link.

The root is opened once, following the user's path. Everything below it is opened relative
to a descriptor: each directory with ``O_DIRECTORY | O_NOFOLLOW`` relative to its parent,
each file (by the reader) with ``O_NOFOLLOW`` relative to its directory. A directory swapped
with a link while the volume is read (``renameat2`` with ``RENAME_EXCHANGE``, say) makes that
open fail with ``ENOTDIR`` or ``ELOOP`` (see :data:`CHANGED`) instead of leading out of the
volume: the read is a *change*, done again, never a read of the outside file.

A listing names each key's file by a name in a directory below the root: a path relative
to it, ``/``-separated, without ``.`` or ``..``, that names no link (see :data:`Entry`).
``..data`` must lead to a directory below the root. It, and a link of the volume, is
resolved once, by the listing, to such a directory (and name), or refused when it leads
out; what it resolved to is then opened like any other name: however that resolution raced
with a writer, what is opened was reached from the root through directories only.

A key is printable UTF-8 (the kubelet writes ``[-._a-zA-Z0-9]+``): a name below the root
that is not makes the listing fail, unless it is listed with ``skip_bad_names`` (to show a
volume, not to load it), which leaves such names out and lists them apart.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType

from secretwatch._errors import ReadError, SymlinkEscapeError, VolumeNotFoundError
from secretwatch._read.names import escaped

__all__ = [
    "CHANGED",
    "DATA_LINK",
    "Entry",
    "Layout",
    "Listing",
    "Opener",
    "WatchDir",
    "changing",
    "list_open",
    "open_root",
    "walk",
]

DATA_LINK = "..data"
CHANGED = frozenset({errno.ENOENT, errno.ENOTDIR, errno.ELOOP})
"""What an open below the root fails with when a writer removed a name or put a link in
place of a directory or a file since the listing: read the volume again."""
_PATH = getattr(os, "O_PATH", os.O_RDONLY)  # to open names in only: needs x, as a path walk
_ROOT = _PATH | os.O_DIRECTORY | os.O_CLOEXEC  # the user's path, followed
_DIRECTORY = os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_LIST = os.O_RDONLY | _DIRECTORY  # a directory to list
_SEARCH = _PATH | _DIRECTORY  # a directory to open names in
_WRITER_NAME = re.compile(r"\.\.(data_tmp$|\d)")  # '..data_tmp' and the '..<timestamp>' dirs

WatchDir = tuple[str, frozenset[str] | None]
Entry = tuple[str, str, str]
"""``(key, directory, name)``: the key's file is ``name`` in ``directory``, a path below the
volume's directory that names no link (``""``: that directory itself). For a single file,
``name`` is its path, opened as given."""


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
    entries: tuple[Entry, ...]
    """One per key, sorted by key."""
    watch: tuple[WatchDir, ...]
    """Directories to watch for a change of this volume, each with the entry names that
    matter in it (``None``: all)."""
    bad_names: tuple[str, ...] = ()
    """Names that are not printable UTF-8, so not keys, as keys would be named (a
    directory's with a trailing ``/``: nothing in it is listed), sorted; only when listed
    with ``skip_bad_names``, since otherwise the first one fails the listing."""


def open_root(path: str) -> int | None:
    """The volume's directory, opened to open names in (following ``path``, the user's
    choice; the caller closes it); ``None`` when ``path`` is a regular file.

    Raises:
        VolumeNotFoundError: ``path`` does not exist.
        ReadError: ``path`` can't be opened, or is neither a directory nor a regular file.
    """
    try:
        return os.open(path, _ROOT)
    except NotADirectoryError:
        pass
    except FileNotFoundError:
        raise VolumeNotFoundError(f"{path} does not exist", path=path) from None
    except OSError as exc:
        raise ReadError(f"cannot open {path}: {exc.strerror}", path=path) from None
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise VolumeNotFoundError(f"{path} does not exist", path=path) from None
    except OSError as exc:
        raise ReadError(f"cannot open {path}: {exc.strerror}", path=path) from None
    if not stat.S_ISREG(mode):
        raise ReadError(f"{path} is neither a directory nor a regular file", path=path)
    return None


def list_open(path: str, root: int | None, *, skip_bad_names: bool = False) -> Listing:
    """The listing of the volume at ``path``, whose directory is open as ``root`` (from
    :func:`open_root`; ``None``: a single file); with ``skip_bad_names``, a name that is
    not printable UTF-8 is left out and listed in :attr:`Listing.bad_names` (see :func:`walk`).

    Raises:
        ReadError: as :func:`walk`; or ``..data`` can't be read or points outside the volume.
        OSError: a directory can't be listed (``errno`` in :data:`CHANGED`: a writer is at work).
    """
    if root is None:
        return _list_file(path, skip_bad_names)
    real_root = os.path.realpath(path)
    try:
        revision = os.readlink(DATA_LINK, dir_fd=root)
    except FileNotFoundError:
        return _list_directory(path, root, real_root, skip_bad_names)
    except OSError as exc:
        if exc.errno != errno.EINVAL:  # EINVAL: ..data is not a link; it is ignored as a '..' name
            raise ReadError(f"cannot read {path}/{DATA_LINK}: {exc.strerror}", path=path) from None
        return _list_directory(path, root, real_root, skip_bad_names)
    return _list_kubelet(path, root, real_root, revision, skip_bad_names)


def _list_file(path: str, skip_bad_names: bool) -> Listing:
    key = os.path.basename(path)
    if not key.isprintable():  # a key as any other: printable UTF-8
        if not skip_bad_names:
            message = f"the name of {escaped(path)} is not printable UTF-8, so not a key"
            raise ReadError(message, path=path)
        bad_names: tuple[str, ...] = (key,)
    else:
        bad_names = ()
    parent = os.path.dirname(os.path.abspath(path))
    real = os.path.realpath(path)
    watch: dict[str, frozenset[str]] = {parent: frozenset({key, DATA_LINK})}
    real_parent, real_name = os.path.split(real)
    watch[real_parent] = watch.get(real_parent, frozenset()) | {real_name}
    entries = () if bad_names else ((key, "", path),)
    return Listing(Layout.FILE, None, entries, tuple(watch.items()), bad_names)


def _list_directory(path: str, root: int, real_root: str, skip_bad_names: bool) -> Listing:
    fd = os.open(".", _LIST, dir_fd=root)
    try:
        names = os.listdir(fd)
    finally:
        os.close(fd)
    if not names:  # a mount point not populated yet, or a volume being created
        raise ReadError(f"{path} is empty", path=path, transient=True)
    if any(_WRITER_NAME.match(name) for name in names):
        # the atomic writer's own names without '..data': its first write is under way
        raise ReadError(f"{path} is being written", path=path, transient=True)
    entries, directories, bad = walk(path, root, real_root, "", skip_bad_names=skip_bad_names)
    watch = tuple((_absolute(real_root, d), None) for d in directories)
    return Listing(Layout.DIRECTORY, None, entries, watch, bad)


def _list_kubelet(
    path: str, root: int, real_root: str, revision: str, skip_bad_names: bool
) -> Listing:
    # resolved by path, as a hint (a version named through a link of the volume is read):
    # the version directory is then opened below the root without following links, so a
    # link swapped in meanwhile is a change (read again), never a way out
    try:
        data_dir = _relative(real_root, os.path.realpath(os.path.join(real_root, revision)))
    except OSError:  # a link replaced while realpath resolved it (it then raises EINVAL)
        raise changing(path) from None
    if not data_dir:
        raise SymlinkEscapeError(f"{path}/{DATA_LINK} points outside the volume", path=path)
    entries, directories, bad = walk(path, root, real_root, data_dir, skip_bad_names=skip_bad_names)
    watch: list[WatchDir] = [(real_root, frozenset({DATA_LINK}))]
    watch.extend((_absolute(real_root, d), None) for d in directories)
    return Listing(Layout.KUBELET, revision, entries, tuple(watch), bad)


def _absolute(real_root: str, directory: str) -> str:
    return os.path.join(real_root, directory) if directory else real_root


class Opener:
    """Opens directories below a volume's root one name at a time, each relative to its
    parent's descriptor and without following a link. The directories on the way to the
    last one stay open, so that the next one, usually the same or a nearby one, costs only
    the names that differ. A context manager: it closes what it opened (never the root).
    """

    def __init__(self, root: int | None, *, listed: bool = False):
        self._root = root
        self._flags = _LIST if listed else _SEARCH  # listed: to scan, else to open names in
        self._open: list[tuple[str, int]] = []  # the directories open, from the root down

    def __enter__(self) -> Opener:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def directory(self, directory: str) -> int | None:
        """A descriptor of ``directory`` (a path below the root; ``""``: the root itself),
        for ``dir_fd=``; ``None`` without a root.

        Raises:
            OSError: ``errno`` in :data:`CHANGED` when a directory is gone or is a link now.
        """
        if self._root is None:
            return None
        held = self._open
        while held and not (directory + "/").startswith(held[-1][0] + "/"):
            os.close(held.pop()[1])  # not on the way to ``directory``
        base, fd = held[-1] if held else ("", self._root)
        if base == directory:
            return fd
        for name in directory[len(base) :].lstrip("/").split("/"):
            if name in ("", ".", ".."):
                raise ValueError(f"not a path below the root: {directory!r}")
            fd = os.open(name, self._flags, dir_fd=fd)
            base = f"{base}/{name}" if base else name
            held.append((base, fd))
        return fd

    def close(self) -> None:
        """Close the directories held open (never the root)."""
        while self._open:
            os.close(self._open.pop()[1])


def walk(
    path: str, root: int, real_root: str, top: str, *, skip_bad_names: bool = False
) -> tuple[tuple[Entry, ...], list[str], tuple[str, ...]]:
    """Keys with their files, the directories, and the names that can't be keys, under
    ``top`` (below ``root``, whose real path is ``real_root``); links are followed only to
    regular files inside the root. A name that is not printable UTF-8 raises, or with
    ``skip_bad_names`` is left out (a directory with all it holds) and returned apart.

    Raises:
        SymlinkEscapeError: a link points outside the volume.
        ReadError: a name is not printable (without ``skip_bad_names``); or (``transient``)
            a link changed while resolved.
        OSError: a directory can't be listed (``errno`` in :data:`CHANGED`: a writer is at work).
    """
    entries: list[Entry] = []
    bad: list[str] = []
    directories = [top]
    pending = [(top, "")]
    with Opener(root, listed=True) as opener:
        while pending:
            directory, prefix = pending.pop()
            within = directory + "/" if directory else ""
            with _scan(opener, root, directory) as scan:
                for entry in scan:
                    if entry.name.startswith(".."):
                        continue
                    key = prefix + entry.name
                    if not key.isprintable():  # also bytes that are not UTF-8 (lone surrogates)
                        if skip_bad_names:  # a directory is left out whole: say so
                            bad.append(key + "/" if entry.is_dir(follow_symlinks=False) else key)
                            continue
                        message = (
                            f"{path} has a file name that is not printable UTF-8: '{escaped(key)}'"
                        )
                        raise ReadError(message, path=path)
                    if entry.is_file(follow_symlinks=False):  # the most common first
                        entries.append((key, directory, entry.name))
                    elif entry.is_symlink():
                        target = _link_target(path, real_root, within + entry.name, key)
                        if target is not None:
                            entries.append((key, *target))
                    elif entry.is_dir(follow_symlinks=False):
                        directories.append(within + entry.name)
                        pending.append((within + entry.name, key + "/"))
    entries.sort()
    return tuple(entries), directories, tuple(sorted(bad))


@contextlib.contextmanager
def _scan(opener: Opener, root: int, directory: str) -> Iterator[Iterator[os.DirEntry[str]]]:
    """The entries of ``directory``, opened by ``opener``; the root, open to open names in
    only, is opened again to be listed."""
    held = opener.directory(directory) if directory else None  # the opener closes it
    fd = os.open(".", _LIST, dir_fd=root) if held is None else held
    try:
        with os.scandir(fd) as scan:  # scans a duplicate: fd stays open for what is below
            yield scan
    finally:
        if held is None:
            os.close(fd)


def _link_target(path: str, real_root: str, link: str, key: str) -> tuple[str, str] | None:
    """The directory below the root and the name of the file the link ``link`` leads to,
    if a regular file (links to directories are not followed). Resolved by path, as a
    hint: the reader opens the result below the root without following links, so a race
    here can't lead outside."""
    try:
        target = os.path.realpath(os.path.join(real_root, link))
    except OSError:  # a link replaced while realpath resolved it (it then raises EINVAL)
        raise changing(path) from None
    below = _relative(real_root, target)
    if below is None:
        message = f"key {key!r} in {path} is a link that points outside the volume"
        raise SymlinkEscapeError(message, path=path, key=key)
    if not below or not os.path.isfile(target):
        return None
    directory, _, name = below.rpartition("/")
    return directory, name


def _relative(real_root: str, target: str) -> str | None:
    """``target`` (an absolute, normalised path) relative to ``real_root``: ``""`` for the
    root itself, ``None`` when outside it."""
    if target == real_root:
        return ""
    prefix = real_root.rstrip("/") + "/"
    return target[len(prefix) :] if target.startswith(prefix) else None


def changing(path: str) -> ReadError:
    """The transient error of a volume that a writer changed while it was read."""
    return ReadError(f"{path} kept changing while being read", path=path, transient=True)
