"""The sidecar's Prometheus metrics, in a registry of their own. Labels name paths and
action kinds, never a value.

Counters count events as they happen (a reload applied, an action run). What describes a
state (the version in force, when it was applied, how the volume is watched) is read from
the watchers at each scrape, so it can never be stale: a watcher that falls back from
inotify to polling mid-run shows it at the next scrape.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from secretwatch._watch.watcher import SecretWatcher

__all__ = ["MODES", "Metrics"]

MODES = ("inotify", "polling")
"""The ways a volume is watched: ``secretwatch_watch_mode`` has a sample for each."""


class Metrics:
    """Counters of reloads, rejections and actions, and the state of ``watchers``."""

    def __init__(self, watchers: Sequence[SecretWatcher] = ()) -> None:
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
        registry.register(_VolumeState(watchers))

    def expect(self, *, paths: Sequence[str], kinds: Sequence[str]) -> None:
        """Show the counters of these volumes and action kinds at 0 until they count: a
        series that appears only with its first event reads as "no data", not as none."""
        for path in paths:
            self.reloads.labels(path)
            self.rejected.labels(path)
        for kind in kinds:
            self.actions.labels(kind)
            self.action_failures.labels(kind)

    def render(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)


class _VolumeState:
    """The state of each watched volume, read from its watcher at each scrape."""

    def __init__(self, watchers: Sequence[SecretWatcher]):
        self._watchers = tuple(watchers)

    def collect(self) -> Iterator[Metric]:
        version = GaugeMetricFamily(
            "secretwatch_version", "The version in force, per volume", labels=["path"]
        )
        applied = GaugeMetricFamily(
            "secretwatch_last_reload_timestamp_seconds",
            "When the volume's current version was applied (Unix time)",
            labels=["path"],
        )
        mode = GaugeMetricFamily(
            "secretwatch_watch_mode",
            "1 for the way the volume is watched now (inotify or polling), 0 for the other",
            labels=["path", "mode"],
        )
        for watcher in self._watchers:
            snapshot = watcher.snapshot
            if snapshot.version:  # loaded: a watcher that never loaded has no version
                version.add_metric([watcher.path], snapshot.version)
                applied.add_metric([watcher.path], snapshot.loaded_at.timestamp())
            current = watcher.mode
            if current is not None:  # started
                for name in MODES:
                    mode.add_metric([watcher.path, name], 1 if name == current else 0)
        yield from (version, applied, mode)
