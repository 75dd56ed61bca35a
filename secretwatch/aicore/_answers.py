"""Reading the answers of the AI API and of its token endpoint, which are never trusted.

A body is read in chunks, at most :data:`MAX_ANSWER_BYTES` of it, and within the request's
timeout in all; a redirect is not followed (the credentials would go with it); a compressed
body, which was not asked for, is refused. A 2xx body is then checked against the shape the
API documents (strict pydantic models). Whatever is wrong is a
:class:`MalformedResponseError` whose message names the request and the problem (a field's
name and JSON type), never the body or a string from the server.
"""

from __future__ import annotations

import time
import unicodedata
from typing import Annotated, Any, TypeVar

import httpx
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticError
from pydantic_core import PydanticCustomError

from secretwatch._errors import safe_errors
from secretwatch.aicore._errors import APIError, MalformedResponseError

__all__ = [
    "MAX_ANSWER_BYTES",
    "MAX_ERROR_TEXT",
    "Details",
    "Page",
    "QuotaAnswer",
    "TokenAnswer",
    "api_error",
    "check_status",
    "parse",
    "read_body",
]

MAX_ANSWER_BYTES = 1024 * 1024  # a page of 100 secrets with labels is far smaller
MAX_ERROR_TEXT = 200  # characters shown of the API's error message (one line)

T = TypeVar("T", bound=BaseModel)


class _Strict(BaseModel):
    """JSON types exactly as documented (no ``"1"`` for 1); unknown fields are ignored."""

    model_config = ConfigDict(strict=True, extra="ignore")


class _Label(_Strict):
    key: str
    value: str | None = None


def _each_true_or_false(value: dict[str, Any]) -> dict[str, bool]:
    """A replication map whose values are all ``true`` or ``false``: one error for the map,
    not one per value (a 1 MiB map holds about 100,000 of them)."""
    if not all(isinstance(done, bool) for done in value.values()):
        raise PydanticCustomError(_NOT_TRUE_OR_FALSE, "a value is not true or false")
    return value


_NOT_TRUE_OR_FALSE = "each_true_or_false"
_Replication = Annotated[dict[str, Any], AfterValidator(_each_true_or_false)]


class Details(_Strict):
    """``GenericSecretDetails``: the replication map has a name in the docs and another in
    the OpenAPI spec; either is read. Lists stop at their first bad item: a malformed
    answer costs one error, not one per item of a megabyte."""

    name: str
    createdAt: str | None = None
    labels: list[_Label] | None = Field(default=None, fail_fast=True)
    resourceGroupSecretReplicationStatus: _Replication | None = None
    resourceGroupSecretsSyncStatus: _Replication | None = None


class Page(_Strict):
    """A page of ``GET /admin/secrets``."""

    count: int | None = None
    resources: list[Details] = Field(default_factory=list, fail_fast=True)


class _Usage(_Strict):
    count: int


class _Limit(_Strict):
    maxCount: int


class QuotaAnswer(_Strict):
    """``GET /admin/resourceQuota/secrets``: ``{"usage": {"count"}, "quota": {"maxCount"}}``
    (no usage with ``quotaOnly=true``)."""

    usage: _Usage | None = None
    quota: _Limit


class TokenAnswer(_Strict):
    """The token endpoint's answer (OAuth client credentials)."""

    access_token: str = Field(min_length=1)
    expires_in: float = Field(default=3600.0, ge=0, allow_inf_nan=False)


_FIELD_NAMES = frozenset(
    name
    for model in (_Label, Details, Page, _Usage, _Limit, QuotaAnswer, TokenAnswer)
    for name in model.model_fields
)


def check_status(response: httpx.Response, method: str, path: str) -> None:
    """Refuse a redirect: following it would send the credentials elsewhere."""
    if response.is_redirect or 300 <= response.status_code < 400:
        code = response.status_code
        raise MalformedResponseError(method, path, f"a redirect ({code}), not followed")


