"""``reengage demo``: the whole product on a throw-away SQLite database, in one command.

The demo runs on its own clock, which ends at the real now: the invented history ends
``days`` ago, and the real daemon then runs over those days up to now. Nothing it leaves in
the database is dated after now, so ``reengage run --once``, ``reengage stats`` and the
dashboard go on from where it stopped.

- ``run.py``: the story: invent a history, import it, score it, then the daemon;
- ``daemon.py``: the real daemon, web app and inbound listener over the demo's days, with a
  real SMTP server on loopback as everyone's mailbox;
- ``actors.py``: the simulated customers and reps, who act only through the real doors
  (HTTP links and forms, SMTP replies, imported orders);
- ``show.py``: everything the demo prints.
"""

from reengage.demo.run import DemoResult, run_demo

__all__ = ["DemoResult", "run_demo"]
