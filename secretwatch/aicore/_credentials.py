"""Where AI Core credentials come from: the sources SAP's Python SDK reads, in its order.

``sap-ai-sdk-core`` 3.5.0 (``ai_core_sdk/credentials.py``, ``fetch_credentials``) reads, in
this order:

1. explicit arguments (``SecretsAPI.from_env(client_id=...)``);
2. ``AICORE_SERVICE_KEY``: a service key's JSON (here, also the path of a file holding it);
3. the ``AICORE_*`` variables (``AICORE_CLIENT_ID``, ``AICORE_CLIENT_SECRET``,
   ``AICORE_AUTH_URL``, ``AICORE_BASE_URL``, ``AICORE_CERT_URL``, ``AICORE_CERT_STR``,
   ``AICORE_KEY_STR``, ``AICORE_CERT_FILE_PATH``, ``AICORE_KEY_FILE_PATH``);
4. a profile file: ``AICORE_CONFIG``, else ``$AICORE_HOME`` (default ``~/.aicore``)
   ``/config.json``, or ``config_<profile>.json`` for ``AICORE_PROFILE=<profile>``; its
   keys are the variables' names;
5. ``VCAP_SERVICES``: the first Cloud Foundry binding labelled ``aicore``.

The first source that gives any credential is used whole: nothing is taken from a lower
source, and an incomplete source is an error that names what is missing (SAP's rule). The
resource group is resolved on its own: an explicit one, ``AICORE_RESOURCE_GROUP``, or the
profile file's. An empty value counts as unset.

Deliberate differences from SAP's SDK: ``AICORE_SERVICE_KEY`` may name a file; a key wrapped
as ``{"credentials": {...}}`` (``cf service-key``) is unwrapped; a URL's suffix
(``/oauth/token``, ``/v2``) is added once even after a trailing ``/``; a source below the
one used is never read, so a malformed one does not break a complete one above it; an
unreadable profile file is an error, not skipped. No message holds a value.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from secretwatch.aicore._errors import AICoreError
from secretwatch.aicore._x509 import CertificateSource

__all__ = ["FIELDS", "Credentials", "Resolution", "credentials_from_service_key", "resolve"]

FIELDS = (
    "client_id",
    "client_secret",
    "auth_url",
    "base_url",
    "resource_group",
    "cert_url",
    "cert_file_path",
    "key_file_path",
    "cert_str",
    "key_str",
)
# a service key's (and a VCAP binding's ``credentials``) keys; it has no resource group
# and no file paths
_KEY_PATHS: dict[str, tuple[str, ...]] = {
    "client_id": ("clientid",),
    "client_secret": ("clientsecret",),
    "auth_url": ("url",),
    "base_url": ("serviceurls", "AI_API_URL"),
    "cert_url": ("certurl",),
    "cert_str": ("certificate",),
    "key_str": ("key",),
}
_MAX_PATH = 4096  # PATH_MAX on Linux
_MAX_FILE = 1024 * 1024  # bytes read at most from a service key or profile file


@dataclass(frozen=True, repr=False)
class Credentials:
    """What a token request needs, and the API's URL. The repr holds no secret."""

    base_url: str  # "/v2" once
    token_url: str  # "<certurl or url>/oauth/token", once
    client_id: str
    client_secret: str | None
    certificate: CertificateSource | None

    @property
    def method(self) -> str:
        """How the client authenticates, in words (for ``--explain-credentials``)."""
        if self.certificate is None:
            return "client secret"
        if self.certificate.in_memory:
            return "X.509 certificate and key (text, loaded through an in-memory file)"
        return "X.509 certificate and key (files)"

    def __repr__(self) -> str:
        return f"Credentials(token_url={self.token_url!r}, method={self.method!r})"


@dataclass(frozen=True)
class Resolution:
    """The credentials found, and where: descriptions only, never a value."""

    credentials: Credentials
    source: str  # e.g. "AICORE_SERVICE_KEY (a file: /etc/aicore/key.json)"
    resource_group: str | None = None
    resource_group_source: str | None = None
    notes: tuple[str, ...] = field(default=())  # the other sources, and why not them
    token_from: str = ""  # the name of the field that gave the token URL ("certurl"...)
    api_from: str = ""  # the name of the field that gave the API URL

    def explain(self) -> list[str]:
        """Lines that say which source was used and why the others were not."""
        lines = [
            f"credentials: {self.source}",
            f"  method: {self.credentials.method}",
            f"  token endpoint: from {self.token_from} (+ /oauth/token when missing)",
            f"  API: from {self.api_from} (+ /v2 when missing)",
        ]
        if self.resource_group_source is None:
            lines.append("resource group: none (a scope flag is needed)")
        else:
            lines.append(
                f"resource group: {self.resource_group} from {self.resource_group_source} "
                "(when no scope flag is given)"
            )
        lines += [f"not used: {note}" for note in self.notes]
        return lines


