"""FakeAICore's rules: what a request may hold, each with its source in a comment.

``[spec]``: the published AI API specification; ``[docs]``: SAP's AI Core documentation
(summarised in the repository's shared docs); see :mod:`secretwatch.testing._aicore`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from typing import Any

__all__ = [
    "DEFAULT_GROUP",
    "FIXED",
    "LABEL_KEY",
    "MAIN",
    "NAME",
    "TENANT_WIDE",
    "data_and_labels",
    "error",
    "json_body",
    "scope_of",
]

NAME = re.compile(r"[a-z0-9\-.]{1,252}")  # [spec] BckndsecretName
# [spec] BckndGenericSecretLabel.key's pattern, its dots literal: [docs] "only keys with
# prefix ext.ai.sap.com/ may be modified"
LABEL_KEY = re.compile(r"ext\.ai\.sap\.com/(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]){1,48}")
# [docs] "cannot be updated by PATCH"
FIXED = {"ext.ai.sap.com/document-grounding", "ext.ai.sap.com/documentRepositoryType"}
TENANT_WIDE = "*"
MAIN = ""
DEFAULT_GROUP = "default"


def scope_of(headers: Any) -> str | None:
    """The scope the headers name ([docs] Scopes: ``AI-Tenant-Scope: true`` the main tenant,
    ``AI-Resource-Group: <rg>`` a group, both with ``*`` tenant-wide), or ``None`` for a
    combination no source defines (refused, not guessed at)."""
    tenant = headers.get("AI-Tenant-Scope", "").lower() == "true"
    group = headers.get("AI-Resource-Group")
    if tenant:
        return TENANT_WIDE if group == "*" else (MAIN if group is None else None)
    if group is None:
        # issue 18: served in resource group "default". The [spec] states this fallback for
        # the object-store secrets (Bckndai-resource-group-default: 'Uses "default" if value
        # not provided'); for generic secrets (Bckndai-resource-group) it states no default
        return DEFAULT_GROUP
    return None if group in ("", "*") else group  # "*" needs AI-Tenant-Scope


def json_body(body: bytes) -> Any:
    try:
        return json.loads(body or b"{}")
    except ValueError:
        return None


def data_and_labels(  # noqa: PLR0911 (one return per rule)
    body: Any, *, patch: bool
) -> tuple[dict[str, bytes] | None, dict[str, str] | None, str]:
    if not isinstance(body, dict):  # [spec] BckndGenericSecretPostBody, ...PatchBody: objects
        return None, None, "the body is not a JSON object"
    data = None
    if "data" in body:  # [spec] BckndGenericSecretData: "Base64 encoded secret data"
        try:
            data = {str(k): base64.b64decode(v, validate=True) for k, v in body["data"].items()}
        except (binascii.Error, ValueError, AttributeError, TypeError):
            return None, None, "data values must be base64"
    elif not patch:  # [spec] BckndGenericSecretPostBody: required name, data
        return None, None, "data is required"
    labels = None
    if "labels" in body:
        labels = {}
        for item in body["labels"]:
            key, value = str(item.get("key", "")), str(item.get("value", ""))
            # [spec] BckndGenericSecretLabel.key: the pattern, maxLength 63 (and [docs])
            if len(key) > 63 or not LABEL_KEY.fullmatch(key):
                return None, None, "a label key breaks the rules"
            if patch and key in FIXED:  # [docs] "cannot be updated by PATCH"
                return None, None, "this label can't be updated"
            if len(value) > 5000:  # [spec] BckndGenericSecretLabel.value: maxLength 5000
                return None, None, "a label value is too long"
            labels[key] = value
    return data, labels, ""


def error(status: int, code: str, message: str) -> tuple[int, Any, dict[str, str]]:
    """[spec] BckndErrorResponse: ``{"error": {"code", "message", "requestId", ...}}``."""
    body = {"error": {"code": code, "message": message, "requestId": f"req-{time.time_ns()}"}}
    return status, body, {}
