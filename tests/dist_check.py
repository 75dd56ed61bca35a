"""Check a built sdist and wheel against the files git tracks (``.ci/run`` runs it).

    python -m tests.dist_check DIST_DIR [SOURCE_DIR]

The wheel holds exactly the package's tracked files (every subpackage, ``py.typed``) and its
``.dist-info``: no tests, examples or benchmarks; its metadata names the license, and the
license file is the source's. The sdist holds every tracked file but CI's own. Each file
missing or extra is named, and the exit status is 1.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path, PurePosixPath

PACKAGE = "secretwatch"
LICENSE_EXPRESSION = "Apache-2.0"
LICENSE_FILE = "LICENSE"
NOT_IN_SDIST = (".ci/",)  # CI's own scripts: not part of the source distribution


def tracked_files(source: Path) -> set[str]:
    """The files git tracks under ``source``, as paths relative to it."""
    listing = subprocess.run(
        ["git", "-C", str(source), "ls-files", "-z"], check=True, capture_output=True
    ).stdout
    return {name for name in listing.decode().split("\0") if name}


def wheel_problems(wheel: Path, source: Path, tracked: set[str]) -> list[str]:
    """What is wrong with ``wheel``: files missing or extra, and its license metadata."""
    with zipfile.ZipFile(wheel) as archive:
        names = {name for name in archive.namelist() if not name.endswith("/")}
        dist_infos = {
            PurePosixPath(name).parent.as_posix()
            for name in names
            if PurePosixPath(name).name == "METADATA" and name.count("/") == 1
        }
        if len(dist_infos) != 1:
            return [f"{wheel.name}: expected one .dist-info/METADATA, found {sorted(dist_infos)}"]
        (dist_info,) = dist_infos
        metadata = Parser().parsestr(archive.read(f"{dist_info}/METADATA").decode())
        license_path = f"{dist_info}/licenses/{LICENSE_FILE}"
        shipped_license = archive.read(license_path) if license_path in names else None

    expected = {name for name in tracked if name.startswith(f"{PACKAGE}/")}
    problems = [f"missing from the wheel: {name}" for name in sorted(expected - names)]
    problems += [
        f"in the wheel but not a tracked file of the package: {name}"
        for name in sorted(names - expected)
        if not name.startswith(f"{dist_info}/")
    ]
    if metadata["License-Expression"] != LICENSE_EXPRESSION:
        problems.append(
            f"wheel metadata: License-Expression is {metadata['License-Expression']!r},"
            f" not {LICENSE_EXPRESSION!r}"
        )
    if metadata.get_all("License-File") != [LICENSE_FILE]:
        problems.append(
            f"wheel metadata: License-File is {metadata.get_all('License-File')},"
            f" not [{LICENSE_FILE!r}]"
        )
    classifiers = metadata.get_all("Classifier") or []
    problems += [
        f"wheel metadata: a license classifier beside the SPDX expression: {classifier}"
        for classifier in classifiers
        if classifier.startswith("License ::")
    ]
    if "Typing :: Typed" in classifiers and f"{PACKAGE}/py.typed" not in names:
        problems.append(f"wheel: 'Typing :: Typed' is claimed but {PACKAGE}/py.typed is missing")
    if shipped_license is None:
        problems.append(f"missing from the wheel: {license_path}")
    elif shipped_license != (source / LICENSE_FILE).read_bytes():
        problems.append(f"wheel: {license_path} differs from the source's {LICENSE_FILE}")
    return problems


def sdist_problems(sdist: Path, tracked: set[str]) -> list[str]:
    """What is wrong with ``sdist``: tracked files missing from it, files it should not hold."""
    with tarfile.open(sdist) as archive:
        names = {
            member.name.partition("/")[2] for member in archive.getmembers() if member.isfile()
        }
    expected = {name for name in tracked if not name.startswith(NOT_IN_SDIST)}
    problems = [f"missing from the sdist: {name}" for name in sorted(expected - names)]
    problems += [
        f"in the sdist but not a tracked file: {name}"
        for name in sorted(names - expected - {"PKG-INFO"})
    ]
    return problems


def main(argv: list[str]) -> int:
    """Check the one wheel and the one sdist in ``argv[0]``; return the exit status."""
    if not 1 <= len(argv) <= 2:
        print(__doc__, file=sys.stderr)
        return 2
    dist = Path(argv[0])
    source = Path(argv[1]) if len(argv) == 2 else Path.cwd()
    wheels, sdists = sorted(dist.glob("*.whl")), sorted(dist.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        found = [path.name for path in [*wheels, *sdists]]
        print(f"{dist}: expected one wheel and one sdist, found {found}", file=sys.stderr)
        return 1
    tracked = tracked_files(source)
    problems = wheel_problems(wheels[0], source, tracked) + sdist_problems(sdists[0], tracked)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    print(f"{wheels[0].name} and {sdists[0].name} hold what git tracks")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
