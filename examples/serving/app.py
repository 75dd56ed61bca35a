"""A model server (Starlette under uvicorn) that calls an upstream with a rotated credential.

    SECRET_DIR=/etc/my-generic-secret UPSTREAM_URL=https://upstream.example.com/v1/score \\
        uvicorn examples.serving.app:app --port 8080

As an AI Core / KServe serving container would: the credential comes from the mounted
secret's ``some-credential`` key, sent by ``secretwatch.integrations.http.BearerAuth``, which
reads the watcher's snapshot on every request (a dict lookup, no lock, no file read): the
first request after a rotation uses the new value, no request ever sees a half-rotated
secret, and a 401 from an upstream that rotated first is retried once with the new value.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import secretwatch
from secretwatch.integrations.http import BearerAuth


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    with secretwatch.watch(os.environ["SECRET_DIR"]) as secrets:
        auth = BearerAuth(secrets, "some-credential")  # the latest valid value, per request
        async with httpx.AsyncClient(auth=auth, timeout=10) as upstream:
            app.state.secrets = secrets
            app.state.upstream = upstream
            yield


async def predict(request: Request) -> JSONResponse:
    upstream: httpx.AsyncClient = request.app.state.upstream
    response = await upstream.post(os.environ["UPSTREAM_URL"], json=await request.json())
    return JSONResponse({"upstream_status": response.status_code, "result": response.json()})


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"secret_version": request.app.state.secrets.snapshot.version})


app = Starlette(
    routes=[Route("/v1/predict", predict, methods=["POST"]), Route("/healthz", healthz)],
    lifespan=lifespan,
)
