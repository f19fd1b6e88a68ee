"""The demo's story: invent a history ending ``days`` ago, import it through the real
import, learn and show the lapse score, then hand over to the daemon (``daemon.py``)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from rich.console import Console

from reengage.compose import Workspace
from reengage.demo.daemon import run_the_daemon
from reengage.demo.show import show_imports, show_lapsed, show_sample
from reengage.detect import Assessment
from reengage.ingest import ImportReport, Kind, import_file
from reengage.scoring import assess_all, fit_model
from reengage.seed import write_dataset
from reengage.stats import Results
from reengage.store import Store


@dataclass(frozen=True)
class DemoResult:
    """What the demo built, for the caller (and the tests) to inspect."""

    database_url: str
    reports: list[ImportReport]
    lapsed: list[Assessment]
    start: datetime  # where the invented history ends and the daemon starts
    end: datetime  # the real now the demo's clock runs up to
    first_mail: Path | None = None
    mailbox: list[Path] = field(default_factory=list)


def run_demo(
    console: Console,
    *,
    customers: int,
    now: datetime,
    workspace: Workspace,
    folder: Path | None = None,
    seed: int = 7,
    days: int = 21,
    stats_tables: Callable[[Console, Results], None],
) -> DemoResult:
    """Invent a history ending ``days`` before ``now``, import it, show what the data says,
    then run the real daemon over those days up to ``now``, and show what it did.

    ``stats_tables`` prints the results as ``reengage stats`` does: the command line hands
    it in, so the demo imports nothing from the command line above it."""
    workdir = folder or Path(tempfile.mkdtemp(prefix="reengage-demo-"))
    url = f"sqlite:///{workdir / 'demo.db'}"
    start = now - timedelta(days=days)
    console.rule("[bold]reengage demo")
    console.print(f"Database: [cyan]{workdir / 'demo.db'}[/] (throw-away SQLite)")
    console.print(
        f"The story starts {days} days ago, on {start:%a %d %b %Y}: the invented history ends "
        f"there, and the daemon then runs those {days} days up to now "
        f"({now:%a %d %b %H:%M} UTC).",
        markup=False,
    )
    data = write_dataset(workdir / "data", customers, seed=seed, now=start)
    store = Store.open(url, upgrade=True)
    try:
        reports = [
            import_file(store, kind, path, now=start, zone=ZoneInfo("UTC"))
            for kind, path in (
                (Kind.REPS, data.reps),
                (Kind.CUSTOMERS, data.customers),
                (Kind.ACTIVITIES, data.activities),
            )
        ]
        show_imports(console, reports)
        overview = store.customers.overview()
        console.print(
            f"\n{overview.customers} customers, {overview.reps} reps, "
            f"{overview.activities} activities from {overview.first_activity_at:%Y-%m-%d} "
            f"to {overview.last_activity_at:%Y-%m-%d}.\n"
        )
        fit = fit_model(store, start)
        if fit.kept_prior_because is None:
            store.lapse_models.save(
                fit.model, horizon=fit.horizon, auc=fit.auc, auc_recency=fit.auc_recency, now=start
            )
            console.print(
                f"Learned the lapse score from this history ({fit.customers} customers as they "
                f"stood {fit.horizon.days:.0f} days ago; {fit.did_not_return} did not order "
                f"again): ROC AUC {fit.auc:.3f} against {fit.auc_recency:.3f} for plain "
                f"recency. Horizon {fit.horizon.why()}.\n"
            )
        else:
            console.print(f"Lapse score: the rhythm prior ({fit.kept_prior_because}).\n")
        population, assessments = assess_all(store, start)
        show_sample(console, assessments, population)
        lapsed = sorted(
            (a for a in assessments if a.lapse_score >= 0.5 or a.declining),
            key=lambda a: a.priority,
            reverse=True,
        )
        show_lapsed(console, lapsed, len(assessments))
        first_mail, mailbox = run_the_daemon(
            console, store, workspace, workdir, start, now, stats_tables
        )
    finally:
        store.close()
    console.print(f"\nThe demo's files are in [cyan]{workdir}[/]; delete them when done.")
    return DemoResult(url, reports, lapsed, start, now, first_mail, mailbox)