@dataclass
class _Source:
    description: str
    values: dict[str, str]  # field -> value (set and not empty)
    names: Callable[[str], str]  # field -> how this source names it
    files: bool = True  # whether it can name certificate files (a service key can't)


def resolve(
    explicit: Mapping[str, str | None] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    profile: str | None = None,
) -> Resolution:
    """The credentials of the first source that gives any (see the module's docstring).

    Args:
        explicit: values by field name (:data:`FIELDS`), e.g. ``{"client_id": ...}``.
        environ: the variables (default ``os.environ``).
        profile: the profile's name (default ``AICORE_PROFILE``).

    Raises:
        AICoreError: no source gives credentials; the source used is incomplete or gives two
            ways to authenticate; a source asked for is malformed or missing.
    """
    env = os.environ if environ is None else environ
    given = {k: str(v) for k, v in (explicit or {}).items() if v not in (None, "")}
    unknown = sorted(set(given) - set(FIELDS))
    if unknown:
        raise AICoreError(f"unknown credential fields: {', '.join(unknown)}")
    profile_file = _ProfileFile(env, profile)
    readers: list[tuple[str, Callable[[], _Source | str]]] = [
        ("arguments", lambda: _Source("arguments", given, lambda f: f)),
        ("AICORE_SERVICE_KEY", lambda: _service_key_variable(env)),
        ("the AICORE_* variables", lambda: _variables(env)),
        ("the profile file", profile_file.source),
        ("VCAP_SERVICES", lambda: _vcap(env)),
    ]
    notes: list[str] = []
    chosen: _Source | None = None
    for label, read in readers:
        if chosen is not None:
            notes.append(f"{label}: not read (a source above gave credentials)")
            continue
        source = read()
        if isinstance(source, str):
            notes.append(f"{label}: {source}")
        elif not set(source.values) - {"resource_group"}:
            notes.append(f"{label}: gives no credential")
        else:
            chosen = source
    if chosen is None:
        raise AICoreError(
            "no AI Core credentials: set AICORE_SERVICE_KEY (a service key's JSON, or a "
            "file holding it), or AICORE_CLIENT_ID, AICORE_CLIENT_SECRET (or the X.509 "
            "ones), AICORE_AUTH_URL and AICORE_BASE_URL, or write a profile file "
            f"({profile_file.path}), or bind an aicore service (VCAP_SERVICES)"
        )
    group, group_source = _resource_group(given, env, profile_file)
    return Resolution(
        _complete(chosen),
        chosen.description,
        group,
        group_source,
        tuple(notes),
        token_from=chosen.names("cert_url" if "cert_url" in chosen.values else "auth_url"),
        api_from=chosen.names("base_url"),
    )


def credentials_from_service_key(
    key: Mapping[str, Any], where: str = "the service key"
) -> Credentials:
    """The credentials of a parsed service key (client secret or X.509).

    Raises:
        AICoreError: it is not a service key, or misses something (naming the key).
    """
    return _complete(_service_key_source(key, where))


# -- the sources ---------------------------------------------------------------------


def _variables(env: Mapping[str, str]) -> _Source | str:
    values = {f: env[f"AICORE_{f.upper()}"] for f in FIELDS if env.get(f"AICORE_{f.upper()}")}
    if not values:
        return "no AICORE_* credential variable is set"
    return _Source("the AICORE_* variables", values, lambda f: f"AICORE_{f.upper()}")


def _service_key_variable(env: Mapping[str, str]) -> _Source | str:
    text = env.get("AICORE_SERVICE_KEY", "")
    if not text:
        return "not set"
    where = "AICORE_SERVICE_KEY"
    if not text.lstrip("\ufeff \t\r\n").startswith("{"):  # SAP's SDK takes JSON text only
        if not _could_be_a_path(text):  # never shown: it may be a key, pasted with a header
            raise AICoreError(
                "AICORE_SERVICE_KEY is neither a service key's JSON object nor the path of an "
                "existing file (its value is not shown)"
            )
        where = f"AICORE_SERVICE_KEY (a file: {text})"
        text = _read(Path(text), where)
    key = _json_object(text, where, "a service key's JSON, or the path of a file holding it")
    return _service_key_source(key, where)


