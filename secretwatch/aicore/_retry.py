"""Which failed requests of the secrets client are sent again, and after how long.

A request is sent again only when sending it twice does what sending it once does:
``GET``, ``DELETE`` and ``PATCH`` (the same body twice leaves the same secret), after a
busy answer (429, honouring ``Retry-After``), a server or gateway error (500, 502, 503,
504) or a network failure. A ``POST`` (a create) is sent again only when it never
connected: once it may have reached the API, a second one could be refused (409) for the
secret that the first one created.
"""

from __future__ import annotations

import httpx

__all__ = ["IDEMPOTENT", "MAX_RETRY_AFTER", "RETRY_STATUSES", "retry_after", "retryable"]

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
IDEMPOTENT = frozenset({"GET", "DELETE", "PATCH"})
MAX_RETRY_AFTER = 300.0  # seconds of a Retry-After that are honoured at most


def retryable(method: str, answer: int | httpx.HTTPError) -> bool:
    """Whether a request with ``method`` that got ``answer`` (a status, or the network
    failure that it met instead) may be sent again."""
    if isinstance(answer, int):
        return method in IDEMPOTENT and answer in RETRY_STATUSES
    if isinstance(answer, httpx.ConnectError | httpx.ConnectTimeout):
        return True  # nothing was sent
    # what is not a network failure (a bad URL, say) is not retried
    return method in IDEMPOTENT and isinstance(answer, httpx.TransportError)


def retry_after(response: httpx.Response) -> float | None:
    """The seconds of a ``Retry-After: <seconds>`` header (at most ``MAX_RETRY_AFTER``)."""
    value = response.headers.get("Retry-After", "")
    try:
        return min(max(0.0, float(value)), MAX_RETRY_AFTER)
    except ValueError:
        return None
