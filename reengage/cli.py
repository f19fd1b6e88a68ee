"""The ``reengage`` command: the composition root that builds settings, store and use cases."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn
from rich.table import Table

from reengage import demo as demo_module
from reengage.config import Settings, load_settings
from reengage.detect import population_gap, rhythm
from reengage.errors import ConfigError, InputError, ReengageError
from reengage.ingest import ImportReport, Kind, import_file
from reengage.logs import configure_logging, get_logger
from reengage.seed import write_dataset
from reengage.store import Store, migrate
from reengage.timeutil import utcnow

app = typer.Typer(
    help="Win back customers whose buying habit has lapsed.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
import_app = typer.Typer(
    help="Import CSV files (see README for the columns).", no_args_is_help=True
)
customers_app = typer.Typer(help="Look at customers.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(import_app, name="import")
app.add_typer(customers_app, name="customers")

out = Console()
err = Console(stderr=True)
log = get_logger(__name__)


class _State:
    settings: Settings | None = None


def _settings() -> Settings:
    if _State.settings is None:
        _State.settings = load_settings()
    return _State.settings


def _store(upgrade: bool = False) -> Store:
    return Store.open(_settings().database_url, upgrade=upgrade)


@app.callback()
def _root() -> None:
    """Read settings and set up logging before any command."""
    settings = _settings()
    configure_logging(settings.log_level, settings.log_format)


# -- db ---------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration (safe to run on every deploy)."""
    store = Store.open(_settings().database_url, upgrade=True)
    revision = migrate.current_revision(store.engine)
    store.close()
    out.print(f"database is at revision {revision} (head)")


@db_app.command("current")
def db_current() -> None:
    """Show the schema revision of the database and of this code."""
    from reengage.store.engine import check_connection, create_engine

    engine = create_engine(_settings().database_url)
    check_connection(engine)
    current, head = migrate.current_revision(engine), migrate.head_revision()
    engine.dispose()
    out.print(f"database: {current or 'empty'}; this reengage: {head}")
    if current != head:
        raise typer.Exit(1)


# -- import ---------------------------------------------------------------------------------

DryRun = Annotated[bool, typer.Option("--dry-run", help="Check and count; change nothing.")]
CsvFile = Annotated[Path, typer.Argument(help="CSV file (UTF-8; comma, semicolon or tab)")]


def _import(kind: Kind, path: Path, dry_run: bool) -> None:
    settings = _settings()
    store = _store()
    try:
        if err.is_terminal:
            with Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                DownloadColumn(),
                TimeRemainingColumn(),
                console=err,
                transient=True,
            ) as bar:
                task = bar.add_task(f"importing {path.name}", total=path.stat().st_size)
                report = import_file(
                    store,
                    kind,
                    path,
                    now=utcnow(),
                    zone=settings.zone,
                    batch_size=settings.import_batch_size,
                    dry_run=dry_run,
                    progress=lambda done: bar.update(task, completed=done),
                )
        else:
            report = import_file(
                store,
                kind,
                path,
                now=utcnow(),
                zone=settings.zone,
                batch_size=settings.import_batch_size,
                dry_run=dry_run,
            )
    finally:
        store.close()
    _print_report(report)
    if not report.ok:
        raise typer.Exit(1)


def _print_report(report: ImportReport) -> None:
    for warning in report.warnings:
        err.print(f"warning: {warning}", highlight=False, markup=False)
    for problem in sorted(report.rejected, key=lambda p: p.line)[:50]:
        err.print(str(problem), highlight=False, markup=False)
    if len(report.rejected) > 50:
        err.print(f"… and {len(report.rejected) - 50} more rejected rows", markup=False)
    c = report.counts
    prefix = "dry run, nothing written: would have " if report.dry_run else ""
    out.print(
        f"{prefix}{report.kind.value}: {c.inserted} imported, {c.updated} updated, "
        f"{c.unchanged} unchanged, {len(report.rejected)} skipped ({report.rows} rows read)",
        highlight=False,
        markup=False,
    )


@import_app.command("customers")
def import_customers(path: CsvFile, dry_run: DryRun = False) -> None:
    """Customers: customer_id,email required; names, company, rep_id, the customer file…"""
    _import(Kind.CUSTOMERS, path, dry_run)


@import_app.command("reps")
def import_reps(path: CsvFile, dry_run: DryRun = False) -> None:
    """Sales reps: rep_id,email required; name, phone, timezone optional."""
    _import(Kind.REPS, path, dry_run)