def _service_key_source(key: Mapping[str, Any], where: str) -> _Source:
    inner = key.get("credentials")
    if "clientid" not in key and isinstance(inner, Mapping):  # cf service-key's wrapper
        key, where = inner, f'{where} (its "credentials")'
    values: dict[str, str] = {}
    for name, path in _KEY_PATHS.items():
        value: Any = key
        for part in path:
            value = value.get(part) if isinstance(value, Mapping) else None
        if (text := _text(value, ".".join(path), where)) is not None:
            values[name] = text
    return _Source(where, values, lambda f: ".".join(_KEY_PATHS.get(f, (f,))), files=False)


class _ProfileFile:
    """The profile file: read once, whether for credentials or for a resource group."""

    def __init__(self, env: Mapping[str, str], profile: str | None):
        name = profile if profile is not None else env.get("AICORE_PROFILE", "")
        self.named = name not in ("", "default")
        if env.get("AICORE_CONFIG"):
            self.path = Path(env["AICORE_CONFIG"])
            self.where = f"the profile file {self.path} (AICORE_CONFIG)"
            self.required = True
        else:
            home = Path(env.get("AICORE_HOME") or Path.home() / ".aicore")
            self.path = home / (f"config_{name}.json" if self.named else "config.json")
            self.where = f"profile {name or 'default'!r} in {self.path}"
            self.required = self.named
        self._read: _Source | str | None = None

    def source(self) -> _Source | str:
        if self._read is None:
            self._read = self._load()
        return self._read

    def _load(self) -> _Source | str:
        if not self.path.exists():
            if self.required:
                raise AICoreError(f"{self.where} does not exist")
            return f"{self.path} does not exist"
        config = _json_object(_read(self.path, self.where), self.where, "a JSON object")
        values = {}
        for name in FIELDS:
            key = f"AICORE_{name.upper()}"
            if (text := _text(config.get(key), key, self.where)) is not None:
                values[name] = text
        return _Source(self.where, values, lambda f: f"AICORE_{f.upper()}")


def _vcap(env: Mapping[str, str]) -> _Source | str:
    text = env.get("VCAP_SERVICES", "")
    if not text:
        return "not set"
    services = _json_object(text, "VCAP_SERVICES", "a JSON object")
    bindings = [
        binding
        for offers in services.values()
        if isinstance(offers, list)
        for binding in offers
        if isinstance(binding, Mapping) and binding.get("label") == "aicore"
    ]
    if not bindings:
        return "no binding labelled aicore"
    name = str(bindings[0].get("name", "?"))
    where = f"VCAP_SERVICES binding {name!r}"
    if len(bindings) > 1:
        where += f" (the first of {len(bindings)} labelled aicore)"
    credentials = bindings[0].get("credentials")
    if not isinstance(credentials, Mapping):
        raise AICoreError(f'{where} has no "credentials" object')
    return _service_key_source(credentials, where)


def _resource_group(
    given: Mapping[str, str], env: Mapping[str, str], profile_file: _ProfileFile
) -> tuple[str | None, str | None]:
    if "resource_group" in given:
        return given["resource_group"], "the arguments"
    if env.get("AICORE_RESOURCE_GROUP"):
        return env["AICORE_RESOURCE_GROUP"], "AICORE_RESOURCE_GROUP"
    try:
        source = profile_file.source()
    except AICoreError:  # a file not used for credentials gives no resource group
        return None, None
    if isinstance(source, _Source) and "resource_group" in source.values:
        return source.values["resource_group"], f"AICORE_RESOURCE_GROUP in {source.description}"
    return None, None


# -- completeness --------------------------------------------------------------------


