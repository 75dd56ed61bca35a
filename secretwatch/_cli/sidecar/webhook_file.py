"""Webhook URLs from a file (``--webhook-file``), one a line, so that their credentials stay
off the command line, where anyone in the pod's process namespace can read them (``ps``).

The file is followed like any volume: it is typically a key of a mounted secret, and a
rotation of that secret brings new webhooks, used from the next change on. A version of the
file that is not valid (a line that is not an http:// or https:// URL, or no URL at all) is
rejected as a bad version of a volume is: logged (``secretwatch.rejected``, naming the file
and the line, never a URL), and the webhooks in force stay. Empty lines and lines starting
with ``#`` are skipped.
"""

from __future__ import annotations

from collections.abc import Callable

from secretwatch._cli.sidecar.actions import Webhook, parse_webhook_url
from secretwatch._errors import ValidationError
from secretwatch._log import log as _log
from secretwatch._read.snapshot import Change, Snapshot
from secretwatch._watch.watcher import SecretWatcher, WatchOptions

__all__ = ["WebhookFile"]

_MADE = 4  # versions whose webhooks are kept, made, until they are applied


def _urls(snapshot: Snapshot) -> list[str]:
    """The URLs of the file (its one key), one a line."""
    (text,) = snapshot.values()
    lines = (line.strip() for line in str(text).splitlines())
    return [line for line in lines if line and not line.startswith("#")]


class WebhookFile:
    """The webhooks named by the file at ``path``, made by ``make(url, number)`` and
    numbered from ``first`` on; :meth:`start` loads the file, then :attr:`webhooks` follows
    it (replaced whole: a reader holds one consistent list)."""

    def __init__(
        self, path: str, *, make: Callable[[str, int], Webhook], first: int, watch: WatchOptions
    ):
        self._make = make
        self._first = first
        self.webhooks: list[Webhook] = []
        # made by _check for the versions it passed, until they are used (a load may
        # validate a newer version before the change of the last one is delivered)
        self._made: dict[tuple[str, ...], list[Webhook]] = {}
        options: WatchOptions = {**watch, "decoders": {"*": "text"}, "validate": self._check}
        self.watcher = SecretWatcher(path, **options)

    @property
    def path(self) -> str:
        """The file's path."""
        return self.watcher.path

    def start(self) -> None:
        """Load the file and follow it.

        Raises:
            SecretWatchError: the file can't be read, or names no valid webhook.
        """
        self.watcher.subscribe(self._changed)
        self.watcher.start()
        self._use(self.watcher.snapshot)

    def stop(self) -> None:
        """Stop following the file; close the webhooks' connections."""
        self.watcher.stop()
        for webhook in self.webhooks:
            webhook.close()

    def _check(self, snapshot: Snapshot) -> None:
        """Reject a version of the file whose webhooks can't be made: a line that is not an
        http(s) URL, or one that the environment can't serve (a SOCKS proxy, TLS
        certificates that can't be loaded). The webhooks made are the ones then used."""
        urls = _urls(snapshot)
        if not urls:
            raise ValidationError("names no webhook URL (one a line)")
        webhooks = []
        for line, url in enumerate(urls, 1):
            number = self._first + line - 1
            try:
                parse_webhook_url(url, number)
            except ValueError:
                raise ValidationError(f"URL {line} is not an http:// or https:// URL") from None
            try:
                webhooks.append(self._make(url, number))
            except ValueError as exc:  # its message names the webhook's number, not its URL
                raise ValidationError(f"URL {line}: {exc}") from None
        self._made[tuple(urls)] = webhooks
        while len(self._made) > _MADE:  # versions validated but never applied (stopped)
            del self._made[next(iter(self._made))]

    def _changed(self, change: Change) -> None:
        if change.old.version:  # the first version is taken by start()
            self._use(change.new)
            _log.info("secretwatch.webhooks_changed", path=self.path, webhooks=len(self.webhooks))

    def _use(self, snapshot: Snapshot) -> None:
        # the webhooks replaced are closed by no one: a change may still be using one, and
        # between requests they hold no connection (a new one per request)
        urls = tuple(_urls(snapshot))
        made = self._made.pop(urls, [])
        self.webhooks = made or [self._make(u, n) for n, u in enumerate(urls, self._first)]
