"""The ``reengage`` command: the composition root that builds settings, store and use cases.

Commands live in submodules by who uses them; importing them registers them on ``app``.
"""

import signal
import sys


def _quiet_exit(signum: int, frame: object) -> None:
    # The daemon is still starting (importing, reading settings): nothing is claimed or sent
    # yet, so a stop now is a clean exit; the service installs its own handler when it runs.
    raise SystemExit(0)


if sys.argv[1:2] == ["run"] and "--once" not in sys.argv:  # before the heavy imports below
    signal.signal(signal.SIGTERM, _quiet_exit)

from reengage.cli import calls, campaigns, data, sends, service, stats  # noqa: E402
from reengage.cli.app import app, main  # noqa: E402

__all__ = ["app", "calls", "campaigns", "data", "main", "sends", "service", "stats"]
