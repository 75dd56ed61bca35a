"""Live pydantic-settings models: built again, validated, whenever one of their secrets
directories rotates.

May import ``_watch``, ``_read`` and the leaves, nothing above. Entry points:
:class:`live.LiveSettings` and :func:`live.watch_settings`.
"""
