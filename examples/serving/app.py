"""A model server (Starlette under uvicorn) that calls an upstream with a rotated credential.

    SECRET_DIR=/etc/my-generic-secret UPSTREAM_URL=https://upstream.example.com/v1/score \\
        uvicorn examples.serving.app:app --port 8080

As an AI Core / KServe serving container would: the credential comes from the mounted
secret's ``some-credential`` key, read from the watcher's snapshot on every request (a
dict lookup, no lock, no file read), so the first request after a rotation uses the new
value and no request ever sees a half-rotated secret.
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


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    with secretwatch.watch(os.environ["SECRET_DIR"]) as secrets:
        async with httpx.AsyncClient(timeout=10) as upstream:
            app.state.secrets = secrets
            app.state.upstream = upstream
            yield


async def predict(request: Request) -> JSONResponse:
    secrets: secretwatch.SecretWatcher = request.app.state.secrets
    upstream: httpx.AsyncClient = request.app.state.upstream
    credential = secrets["some-credential"]  # the latest valid value, per request
    response = await upstream.post(
        os.environ["UPSTREAM_URL"],
        headers={"Authorization": f"Bearer {credential}"},
        json=await request.json(),
    )
    return JSONResponse({"upstream_status": response.status_code, "result": response.json()})


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"secret_version": request.app.state.secrets.snapshot.version})


app = Starlette(
    routes=[Route("/v1/predict", predict, methods=["POST"]), Route("/healthz", healthz)],
    lifespan=lifespan,
)
