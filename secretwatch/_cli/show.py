"""``secretwatch show PATH``: what a volume holds, without a single value.

Keys, sizes, the ``..data`` version, the writer detected, and a fingerprint per key to
compare versions across pods. A fingerprint is HMAC-SHA256 keyed with
``SECRETWATCH_FINGERPRINT_KEY`` (random per process when unset), so that a low-entropy
value can't be guessed offline from it: only fingerprints made with the same key compare.

Every name printed as text (the path, the ``..data`` target, the keys) is escaped (see
:func:`escaped`), so that a name can neither draw on the terminal nor pass for another line;
JSON escapes them its own way. A name below the volume that is not printable UTF-8 can't be
a key (a watcher rejects the version that holds it): ``show`` lists the keys it can and
names those entries apart, escaped in JSON too (a name that is not UTF-8 has no JSON
string), without reading them, and exits with :data:`BAD_NAMES_EXIT`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from typing import Any, TextIO

from secretwatch._read.names import escaped
from secretwatch._read.volume import Layout, is_subpath_mount, read_volume

__all__ = [
    "BAD_NAMES_EXIT",
    "FINGERPRINT_KEY_VARIABLE",
    "bad_names_warning",
    "describe_volume",
    "escaped",
    "print_volume",
]

FINGERPRINT_KEY_VARIABLE = "SECRETWATCH_FINGERPRINT_KEY"
BAD_NAMES_EXIT = 3
"""``show``'s exit status when it listed the volume but some names in it are not printable
UTF-8: not 0, since a watcher rejects that volume; not 1 (nothing could be shown)."""
_WRITERS = {
    Layout.KUBELET: "kubelet (atomic writer, ..data symlink)",
    Layout.DIRECTORY: "plain directory",
    Layout.FILE: "single file",
}


def describe_volume(path: str, *, max_bytes: int) -> dict[str, Any]:
    """A JSON-ready description of one consistent version of the volume at ``path``.

    Raises:
        SecretWatchError: the volume can't be read (missing, unreadable, too large).
    """
    path = os.path.abspath(path)
    version = read_volume(path, max_bytes=max_bytes, skip_bad_names=True)
    configured = os.environ.get(FINGERPRINT_KEY_VARIABLE, "")
    key = configured.encode() or secrets.token_bytes(32)
    subpath = version.listing.layout is Layout.FILE and is_subpath_mount(path)
    return {
        "path": path,
        "layout": str(version.listing.layout),
        "writer": _WRITERS[version.listing.layout],
        "version": version.listing.revision,
        "subpath_mount": subpath,
        "fingerprint_key": FINGERPRINT_KEY_VARIABLE if configured else "random",
        "bad_names": sorted(escaped(name) for name in version.listing.bad_names),
        "keys": [
            {
                "key": name,
                "size": len(data),
                "fingerprint": "hmac-sha256:"
                + hmac.new(key, data, hashlib.sha256).hexdigest()[:32],
            }
            for name, data in sorted(version.files.items())
        ],
    }


def bad_names_warning(description: dict[str, Any]) -> str | None:
    """A line for stderr when the volume of ``description`` holds names that are not
    printable UTF-8 (``None`` when it holds none)."""
    count = len(description["bad_names"])
    path = escaped(description["path"])
    if not count:
        return None
    if count == 1:
        return (
            f"1 name in {path} is not printable UTF-8, so not a key; "
            "a watcher rejects this volume while it is there"
        )
    return (
        f"{count} names in {path} are not printable UTF-8, so not keys; "
        "a watcher rejects this volume while they are there"
    )


def print_volume(description: dict[str, Any], out: TextIO, *, as_json: bool) -> None:
    """Print a description from :func:`describe_volume`, as text (names escaped, see
    :func:`escaped`) or as JSON."""
    if as_json:
        json.dump(description, out, indent=2)
        out.write("\n")
        return
    print(f"path:     {escaped(description['path'])}", file=out)
    print(f"writer:   {description['writer']}", file=out)
    if description["version"]:
        print(f"version:  {escaped(description['version'])}", file=out)
    if description["subpath_mount"]:
        print(
            "warning:  a subPath mount: it never sees a rotation; mount the whole volume",
            file=out,
        )
    keys = description["keys"]
    names = [escaped(entry["key"]) for entry in keys]
    width = max([len("KEY"), *(len(name) for name in names)])
    print(f"\n{'KEY':<{width}}  {'SIZE':>8}  FINGERPRINT", file=out)
    for name, entry in zip(names, keys, strict=True):
        print(f"{name:<{width}}  {entry['size']:>8}  {entry['fingerprint']}", file=out)
    source = description["fingerprint_key"]
    note = (
        f"keyed with {FINGERPRINT_KEY_VARIABLE}"
        if source != "random"
        else f"keyed with a random key: set {FINGERPRINT_KEY_VARIABLE} to compare across runs"
    )
    count = f"{len(keys)} key" + ("" if len(keys) == 1 else "s")
    print(f"\n{count}; fingerprints {note}", file=out)
    if description["bad_names"]:  # escaped already
        print(
            "\nNOT KEYS (names that are not printable UTF-8, escaped as in bash's $'...'):",
            *description["bad_names"],
            sep="\n",
            file=out,
        )
