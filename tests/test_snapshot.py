"""Snapshots are immutable mappings whose repr shows keys only; changes compare bytes."""

from __future__ import annotations

import pytest

from secretwatch import Change, RedactedBytes, RedactedStr, Snapshot


def snapshot(version: int, **raw: bytes) -> Snapshot:
    return Snapshot({k: v.decode() for k, v in raw.items()}, version=version, path="/v", raw=raw)


def test_snapshot_is_an_immutable_mapping() -> None:
    """Mapping reads work; attribute and item assignment do not."""
    snap = snapshot(1, a=b"1", b=b"2")
    assert dict(snap) == {"a": "1", "b": "2"}
    assert len(snap) == 2
    assert "a" in snap
    assert snap.raw("a") == b"1"
    with pytest.raises(AttributeError):
        snap.version = 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        snap["a"] = "x"  # type: ignore[index]
    with pytest.raises(AttributeError):
        del snap.path


def test_snapshot_repr_shows_keys_not_values() -> None:
    """repr names the path, version and keys."""
    assert repr(snapshot(3, user=b"hunter2")) == "Snapshot(path='/v', version=3, keys=['user'])"


def test_change_between() -> None:
    """added, removed and modified come from the bytes of each key."""
    old = snapshot(1, a=b"1", b=b"2", c=b"3")
    new = snapshot(2, a=b"1", b=b"x", d=b"4")
    change = Change.between(old, new)
    assert (change.added, change.removed, change.modified) == ({"d"}, {"c"}, {"b"})
    assert change.keys == {"b", "c", "d"}
    assert "hunter" not in repr(change)
    assert repr(change) == (
        "Change(path='/v', version=1->2, added=['d'], removed=['c'], modified=['b'])"
    )


def test_redacted_values_behave_like_str_and_bytes() -> None:
    """Equality, hashing and str() are the value's; repr is masked."""
    text = RedactedStr("hunter2")
    assert text == "hunter2"
    assert hash(text) == hash("hunter2")
    assert f"{text}" == "hunter2"
    assert "hunter2" not in repr(text)
    assert "hunter2" not in repr([text])
    data = RedactedBytes(b"hunter2")
    assert data == b"hunter2"
    assert "hunter2" not in repr({"k": data})


def test_raw_bytes_are_redacted() -> None:
    """raw() gives the undecoded bytes, masked in reprs like any value."""
    raw = snapshot(1, a=b"hunter2").raw("a")
    assert raw == b"hunter2"
    assert "hunter2" not in repr(raw)
