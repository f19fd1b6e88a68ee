"""The ``reengage`` command: the composition root that builds settings, store and use cases.

Commands live in submodules by who uses them; importing them registers them on ``app``.
"""

from reengage.cli import calls, campaigns, data, sends, service, stats
from reengage.cli.app import app, main

__all__ = ["app", "calls", "campaigns", "data", "main", "sends", "service", "stats"]
