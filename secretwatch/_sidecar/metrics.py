"""The sidecar's Prometheus metrics, in a registry of their own. Labels name paths and
action kinds, never a value."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

__all__ = ["Metrics"]


class Metrics:
    """Counters and gauges of reloads, rejections, actions and watch modes."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.reloads = Counter(
            "secretwatch_reloads", "Changes applied, per volume", ["path"], registry=registry
        )
        self.rejected = Counter(
            "secretwatch_rejected_reloads",
            "Versions rejected (kept out), per volume",
            ["path"],
            registry=registry,
        )
        self.actions = Counter(
            "secretwatch_actions", "Actions run to completion, by kind", ["kind"], registry=registry
        )
        self.action_failures = Counter(
            "secretwatch_action_failures",
            "Failed attempts of actions (each retry counts), by kind",
            ["kind"],
            registry=registry,
        )
        self.last_reload = Gauge(
            "secretwatch_last_reload_timestamp_seconds",
            "When the volume's current version was applied (Unix time)",
            ["path"],
            registry=registry,
        )
        self.version = Gauge(
            "secretwatch_version", "The version in force, per volume", ["path"], registry=registry
        )
        self.mode = Gauge(
            "secretwatch_watch_mode",
            "1 for the way the volume is watched (inotify or polling)",
            ["path", "mode"],
            registry=registry,
        )

    def render(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)
