"""Following a volume over time: change notices (inotify, else polling), the debounce, the
shared threads, loads, the swap of the snapshot, and callbacks.

May import ``_read`` and the leaves, nothing above. Entry point:
:class:`watcher.SecretWatcher` (``secretwatch.watch``).
"""
