"""The check CI runs on the built sdist and wheel fails on each thing a packaging mistake
drops or adds, naming the file (a real git repository and real archives in tmp_path)."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

import pytest

LICENSE = "Apache License, Version 2.0 (a stand-in)\n"
METADATA = """\
Metadata-Version: 2.4
Name: secretwatch
Version: 0.1.0
License-Expression: Apache-2.0
License-File: LICENSE
Classifier: Typing :: Typed
"""
SOURCES = {
    ".ci/run": "#!/bin/sh\n",
    ".gitignore": "dist/\n",
    "LICENSE": LICENSE,
    "README.md": "# secretwatch\n",
    "pyproject.toml": "[project]\n",
    "secretwatch/__init__.py": "",
    "secretwatch/py.typed": "",
    "secretwatch/_cli/__init__.py": "",
    "secretwatch/_cli/sidecar/__init__.py": "",
    "secretwatch/testing/__init__.py": "",
    "tests/test_a.py": "",
    "docs/index.md": "# docs\n",
    "examples/print_changes.py": "",
}
PACKAGE = [name for name in SOURCES if name.startswith("secretwatch/")]
SDIST = [name for name in SOURCES if not name.startswith(".ci/")]
DIST_INFO = "secretwatch-0.1.0.dist-info"


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A git work tree holding SOURCES, all tracked."""
    root = tmp_path / "source"
    for name, text in SOURCES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "."], check=True)
    return root


def build(
    dist: Path,
    wheel_files: Iterable[str] = PACKAGE,
    metadata: str = METADATA,
    sdist_files: Iterable[str] = SDIST,
) -> Path:
    """Write a wheel and an sdist holding the given files to ``dist``."""
    dist.mkdir()
    with zipfile.ZipFile(dist / "secretwatch-0.1.0-py3-none-any.whl", "w") as wheel:
        for name in wheel_files:
            wheel.writestr(name, SOURCES.get(name, ""))
        wheel.writestr(f"{DIST_INFO}/METADATA", metadata)
        wheel.writestr(f"{DIST_INFO}/licenses/LICENSE", LICENSE)
    with tarfile.open(dist / "secretwatch-0.1.0.tar.gz", "w:gz") as sdist:
        for name in [*sdist_files, "PKG-INFO"]:
            data = SOURCES.get(name, metadata).encode()
            member = tarfile.TarInfo(f"secretwatch-0.1.0/{name}")
            member.size = len(data)
            sdist.addfile(member, io.BytesIO(data))
    return dist


def check(dist: Path, source: Path) -> subprocess.CompletedProcess[str]:
    """Run the check as CI does, from the project's root."""
    return subprocess.run(
        [sys.executable, "-m", "tests.dist_check", str(dist), str(source)],
        cwd=Path(__file__).parent.parent,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_complete_archives_pass(source: Path, tmp_path: Path) -> None:
    """A wheel of the whole package and an sdist of every tracked file pass."""
    done = check(build(tmp_path / "dist"), source)
    assert done.returncode == 0, done.stderr
    assert "hold what git tracks" in done.stdout


def test_a_subpackage_missing_from_the_wheel_fails(source: Path, tmp_path: Path) -> None:
    """A subpackage the build left out (a packages list, an exclude, a .gitignore) is named."""
    wheel_files = [name for name in PACKAGE if not name.startswith("secretwatch/_cli/sidecar/")]
    done = check(build(tmp_path / "dist", wheel_files=wheel_files), source)
    assert done.returncode == 1
    assert done.stderr == "missing from the wheel: secretwatch/_cli/sidecar/__init__.py\n"


def test_py_typed_missing_from_the_wheel_fails(source: Path, tmp_path: Path) -> None:
    """Without py.typed the 'Typing :: Typed' classifier is a lie, and the check says so."""
    wheel_files = [name for name in PACKAGE if name != "secretwatch/py.typed"]
    done = check(build(tmp_path / "dist", wheel_files=wheel_files), source)
    assert done.returncode == 1
    assert "missing from the wheel: secretwatch/py.typed" in done.stderr
    assert "'Typing :: Typed' is claimed" in done.stderr


def test_tests_and_examples_in_the_wheel_fail(source: Path, tmp_path: Path) -> None:
    """Tests and examples installed into site-packages are named."""
    wheel_files = [*PACKAGE, "tests/test_a.py", "examples/print_changes.py"]
    done = check(build(tmp_path / "dist", wheel_files=wheel_files), source)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "in the wheel but not a tracked file of the package: examples/print_changes.py",
        "in the wheel but not a tracked file of the package: tests/test_a.py",
    ]


def test_license_metadata_is_checked(source: Path, tmp_path: Path) -> None:
    """Another license expression, no License-File and a license classifier are named."""
    metadata = (
        METADATA.replace("Apache-2.0", "MIT").replace("License-File: LICENSE\n", "")
        + "Classifier: License :: OSI Approved :: Apache Software License\n"
    )
    done = check(build(tmp_path / "dist", metadata=metadata), source)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "wheel metadata: License-Expression is 'MIT', not 'Apache-2.0'",
        "wheel metadata: License-File is None, not ['LICENSE']",
        "wheel metadata: a license classifier beside the SPDX expression:"
        " License :: OSI Approved :: Apache Software License",
    ]


def test_the_sdist_must_hold_every_tracked_file(source: Path, tmp_path: Path) -> None:
    """An sdist without the docs, or with a file git does not track, is named."""
    sdist_files = [
        *(name for name in SDIST if not name.startswith("docs/")),
        "secretwatch/scratch.py",
    ]
    done = check(build(tmp_path / "dist", sdist_files=sdist_files), source)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "missing from the sdist: docs/index.md",
        "in the sdist but not a tracked file: secretwatch/scratch.py",
    ]
