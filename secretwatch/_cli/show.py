"""``secretwatch show PATH``: what a volume holds, without a single value.

Keys, sizes, the ``..data`` version, the writer detected, and a fingerprint per key to
compare versions across pods. A fingerprint is HMAC-SHA256 keyed with
``SECRETWATCH_FINGERPRINT_KEY`` (random per process when unset), so that a low-entropy
value can't be guessed offline from it: only fingerprints made with the same key compare.

Every name printed as text (the path, the ``..data`` target, the keys) is escaped: a
character that is not printable (a newline, an escape sequence, a lone surrogate for a byte
that is not UTF-8) is shown as Python writes it in a string (``\\n``, ``\\x1b``,
``\\udcff``), and a backslash is doubled, so a name can neither draw on the terminal nor
pass for another line. JSON escapes them its own way.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from typing import Any, TextIO

from secretwatch._read.volume import Layout, is_subpath_mount, read_volume

__all__ = ["FINGERPRINT_KEY_VARIABLE", "describe_volume", "escaped", "print_volume"]

FINGERPRINT_KEY_VARIABLE = "SECRETWATCH_FINGERPRINT_KEY"

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
    version = read_volume(path, max_bytes=max_bytes)
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


def escaped(text: str, *, backslash: bool = True) -> str:
    """``text`` with every character that is not printable escaped as in a Python string
    (``\\n``, ``\\x1b``, ``\\u202e``, ``\\udcff``), and with ``backslash``, every
    backslash doubled (so that an escaped name can't pass for another)."""
    if text.isprintable() and not (backslash and "\\" in text):
        return text
    return "".join(
        char
        if char.isprintable() and not (backslash and char == "\\")
        else char.encode("unicode_escape", "backslashreplace").decode("ascii")
        for char in text
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
