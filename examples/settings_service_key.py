"""An AI Core service key mounted as a secret, parsed into a typed model that follows rotation.

    python examples/settings_service_key.py /etc/aicore-key

The secret's key ``service-key`` holds the service key JSON (``clientid``, ``clientsecret``,
``url``, ``serviceurls.AI_API_URL``). Each valid version is printed (the client id and the
URLs, never the client secret); a version that is not a valid service key is reported and
the previous one stays in force. Stops on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import signal
import sys

import structlog
from pydantic import AnyHttpUrl, BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings

import secretwatch


class ServiceUrls(BaseModel):
    AI_API_URL: AnyHttpUrl


class ServiceKey(BaseModel):
    clientid: str
    clientsecret: SecretStr
    url: AnyHttpUrl
    serviceurls: ServiceUrls


class AICore(BaseSettings):
    """The AI Core credentials of this deployment."""

    service_key: ServiceKey = Field(validation_alias="service-key")  # the file's name
    resource_group: str = Field("default", validation_alias="aicore_resource_group")


def show(settings: AICore) -> str:
    key = settings.service_key
    return (
        f"client {key.clientid} at {key.serviceurls.AI_API_URL}, "
        f"token from {key.url}, resource group {settings.resource_group}"
    )


def main(path: str) -> None:
    """Follow the service key in ``path`` until interrupted."""
    with secretwatch.watch_settings(AICore, secrets_dir=path) as live:
        # subscribe before anything else: a rotation that lands meanwhile is still shown
        live.subscribe(lambda old, new: print(f"rotated: {show(new)}", flush=True))
        live.subscribe_errors(lambda error: print(f"rejected: {error}", flush=True))
        print(f"loaded: {show(live.current)}", flush=True)
        signal.sigwait({signal.SIGINT, signal.SIGTERM})


if __name__ == "__main__":
    # show secretwatch's events on stderr, through structlog, and keep stdout for ours
    # (with no structlog configuration they would go to logging's "secretwatch" logger)
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    main(sys.argv[1])
