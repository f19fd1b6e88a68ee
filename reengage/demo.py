"""``reengage demo``: the whole product on a throw-away SQLite database, in one command."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table

from reengage.detect import Rhythm, population_gap, rhythm
from reengage.ingest import ImportReport, Kind, import_file
from reengage.models import Customer
from reengage.seed import write_dataset
from reengage.store import Store


@dataclass(frozen=True)
class DemoResult:
    """What the demo built, for the caller (and the tests) to inspect."""

    database_url: str
    reports: list[ImportReport]
    lapsed: list[tuple[Customer, Rhythm]]


def run_demo(
    console: Console, *, customers: int, now: datetime, folder: Path | None = None, seed: int = 7
) -> DemoResult:
    """Seed a fresh database, import it, and show what the data says."""
    workdir = folder or Path(tempfile.mkdtemp(prefix="reengage-demo-"))
    url = f"sqlite:///{workdir / 'demo.db'}"
    console.rule("[bold]reengage demo")
    console.print(f"Database: [cyan]{workdir / 'demo.db'}[/] (throw-away SQLite)")
    data = write_dataset(workdir / "data", customers, seed=seed, now=now)
    store = Store.open(url, upgrade=True)
    try:
        reports = [
            import_file(store, kind, path, now=now, zone=ZoneInfo("UTC"))
            for kind, path in (
                (Kind.REPS, data.reps),
                (Kind.CUSTOMERS, data.customers),
                (Kind.ACTIVITIES, data.activities),
            )
        ]
        _show_imports(console, reports)
        overview = store.overview()
        console.print(
            f"\n{overview.customers} customers, {overview.reps} reps, "
            f"{overview.activities} activities from {overview.first_activity_at:%Y-%m-%d} "
            f"to {overview.last_activity_at:%Y-%m-%d}.\n"
        )
        pairs = list(store.customers_with_stats())
        fallback = population_gap(stats for _, stats in pairs)
        scored = [
            (customer, r)
            for customer, stats in pairs
            if (r := rhythm(stats, now, fallback)) is not None
        ]
        _show_sample(console, scored)
        lapsed = sorted(
            (pair for pair in scored if pair[1].lapse_ratio >= 2.0 and pair[1].days_silent < 365),
            key=lambda pair: pair[1].lapse_ratio,
            reverse=True,
        )
        _show_lapsed(console, lapsed, len(scored))
    finally:
        store.close()
    console.print(f"\nThe demo's files are in [cyan]{workdir}[/]; delete them when done.")
    return DemoResult(url, reports, lapsed)


def _show_imports(console: Console, reports: list[ImportReport]) -> None:
    table = Table(title="Imported through `reengage import`")
    for column in ("file", "rows", "new", "updated", "unchanged", "rejected"):
        table.add_column(column, justify="left" if column == "file" else "right")
    for r in reports:
        table.add_row(
            Path(r.file).name,
            str(r.rows),
            str(r.counts.inserted),
            str(r.counts.updated),
            str(r.counts.unchanged),
            str(len(r.rejected)),
        )
    console.print(table)


def _show_sample(console: Console, scored: list[tuple[Customer, Rhythm]]) -> None:
    table = Table(title="What the data looks like: a few customers and their rhythm")
    for column in ("customer", "segment", "usual gap", "silent", "ratio"):
        table.add_column(column, justify="left" if column in ("customer", "segment") else "right")
    for customer, r in scored[:8]:
        table.add_row(
            _name(customer),
            customer.segment or "",
            f"{r.expected_gap_days:.0f} d",
            f"{r.days_silent:.0f} d",
            f"{r.lapse_ratio:.1f}×",
        )
    console.print(table)


def _show_lapsed(console: Console, lapsed: list[tuple[Customer, Rhythm]], total: int) -> None:
    table = Table(
        title=f"Look inactive: silent for at least twice their own rhythm "
        f"({len(lapsed)} of {total})"
    )
    table.add_column("customer")
    table.add_column("why")
    for customer, r in lapsed[:12]:
        table.add_row(_name(customer), r.why())
    console.print(table)


def _name(customer: Customer) -> str:
    person = " ".join(p for p in (customer.first_name, customer.last_name) if p)
    label = f"{person} ({customer.company})" if customer.company else person
    return f"{customer.external_id} {label}".strip()
