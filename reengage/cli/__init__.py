"""The ``reengage`` command: the composition root that builds settings, store and use cases.

Commands live in submodules by who uses them; importing them registers them on ``app``. The
groups declared with ``add_lazy_group`` import their module only when one of their commands
runs (see ``lazy.py``), and every module imports its heavy libraries inside its commands.
"""

import signal
import sys


def _quiet_exit(signum: int, frame: object) -> None:
    # The daemon is still starting (importing, reading settings): nothing is claimed or sent
    # yet, so a stop now is a clean exit; the service installs its own handler when it runs.
    raise SystemExit(0)


if sys.argv[1:2] == ["run"] and "--once" not in sys.argv:  # before the heavy imports below
    signal.signal(signal.SIGTERM, _quiet_exit)

from reengage.cli import (  # noqa: E402
    campaigns,
    customers,
    data,
    doctor,
    inbound,
    scores,
    service,
    stats,
)
from reengage.cli.app import app, main  # noqa: E402
from reengage.cli.lazy import add_lazy_group  # noqa: E402

# Their commands take the models' enums as option types: imported when one of them is used.
add_lazy_group(
    app, "calls", "reengage.cli.calls:calls_app", help="The reps' call list and call outcomes."
)
add_lazy_group(
    app, "digest", "reengage.cli.calls:digest_app", help="The reps' morning digest email."
)
add_lazy_group(app, "report", "reengage.cli.report:report_app", help="What the calls taught us.")
add_lazy_group(
    app,
    "sends",
    "reengage.cli.sends:sends_app",
    help="Mails that failed or whose outcome is unknown: list them, send them again.",
)

__all__ = [
    "app",
    "campaigns",
    "customers",
    "data",
    "doctor",
    "inbound",
    "main",
    "scores",
    "service",
    "stats",
]
