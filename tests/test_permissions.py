"""An unreadable file rejects the version; the watcher keeps the last good one and goes on.

Root reads any file, so as root the scenario runs in a child process stripped of the
capabilities that bypass file permissions (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCENARIO = """
import json, queue, sys
import secretwatch
from secretwatch.testing import AtomicVolume

volume = AtomicVolume(sys.argv[1])
volume.write({"a": "1", "b": "1"})
changes, errors = queue.SimpleQueue(), queue.SimpleQueue()
with secretwatch.watch(volume.path, debounce=0) as secrets:
    secrets.subscribe(changes.put)
    secrets.subscribe_errors(errors.put)
    AtomicVolume(volume.path, mode=0o000).write({"a": "2", "b": "2"})
    error = errors.get(timeout=10)
    result = {
        "error": type(error).__name__,
        "message": str(error),
        "last_error": secrets.last_error is error,
        "kept": secrets["a"],
        "version": secrets.snapshot.version,
    }
    volume.write({"a": "3", "b": "3"})
    result["after"] = changes.get(timeout=10).new["a"]
print(json.dumps(result))
"""


def unprivileged() -> list[str]:
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot make a file unreadable to root")
    caps = "-dac_override,-dac_read_search"
    return [setpriv, f"--bounding-set={caps}", f"--inh-caps={caps}"]


def test_unreadable_file_rejects_the_version(tmp_path: Path) -> None:
    """Permission denied: ReadError naming the key, last good value kept, next version applied."""
    command = [*unprivileged(), sys.executable, "-c", SCENARIO, str(tmp_path / "secret")]
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["error"] == "ReadError"
    assert "permission denied" in result["message"].lower()
    assert "'a'" in result["message"]
    assert result["last_error"] is True
    assert (result["kept"], result["version"]) == ("1", 1)
    assert result["after"] == "3"


UNWATCHABLE = """
import json, os, sys
import secretwatch
from secretwatch._watch.inotify import inotify

folder = os.path.join(sys.argv[1], "locked")
os.mkdir(folder)
with open(os.path.join(folder, "token"), "w") as file:
    file.write("t")
os.chmod(folder, 0o311)  # files reachable, the directory itself not readable: no watch
with secretwatch.watch(os.path.join(folder, "token")) as secrets:
    result = {"mode": secrets.mode, "value": secrets["token"]}
leftover = inotify()._watch_for_wd.get(-1)
result["leaked"] = 0 if leftover is None else len(leftover.callbacks)
print(json.dumps(result))
"""


def test_unwatchable_directory_falls_back_to_polling_without_a_leak(tmp_path: Path) -> None:
    """inotify refused (EACCES): the watcher polls, and leaves no callback behind."""
    tmp_path.chmod(0o755)
    command = [*unprivileged(), sys.executable, "-c", UNWATCHABLE, str(tmp_path)]
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result == {"mode": "polling", "value": "t", "leaked": 0}
