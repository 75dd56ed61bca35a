"""OAuth client credentials for the AI API: a token fetched once, reused until shortly
before it expires, and fetched again once when the API answers 401."""

from __future__ import annotations

import threading
import time
from collections.abc import Generator

import httpx

from secretwatch.aicore._errors import APIError

__all__ = ["ClientCredentials"]

_LEEWAY = 60.0  # seconds before expiry when a token counts as expired


class ClientCredentials(httpx.Auth):
    """``httpx`` authentication with an OAuth client-credentials token from ``token_url``."""

    requires_response_body = True

    def __init__(self, token_url: str, client_id: str, client_secret: str):
        self._token_url = token_url
        self._form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
        }
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires = 0.0
        self.fetched = 0  # how many tokens were fetched

    def __repr__(self) -> str:
        return f"ClientCredentials(token_url={self._token_url!r})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._valid_token()
        if token is None:
            token = self._store((yield self._token_request()))
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:  # revoked or expired early: one new token, one retry
            token = self._store((yield self._token_request()))
            request.headers["Authorization"] = f"Bearer {token}"
            yield request

    def _valid_token(self) -> str | None:
        with self._lock:
            if self._token is not None and time.monotonic() < self._expires:
                return self._token
            return None

    def _token_request(self) -> httpx.Request:
        return httpx.Request("POST", self._token_url, data=self._form)

    def _store(self, response: httpx.Response) -> str:
        if response.status_code != 200:
            raise APIError(response.status_code, None, "the token request failed", None)
        try:
            body = response.json()
            token = str(body["access_token"])
            lifetime = float(body.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError):
            raise APIError(200, None, "the token response holds no access_token", None) from None
        with self._lock:
            self._token = token
            # a minute early, or half the lifetime of a short-lived token
            self._expires = time.monotonic() + lifetime - min(_LEEWAY, lifetime / 2)
            self.fetched += 1
        return token
