"""AtomicVolume: write a directory exactly as the kubelet writes a secret volume.

The steps and their order follow the kubelet's ``AtomicWriter.Write``
(``pkg/volume/util/atomic_writer.go``), so a test sees the events, the timing windows and
the intermediate states a pod sees: the new version is committed by one ``rename`` of
``..data_tmp`` onto ``..data``; visible links are added and removed after that rename; the
old version is deleted last.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["AtomicVolume"]

DATA_LINK = "..data"
DATA_TMP_LINK = "..data_tmp"
_MAX_NAME = 255
_MAX_PATH = 4096

Payload = Mapping[str, str | bytes]


class AtomicVolume:
    """A secret volume written the kubelet's way, for tests (yours and ours).

    Args:
        path: the volume directory; created on the first :meth:`write` if missing.
        mode: the file mode of written keys (the pod's ``defaultMode``), 0o644 by default.

    Examples:
        >>> volume = AtomicVolume(tmp_path / "db-secret")  # doctest: +SKIP
        >>> volume.write({"username": "app", "password": "s3cret"})  # doctest: +SKIP
        True
    """

    def __init__(self, path: str | os.PathLike[str], *, mode: int = 0o644):
        self.path = Path(path)
        self.mode = mode
        self.committed_at: int | None = None
        """``time.perf_counter_ns()`` just before the last :meth:`write` committed (renamed
        ``..data_tmp`` onto ``..data``), or ``None``: how long a reader took to see a rotation
        is measured from here."""

    def __repr__(self) -> str:
        return f"AtomicVolume({str(self.path)!r})"

    @property
    def current(self) -> Path | None:
        """The version directory ``..data`` points to, or ``None`` before the first write."""
        try:
            return self.path / os.readlink(self.path / DATA_LINK)
        except FileNotFoundError:
            return None

    def write(self, payload: Payload, *, force: bool = False) -> bool:
        """Replace the volume's content with ``payload`` (key -> value), atomically.

        Keys may be nested paths (``"nested/dir/key"``), as ``items[].path`` makes them.
        ``str`` values are written as UTF-8. Returns ``False`` when nothing changed (the
        kubelet then writes nothing); ``force=True`` writes a new version anyway, as a
        writer that does not compare would.
        """
        files = {_checked(key): _encode(value) for key, value in payload.items()}  # step 1
        self.path.mkdir(parents=True, exist_ok=True)
        old = self.current  # step 2
        removed = (_keys(old) if old is not None else set()) - files.keys()  # step 3
        if old is not None and not force and not removed and _same(old, files):  # step 4
            self._link_visible(files)
            return False
        new = Path(tempfile.mkdtemp(prefix=_timestamp_prefix(), dir=self.path))  # step 5
        new.chmod(0o755)
        for key, data in files.items():  # step 6
            target = new / key
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            target.chmod(self.mode)
        # step 7 (ownership for fsGroup) changes nothing here: the files are ours already
        tmp_link = self.path / DATA_TMP_LINK
        tmp_link.unlink(missing_ok=True)  # left over from an interrupted write
        os.symlink(new.name, tmp_link)  # step 8
        self.committed_at = time.perf_counter_ns()
        os.rename(tmp_link, self.path / DATA_LINK)  # step 9: the commit
        self._link_visible(files)  # step 10
        self._unlink_visible(removed, keep=files)  # step 11
        if old is not None:
            shutil.rmtree(old)  # step 12
        return True

    def write_in_place(self, key: str, value: str | bytes) -> None:
        """Overwrite one key's file in the current version, non-atomically (truncate, write).

        This is what editors and some sidecars do: a reader can catch the file empty or
        half written. Without ``..data`` (a plain directory) the file is ``path / key``.
        """
        base = self.current or self.path
        target = base / _checked(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as file:
            file.write(_encode(value))

    def replace(self, key: str, value: str | bytes) -> None:
        """Write one key to a temporary file beside it, then rename it over the key.

        This is how Vault Agent and consul-template write: each file is replaced
        atomically, but two files are replaced by two renames, so a reader between them
        sees a new certificate beside an old key. Without ``..data`` the file is
        ``path / key``; with it, the file in the current version.
        """
        base = self.current or self.path
        target = base / _checked(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        # a '..' name is never a key, so a reader between the steps sees no stray key
        fd, tmp = tempfile.mkstemp(prefix=f"..{target.name}.", dir=target.parent)
        with os.fdopen(fd, "wb") as file:
            file.write(_encode(value))
        os.chmod(tmp, self.mode)
        os.rename(tmp, target)

    def remove(self) -> None:
        """Make the whole volume disappear at once, as an unmount does.

        The directory is renamed away (one atomic step), then deleted.
        """
        if not self.path.exists():
            return
        gone = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.removed.", dir=self.path.parent))
        os.rename(self.path, gone / self.path.name)
        shutil.rmtree(gone)

    def read(self) -> dict[str, bytes]:
        """The current payload (key -> bytes) as the kubelet would compare it."""
        current = self.current
        return _read_tree(current) if current is not None else {}

    def _link_visible(self, files: Payload) -> None:
        for top in sorted({key.split("/", 1)[0] for key in files}):
            link = self.path / top
            if not link.is_symlink():
                os.symlink(f"{DATA_LINK}/{top}", link)

    def _unlink_visible(self, removed: set[str], *, keep: Payload) -> None:
        kept = {key.split("/", 1)[0] for key in keep}
        for top in sorted({key.split("/", 1)[0] for key in removed} - kept):
            link = self.path / top
            if link.is_symlink():
                link.unlink()


def _checked(key: str) -> str:
    """The kubelet's payload path validation (step 1)."""
    if not key or os.path.isabs(key):
        raise ValueError(f"{key!r}: a key must be a non-empty relative path")
    if len(key.encode()) > _MAX_PATH:
        raise ValueError(f"{key[:40]!r}...: a key path must be at most {_MAX_PATH} bytes")
    if key.startswith(".."):
        raise ValueError(f"{key!r}: a key must not start with '..'")
    for part in key.split("/"):
        if part in ("", ".", ".."):
            raise ValueError(f"{key!r}: a key must not contain empty, '.' or '..' elements")
        if len(part.encode()) > _MAX_NAME:
            raise ValueError(f"{key!r}: each element of a key must be at most {_MAX_NAME} bytes")
    return key


def _encode(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def _timestamp_prefix() -> str:
    return datetime.now(UTC).strftime("..%Y_%m_%d_%H_%M_%S.")


def _keys(top: Path) -> set[str]:
    return {
        Path(directory, name).relative_to(top).as_posix()
        for directory, _dirs, names in os.walk(top)
        for name in names
    }


def _same(top: Path, files: dict[str, bytes]) -> bool:
    """Whether ``top`` holds exactly ``files``; unreadable files count as different."""
    try:
        return _read_tree(top) == files
    except PermissionError:  # written with mode 0, and we are not root
        return False


def _read_tree(top: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for directory, _dirs, names in os.walk(top):
        for name in names:
            full = Path(directory, name)
            files[full.relative_to(top).as_posix()] = full.read_bytes()
    return files