def read_body(
    response: httpx.Response, method: str, path: str, *, started: float, timeout: float
) -> bytes:
    """The body of a streamed ``response``: at most :data:`MAX_ANSWER_BYTES`, complete
    ``timeout`` seconds after ``started`` (``time.monotonic()``, when the request was sent);
    raw bytes, as no encoding was asked for."""
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        shown = encoding if encoding in ("gzip", "deflate", "br", "zstd") else "encoded"
        raise MalformedResponseError(
            method, path, f"a compressed body ({shown}), though none was asked for"
        )
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_ANSWER_BYTES:
        raise MalformedResponseError(method, path, f"over {_size(MAX_ANSWER_BYTES)}")
    body = bytearray()
    for chunk in response.iter_raw():
        body += chunk
        if len(body) > MAX_ANSWER_BYTES:
            raise MalformedResponseError(method, path, f"over {_size(MAX_ANSWER_BYTES)}")
        if time.monotonic() - started > timeout:
            raise MalformedResponseError(method, path, f"not complete within {timeout:g} s")
    return bytes(body)


def parse(model: type[T], body: bytes | dict[str, Any], method: str, path: str) -> T:
    """``body`` (JSON, or a parsed object) as ``model``, or the field that is wrong."""
    try:
        if isinstance(body, bytes):
            return model.model_validate_json(body)
        return model.model_validate(body)
    except PydanticError as exc:
        problem = _problem(exc)
    raise MalformedResponseError(method, path, problem)  # outside: the error quotes the body


def api_error(response: httpx.Response, body: bytes) -> APIError:
    """The API's error object (``{"error": {"code", "message", "requestId"}}``) as an
    :class:`APIError`, each part on one line and short; without one, the status's phrase."""
    status = response.status_code
    phrase = httpx.codes.get_reason_phrase(status)  # not the server's: it could say anything
    try:
        error = _ErrorAnswer.model_validate_json(body).error
    except PydanticError:
        return APIError(status, None, phrase, None)
    return APIError(
        status,
        _line(error.code, 60) or None,
        _line(error.message, MAX_ERROR_TEXT) or phrase,
        _line(error.requestId, 100) or None,
    )


class _ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="ignore")

    code: Any = None
    message: Any = None
    requestId: Any = None  # the API's name


class _ErrorAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    error: _ErrorDetail


def _line(text: object, most: int) -> str:
    """``text`` (a string or a number) on one line of at most ``most`` characters, without
    control characters; anything else (an object, a list) is not shown."""
    if isinstance(text, bool) or not isinstance(text, str | int):
        return ""
    printable = "".join(
        " " if unicodedata.category(char).startswith(("C", "Z")) else char
        for char in str(text)[: most * 4]
    )
    words = " ".join(printable.split())
    return words if len(words) <= most else words[: most - 3] + "..."


_EXPECTED = {
    "model_type": "an object",
    "model_attributes_type": "an object",
    "dict_type": "an object",
    "list_type": "a list",
    "string_type": "a string",
    "bool_type": "true or false",
    "int_type": "a whole number",
    "float_type": "a number",
}


def _problem(exc: PydanticError) -> str:
    """What is wrong, by field and JSON type: ``labels.0 is a string where an object was
    expected``. Never a value; keys of JSON objects that are no field names are ``*``."""
    details = safe_errors(exc, _FIELD_NAMES) or []
    kinds = [type(detail["input"]) for detail in exc.errors(include_url=False)]
    problems: list[str] = []
    for detail, kind in zip(details, kinds, strict=True):
        where = ".".join(str(part) for part in detail["loc"]) or "the body"
        error = detail["type"]
        if error == "json_invalid":
            return "not JSON"
        if error == "missing":
            problems.append(f"{where} is missing")
        elif error == _NOT_TRUE_OR_FALSE:
            problems.append(f"{where} has a value that is not true or false")
        elif error in _EXPECTED:
            problems.append(f"{where} is {_json_type(kind)} where {_EXPECTED[error]} was expected")
        else:
            problems.append(f"{where} is not valid ({error})")
    return "; ".join(problems[:3]) + ("; ..." if len(problems) > 3 else "")


def _json_type(kind: type) -> str:
    if kind is bool:
        return "true or false"
    if issubclass(kind, int | float):
        return "a number"
    names = {str: "a string", dict: "an object", list: "a list", type(None): "null"}
    return names.get(kind, "a value of another type")


def _size(count: int) -> str:
    return f"{count // (1024 * 1024)} MiB" if count % (1024 * 1024) == 0 else f"{count} bytes"
