"""Snapshots (one decoded, immutable version of a volume) and the changes between them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

from secretwatch._read.values import RedactedBytes

__all__ = ["Change", "Snapshot"]


class Snapshot(Mapping[str, Any]):
    """One consistent, decoded version of a volume: an immutable ``Mapping[str, Any]``.

    Keys are the relative paths of the volume's files (``"tls.crt"``, ``"nested/dir/key"``);
    values are what each key's decoder made of its bytes. A snapshot never changes: a
    rotation produces a new one. Its ``repr`` shows keys, never values.

    Attributes:
        version: 1 for the first load, +1 for every applied change; 0 for the empty snapshot
            of a watcher that has loaded nothing yet.
        path: the watched path.
        loaded_at: when this version was applied (UTC).
    """

    __slots__ = ("_data", "_raw", "loaded_at", "path", "version")

    _data: dict[str, Any]
    _raw: dict[str, bytes]
    version: int
    path: str
    loaded_at: datetime

    def __init__(
        self,
        data: Mapping[str, Any],
        *,
        version: int,
        path: str,
        raw: Mapping[str, bytes] | None = None,
        loaded_at: datetime | None = None,
    ):
        setattr_ = object.__setattr__
        setattr_(self, "_data", dict(data))
        setattr_(self, "_raw", dict(raw) if raw is not None else {})
        setattr_(self, "version", version)
        setattr_(self, "path", path)
        setattr_(self, "loaded_at", loaded_at or datetime.now(UTC))

    @classmethod
    def empty(cls, path: str) -> Snapshot:
        """The version-0 snapshot of a watcher that has loaded nothing yet."""
        return cls({}, version=0, path=path)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"Snapshot is immutable (cannot set {name!r})")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"Snapshot is immutable (cannot delete {name!r})")

    def __repr__(self) -> str:
        return f"Snapshot(path={self.path!r}, version={self.version}, keys={sorted(self._data)!r})"

    def raw(self, key: str) -> RedactedBytes:
        """The bytes of ``key`` as read from the volume, before decoding."""
        return RedactedBytes(self._raw[key])

    def _same_content(self, files: Mapping[str, bytes]) -> bool:
        """Whether ``files`` (key -> bytes) is exactly this snapshot's content."""
        return self._raw == files


@dataclass(frozen=True, slots=True, repr=False)
class Change:
    """What one applied rotation changed.

    Attributes:
        old: the snapshot before the change.
        new: the snapshot after it.
        added: keys that ``new`` has and ``old`` had not.
        removed: keys that ``old`` had and ``new`` has not.
        modified: keys in both whose content differs.
    """

    old: Snapshot
    new: Snapshot
    added: frozenset[str]
    removed: frozenset[str]
    modified: frozenset[str]

    @classmethod
    def between(cls, old: Snapshot, new: Snapshot) -> Change:
        """The change from ``old`` to ``new``, comparing the bytes of each key."""
        old_keys, new_keys = old._raw.keys(), new._raw.keys()
        return cls(
            old=old,
            new=new,
            added=frozenset(new_keys - old_keys),
            removed=frozenset(old_keys - new_keys),
            modified=frozenset(k for k in old_keys & new_keys if old._raw[k] != new._raw[k]),
        )

    @property
    def keys(self) -> frozenset[str]:
        """Every key this change touched: ``added | removed | modified``."""
        return self.added | self.removed | self.modified

    def __repr__(self) -> str:
        return (
            f"Change(path={self.new.path!r}, version={self.old.version}->{self.new.version}, "
            f"added={sorted(self.added)!r}, removed={sorted(self.removed)!r}, "
            f"modified={sorted(self.modified)!r})"
        )
