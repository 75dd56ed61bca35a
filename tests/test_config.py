"""The watch options as configuration from SECRETWATCH_* variables (the sidecar's base)."""

from __future__ import annotations

import pytest
from pydantic import Field, TypeAdapter, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from secretwatch._cli.config import ENV_PREFIX, PathList, UrlList, WatchConfig
from secretwatch._watch.watcher import SecretWatcher


def test_defaults_are_the_watchers_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SECRETWATCH_POLLING", raising=False)
    options = WatchConfig().watch_options()
    assert options == {
        "debounce": 0.1,
        "resync_interval": 60.0,
        "polling": False,
        "poll_interval": 1.0,
        "max_bytes": 1024 * 1024,
    }


def test_options_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRETWATCH_DEBOUNCE", "0.5")
    monkeypatch.setenv("SECRETWATCH_RESYNC", "0")  # off
    monkeypatch.setenv("SECRETWATCH_POLLING", "true")
    monkeypatch.setenv("secretwatch_poll_interval", "2")  # names are not case-sensitive
    monkeypatch.setenv("SECRETWATCH_MAX_BYTES", "10")
    options = WatchConfig().watch_options()
    assert options == {
        "debounce": 0.5,
        "resync_interval": None,
        "polling": True,
        "poll_interval": 2.0,
        "max_bytes": 10,
    }
    SecretWatcher("/nonexistent", **options)  # accepted as they are


@pytest.mark.parametrize(
    ("name", "value"),
    [("DEBOUNCE", "-1"), ("POLL_INTERVAL", "0"), ("DEBOUNCE", "inf"), ("MAX_BYTES", "0")],
)
def test_bad_values_name_the_option(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(ENV_PREFIX + name, value)
    with pytest.raises(ValidationError, match=name.lower()):
        WatchConfig()


class Sidecar(WatchConfig):
    """What the sidecar's configuration builds on: repeatable options from one variable."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX)

    webhook: UrlList = Field(default_factory=list)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http://127.0.0.1:8080/-/reload", ["http://127.0.0.1:8080/-/reload"]),
        ("http://a/reload, http://b/reload", ["http://a/reload", "http://b/reload"]),
        ("", []),
    ],
)
def test_a_repeatable_option_from_one_variable(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: list[str]
) -> None:
    monkeypatch.setenv("SECRETWATCH_WEBHOOK", value)
    assert Sidecar().webhook == expected
    assert isinstance(Sidecar(), BaseSettings)


def test_a_repeatable_option_given_as_a_list() -> None:
    assert Sidecar(webhook=["http://a", "http://b"]).webhook == ["http://a", "http://b"]


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        (UrlList, "http://a/x?ids=1,2, https://b", ["http://a/x?ids=1,2", "https://b"]),
        (UrlList, "http://a", ["http://a"]),
        (PathList, "/etc/a,/etc/we,ird", ["/etc/a", "/etc/we,ird"]),
        (PathList, ["/a,/b"], ["/a,/b"]),  # a list is taken as it is
    ],
)
def test_lists_split_before_a_new_item_only(
    kind: object, value: object, expected: list[str]
) -> None:
    assert TypeAdapter(kind).validate_python(value) == expected
