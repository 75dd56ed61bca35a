"""The ``secretwatch`` sidecar: watch volumes, reload a neighbour, report health and metrics.

``config`` holds the command-line and environment configuration, ``actions`` what a
change triggers (webhook, signal, command), ``runner`` runs them in order with retries,
``metrics`` and ``server`` the health and Prometheus endpoint, ``watch`` the command.
"""
