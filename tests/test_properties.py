"""Random rotation sequences against a real volume, with readers taking snapshots throughout.

A hypothesis state machine writes the volume every way a writer does (the kubelet's atomic
swap adding, removing and changing keys, nested ones included; writes that change nothing;
in-place writes; per-file renames; versions that are invalid; the whole volume removed and
written again; bursts faster than the debounce), for inotify and for polling. Checked all
along: every snapshot a reader or callback gets is one version that was written and valid,
never a mix and never a rejected one; versions only increase; after each step the watcher
settles on the last valid version.

The CI profile runs 500 steps per mode. ``HYPOTHESIS_PROFILE=long python -m pytest
tests/test_properties.py`` runs up to 18,000, and shrinks a failure to its shortest form.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import secretwatch
from secretwatch.testing import AtomicVolume

from .conftest import TIMEOUT

settings.register_profile(
    "ci",  # 20 x 25 steps per mode, a few seconds; a failure is reported as found
    max_examples=20,
    stateful_step_count=25,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "long",  # and a failure is shrunk to its shortest form
    parent=settings.get_profile("ci"),
    max_examples=300,
    stateful_step_count=60,
    phases=list(Phase),
)
PROFILE = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

KEYS = ("username", "password", "config.json", "nested/token", "nested/deep/ca.json")
MAX_BYTES = 256
State = frozenset[tuple[str, str]]  # a volume's content, normalised for comparison


def is_json(key: str) -> bool:
    return key.endswith(".json")


def valid(files: dict[str, bytes]) -> bool:
    """What the watcher under test accepts: JSON keys parse, nothing empty or too large."""
    try:
        for key, data in files.items():
            if is_json(key):
                json.loads(data)
    except ValueError:
        return False
    return bool(files) and all(0 < len(data) <= MAX_BYTES for data in files.values())


def rejection(files: dict[str, bytes]) -> type[secretwatch.SecretWatchError]:
    """The error an invalid version gets: reading comes first, then decoding, validation."""
    if any(len(data) > MAX_BYTES for data in files.values()):
        return secretwatch.TooLargeError
    for key, data in files.items():
        if is_json(key):
            try:
                json.loads(data)
            except ValueError:
                return secretwatch.DecodeError
    return secretwatch.ValidationError


def state_of_files(files: dict[str, bytes]) -> State:
    return frozenset(
        (key, json.dumps(json.loads(data), sort_keys=True) if is_json(key) else data.decode())
        for key, data in files.items()
    )


def state_of(snapshot: secretwatch.Snapshot) -> State:
    return frozenset(
        (key, json.dumps(value, sort_keys=True) if is_json(key) else str(value))
        for key, value in snapshot.items()
    )


def reject_empty(snapshot: secretwatch.Snapshot) -> bool:
    """The validator: an empty value (a file caught truncated) is not a version."""
    return all(len(str(value)) > 0 for value in snapshot.values())


class Rotations(RuleBasedStateMachine):
    """One volume, one watcher, two readers; the rules are the writers."""

    polling: ClassVar[bool] = False

    def __init__(self) -> None:
        super().__init__()
        self.base = Path(tempfile.mkdtemp(prefix="secretwatch-prop-"))
        self.volume = AtomicVolume(self.base / "secret")
        self.stamps = itertools.count()
        self.files: dict[str, bytes] = {"username": b"first", "password": b"first"}
        self.volume.write(self.files)
        # every valid version written, numbered in the order written
        self.accepted: dict[State, int] = {state_of_files(self.files): 0}
        self.written = itertools.count(1)
        self.last_valid = state_of_files(self.files)
        self.present = True
        self.history: list[str] = []  # the steps so far, for a failure's message
        self.failures: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.errors: queue.SimpleQueue[secretwatch.SecretWatchError] = queue.SimpleQueue()
        self.watcher = secretwatch.SecretWatcher(
            self.volume.path,
            decoders={"*.json": "json", "*": "text"},
            validate=reject_empty,
            max_bytes=MAX_BYTES,
            debounce=0,  # every write is a load: more reads that may overlap a write
            polling=self.polling,
            poll_interval=0.02,
        )
        self.called = -1  # callbacks run one at a time, in order: numbers only increase
        self.watcher.subscribe(self.on_change)
        self.watcher.subscribe_errors(self.errors.put)
        self.watcher.start()
        self.stop = threading.Event()
        self.readers = [threading.Thread(target=self.read_continuously) for _ in range(2)]
        for reader in self.readers:
            reader.start()

    # -- what readers and callbacks check ---------------------------------------------

    def check(self, snapshot: secretwatch.Snapshot, who: str, after: int = -1) -> int:
        """The number of the written version ``snapshot`` is; a failure if it is none, or
        older than ``after`` (the number seen before)."""
        number = self.accepted.get(state_of(snapshot))
        if number is None:
            self.failures.put(f"{who} got a version never written valid: {sorted(snapshot)}")
            return after
        if number < after:
            self.failures.put(f"{who} went back from written version {after} to {number}")
        return number

    def on_change(self, change: secretwatch.Change) -> None:
        self.called = self.check(change.new, "callback", self.called)

    def read_continuously(self) -> None:
        last = self.watcher.snapshot
        number = self.check(last, "reader")
        # a sample every millisecond: a reader spinning on the GIL would slow the writers
        # (every system call waits for the GIL back) a hundredfold, and test little more
        while not self.stop.wait(0.001):
            snapshot = self.watcher.snapshot
            if snapshot is last:
                continue
            if snapshot.version < last.version:
                self.failures.put(f"version went back from {last.version} to {snapshot.version}")
            number = self.check(snapshot, "reader", number)
            last = snapshot

    # -- writers ------------------------------------------------------------------------

    def value(self, key: str) -> bytes:
        stamp = next(self.stamps)
        return json.dumps({"stamp": stamp}).encode() if is_json(key) else f"v{stamp}".encode()

    def expect(self, files: dict[str, bytes]) -> bool:
        """Record what the disk will hold; a valid version becomes acceptable *before* it
        is written, so a reader that sees it at once is not flagged."""
        self.files = files
        if valid(files):  # numbered anew when written again: it is the newest then
            self.accepted[state_of_files(files)] = next(self.written)
            self.last_valid = state_of_files(files)
            return True
        return False

    def settle(self, accepted: bool) -> None:
        """Wait until the watcher has dealt with the last write: a valid one is in force, an
        invalid one was reported; either way the last valid version is what readers get."""
        if accepted:
            while state_of(snapshot := self.watcher.snapshot) != self.last_valid:
                if self.watcher.wait_for_change(TIMEOUT, since=snapshot.version) is None:
                    self.fail(f"the watcher did not apply a valid version within {TIMEOUT} s")
        else:
            expected = rejection(self.files) if self.present else secretwatch.VolumeNotFoundError
            try:  # errors come on another thread: skip a late one about an earlier step
                while not isinstance(self.errors.get(timeout=TIMEOUT), expected):
                    pass
            except queue.Empty:
                self.fail(f"no {expected.__name__} within {TIMEOUT} s")
        assert state_of(self.watcher.snapshot) == self.last_valid

    def fail(self, message: str) -> None:
        steps = "\n  ".join(self.history)
        pytest.fail(f"{message}; last error {self.watcher.last_error!r}; steps:\n  {steps}")

    def drain_errors(self) -> None:
        while not self.errors.empty():
            self.errors.get()

    @rule(
        changes=st.dictionaries(st.sampled_from(KEYS), st.booleans(), min_size=1),
    )
    def kubelet_write(self, changes: dict[str, bool]) -> None:
        """Add, change (True) or remove (False) keys, in one atomic kubelet swap."""
        self.history.append(f"kubelet_write(changes={changes!r})")
        files = dict(self.files) if self.present else {}
        for key, keep in changes.items():
            if keep:
                files[key] = self.value(key)
            else:
                files.pop(key, None)
        if not files:
            files = {"username": self.value("username")}
        self.drain_errors()
        accepted = self.expect(files)
        written = self.volume.write(files)
        self.present = True
        if written or accepted:  # an invalid version already there is not written again
            self.settle(accepted)

    @rule(key=st.sampled_from(KEYS), kind=st.sampled_from(["bad json", "empty", "too large"]))
    def invalid_write(self, key: str, kind: str) -> None:
        """A version the watcher must reject: the last valid one stays in force."""
        self.history.append(f"invalid_write(key={key!r}, kind={kind!r})")
        files = dict(self.files) if self.present else {}
        other = "username" if key != "username" else "password"
        files[other] = self.value(other)  # so that no two invalid versions are the same
        stamp = next(self.stamps)
        files[key] = {
            "bad json": f'{{"stamp": {stamp}'.encode(),
            "empty": b"",
            "too large": f"{stamp}".encode().ljust(MAX_BYTES + 1, b"x"),
        }[kind]
        if kind == "bad json" and not is_json(key):
            files["config.json"] = files[key]
        self.drain_errors()
        self.expect(files)
        self.volume.write(files)
        self.present = True
        self.settle(False)

    @precondition(lambda self: self.present)
    @rule(force=st.booleans())
    def same_write(self, force: bool) -> None:
        """The kubelet rewriting what is there (``force``: a new version dir, same bytes)."""
        self.history.append(f"same_write(force={force!r})")
        self.volume.write(self.files, force=force)
        if valid(self.files):
            self.settle(True)

    @precondition(lambda self: self.present and valid(self.files))
    @rule(key=st.sampled_from(KEYS), in_place=st.booleans())
    def single_file_write(self, key: str, in_place: bool) -> None:
        """One file rewritten in place (truncate, write) or renamed over (Vault Agent)."""
        self.history.append(f"single_file_write(key={key!r}, in_place={in_place!r})")
        files = {**self.files, key: self.value(key)}
        self.drain_errors()
        accepted = self.expect(files)
        if in_place:
            self.volume.write_in_place(key, files[key])
        else:
            self.volume.replace(key, files[key])
        self.settle(accepted)

    @precondition(lambda self: self.present)
    @rule()
    def remove_volume(self) -> None:
        """The whole volume disappears (reported); the last valid version stays in force."""
        self.history.append("remove_volume()")
        self.drain_errors()
        self.volume.remove()
        self.present = False
        self.files = {}
        self.settle(False)

    @rule(writes=st.lists(st.sampled_from(KEYS), min_size=2, max_size=6))
    def burst(self, writes: list[str]) -> None:
        """Kubelet writes back to back, each adding a key and changing every other one: a
        read that mixed two of them would be seen."""
        self.history.append(f"burst(writes={writes!r})")
        files = dict(self.files) if self.present else {}
        for key in writes:
            files = {name: self.value(name) for name in {*files, key}}
            self.expect(files)
            self.volume.write(files)
        self.present = True
        self.settle(True)

    @invariant()
    def nothing_wrong_seen(self) -> None:
        if not self.failures.empty():
            pytest.fail(self.failures.get())

    def teardown(self) -> None:
        self.stop.set()
        for reader in self.readers:
            reader.join(TIMEOUT)
        self.watcher.stop()
        shutil.rmtree(self.base, ignore_errors=True)
        self.nothing_wrong_seen()


class PolledRotations(Rotations):
    polling = True


@pytest.mark.timeout(0 if PROFILE.max_examples > 100 else 120)  # the long profile: no limit
@pytest.mark.parametrize("machine", [Rotations, PolledRotations], ids=["inotify", "polling"])
def test_every_snapshot_is_one_valid_version(machine: Any) -> None:
    run_state_machine_as_test(machine, settings=PROFILE)