@import_app.command("activities")
def import_activities(path: CsvFile, dry_run: DryRun = False) -> None:
    """Activities: customer_id,occurred_at required; activity_id, kind, amount, margin."""
    _import(Kind.ACTIVITIES, path, dry_run)


# -- seed and demo -----------------------------------------------------------------------------


def _parse_day(value: str | None) -> datetime:
    if value is None:
        return datetime.combine(date.today(), time(), UTC)
    try:
        return datetime.combine(date.fromisoformat(value), time(), UTC)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date like 2026-11-01") from None


@app.command()
def seed(
    customers: Annotated[int, typer.Option(min=1, help="How many customers.")] = 500,
    seed: Annotated[int, typer.Option(help="Same seed and --now, same data.")] = 1,
    now: Annotated[str | None, typer.Option(help="Histories end on this date.")] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Write CSVs here instead of importing them.")
    ] = None,
) -> None:
    """Generate realistic customers and activities (weekly to quarterly, lapsing, shrinking)."""
    day = _parse_day(now)
    if out_dir is not None:
        data = write_dataset(out_dir, customers, seed=seed, now=day)
        out.print(
            f"wrote {data.customer_count} customers and {data.activity_count} activities "
            f"to {out_dir}"
        )
        return
    import tempfile

    with tempfile.TemporaryDirectory(prefix="reengage-seed-") as tmp:
        data = write_dataset(Path(tmp), customers, seed=seed, now=day)
        for kind, path in (
            (Kind.REPS, data.reps),
            (Kind.CUSTOMERS, data.customers),
            (Kind.ACTIVITIES, data.activities),
        ):
            _import(kind, path, dry_run=False)


@app.command()
def demo(
    customers: Annotated[int, typer.Option(min=10, help="How many customers to invent.")] = 300,
    folder: Annotated[Path | None, typer.Option(help="Keep the demo's files here.")] = None,
) -> None:
    """See reengage work end to end on a throw-away SQLite database."""
    demo_module.run_demo(out, customers=customers, now=utcnow(), folder=folder)


# -- customers -----------------------------------------------------------------------------


@customers_app.command("show")
def customers_show(customer_id: Annotated[str, typer.Argument(help="external id")]) -> None:
    """One customer: their file, their rhythm, their recent activity."""
    store = _store()
    try:
        found = store.get_customer(customer_id)
        if found is None:
            raise InputError(f"no customer {customer_id!r}; check the id with your import file")
        customer, stats = found
        activities = store.activities_of(customer.id) if customer.id is not None else []
        fallback = population_gap(s for _, s in store.customers_with_stats())
    finally:
        store.close()
    table = Table(show_header=False, title=f"{customer.external_id}")
    for label, value in (
        ("name", f"{customer.first_name or ''} {customer.last_name or ''}".strip()),
        ("company", customer.company),
        ("email", customer.email),
        ("phone", customer.phone),
        ("segment", customer.segment),
        ("rep", customer.rep_external_id),
        (
            "decision maker",
            " — ".join(filter(None, (customer.decision_maker, customer.decision_maker_role))),
        ),
        ("interests", ", ".join(customer.interests)),
        (
            "important dates",
            ", ".join(f"{d['label']} {d['date']}" for d in customer.important_dates),
        ),
    ):
        table.add_row(label, value or "—")
    r = rhythm(stats, utcnow(), fallback) if stats else None
    table.add_row("rhythm", r.why() if r else "no activity yet")
    recent = ", ".join(
        f"{a.occurred_at:%Y-%m-%d} {a.kind}" + (f" {a.amount:.2f}" if a.amount is not None else "")
        for a in activities[-5:]
    )
    table.add_row("recent", recent or "—")
    out.print(table)


def main() -> NoReturn:
    """Entry point: run the app; a ReengageError becomes one clear line and a non-zero exit."""
    try:
        # Without standalone mode click hands back typer.Exit's code instead of exiting.
        code = app(standalone_mode=False)
    except ConfigError as exc:
        err.print(f"configuration error: {exc}", markup=False, highlight=False)
        sys.exit(2)
    except ReengageError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("aborted")
        sys.exit(130)
    except Exception as exc:  # click's usage errors arrive here with standalone_mode=False
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
    sys.exit(code if isinstance(code, int) else 0)