def _complete(source: _Source) -> Credentials:
    """The credentials of ``source``, which must be complete with one way to authenticate."""
    values, name = source.values, source.names
    ways = []
    if "client_secret" in values:
        ways.append(name("client_secret"))
    for cert, key in (("cert_str", "key_str"), ("cert_file_path", "key_file_path")):
        if cert in values and key in values:
            ways.append(f"{name(cert)} and {name(key)}")
    missing = [name(f) for f in ("client_id", "base_url") if f not in values]
    if "auth_url" not in values and "cert_url" not in values:
        missing.append(name("auth_url"))
    if not ways:
        missing.append(
            f"{name('client_secret')}, or {name('cert_str')} and {name('key_str')}"
            + (f", or {name('cert_file_path')} and {name('key_file_path')}" if source.files else "")
        )
    if missing:
        present = ", ".join(name(f) for f in FIELDS if f in values)
        raise AICoreError(
            f"{source.description}: incomplete: it gives {present}; missing: "
            + "; ".join(missing)
            + " (a source is used whole, as SAP's SDK does: the sources below it were not read)"
        )
    if len(ways) > 1:
        raise AICoreError(
            f"{source.description} gives more than one way to authenticate "
            f"({'; '.join(ways)}): give one"
        )
    for url in ("auth_url", "cert_url", "base_url"):
        if url in values:
            _check_url(values[url], f"{name(url)} of {source.description}")
    token_url = _with_suffix(values.get("cert_url") or values["auth_url"], "/oauth/token")
    certificate = None
    if "client_secret" not in values:
        if not token_url.startswith("https://"):
            raise AICoreError(
                f"{source.description}: an X.509 token endpoint must be https:// "
                f"({name('cert_url')}), mutual TLS needs it"
            )
        certificate = CertificateSource(
            f"the certificate and key of {source.description}",
            cert_pem=values.get("cert_str"),
            key_pem=values.get("key_str"),
            cert_file=values.get("cert_file_path"),
            key_file=values.get("key_file_path"),
        )
    return Credentials(
        base_url=_with_suffix(values["base_url"], "/v2"),
        token_url=token_url,
        client_id=values["client_id"],
        client_secret=values.get("client_secret"),
        certificate=certificate,
    )


# -- helpers -------------------------------------------------------------------------


def _with_suffix(url: str, suffix: str) -> str:
    """``url`` ending with ``suffix`` once, a trailing ``/`` or not (SAP's SDK doubles it)."""
    url = url.rstrip("/")
    return url if url.endswith(suffix) else url + suffix


def _check_url(url: str, what: str) -> None:
    """An endpoint must be an https URL with a host (plain http only to this machine: a
    client secret or a token would cross the network readable). Names ``what``, never
    the URL, which may carry credentials."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        parts, host = None, None
    if parts is None or parts.scheme not in ("https", "http") or not host or " " in url:
        raise AICoreError(f"{what} is not an http(s) URL with a host")
    if parts.scheme == "http" and host not in _LOOPBACK:
        raise AICoreError(f"{what} is plain http to another machine: use https")


_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


def _could_be_a_path(text: str) -> bool:
    """Whether ``text`` names an existing file: one line, printable, not too long. Anything
    else may be a pasted key, which a message must not repeat."""
    if len(text) > _MAX_PATH or not text.isprintable():
        return False
    try:
        return Path(text).is_file()
    except OSError:  # a name too long for the file system, say
        return False


def _read(path: Path, where: str) -> str:
    problem = ""
    try:
        with path.open("rb") as file:
            raw = file.read(_MAX_FILE + 1)
    except FileNotFoundError:
        problem = "does not exist"
    except PermissionError:
        problem = "can't be read (permission denied)"
    except IsADirectoryError:
        problem = "is a directory"
    except OSError as exc:
        problem = f"can't be read ({exc.strerror or type(exc).__name__})"
    if problem:
        raise AICoreError(f"{where} {problem}")
    if len(raw) > _MAX_FILE:
        raise AICoreError(f"{where} is larger than {_MAX_FILE} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    raise AICoreError(f"{where} is not UTF-8 text")


def _json_object(text: str, where: str, expected: str) -> Mapping[str, Any]:
    try:
        value = json.loads(text.lstrip("\ufeff"))  # a byte-order mark, as editors may save
    except ValueError:
        value = None  # the error is raised below, outside the handler (it quotes the text)
    if not isinstance(value, dict):
        raise AICoreError(f"{where} is not {expected}")
    return value


def _text(value: Any, key: str, where: str) -> str | None:
    """A field's value as text; ``None`` when unset or empty (as SAP's SDK reads it)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise AICoreError(f"{key} in {where} is not a string")
    return str(value)
