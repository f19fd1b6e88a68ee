"""Commands for data: the schema, imports, seed and demo.

One customer and the lapsed list (``reengage customers``) are in ``customers.py``; the
scores (``reengage score``) in ``scores.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

from reengage.cli.app import (
    _settings,
    _State,
    _store,
    _workspace,
    app,
    db_app,
    err,
    import_app,
    out,
    parse_day,
)
from reengage.errors import InputError
from reengage.timeutil import utcnow

if TYPE_CHECKING:
    from reengage.ingest import ImportReport, Kind

# -- db ---------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration (safe to run on every deploy)."""
    from reengage.store import Store, migrate

    settings = _settings()
    store = Store.open(
        settings.database_url, upgrade=True, connect_timeout=settings.database_connect_timeout
    )
    revision = migrate.current_revision(store.engine)
    store.close()
    out.print(f"database is at revision {revision} (head)")


@db_app.command("current")
def db_current() -> None:
    """Show the schema revision of the database and of this code."""
    from reengage.store import migrate
    from reengage.store.engine import check_connection, create_engine

    settings = _settings()
    engine = create_engine(settings.database_url, connect_timeout=settings.database_connect_timeout)
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
    from reengage.ingest import import_file

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
    if report.stopped:
        err.print(report.stopped, highlight=False, markup=False)
    c = report.counts
    prefix = "dry run, nothing written: would have " if report.dry_run else ""
    # Every row read is counted once: rows read = imported + updated + unchanged + skipped,
    # and the repeated ids are among the skipped.
    n = report.repeated
    repeated = f", {n} of them {'a repeated id' if n == 1 else 'repeated ids'}" if n else ""
    out.print(
        f"{prefix}{report.kind.value}: {c.inserted} imported, {c.updated} updated, "
        f"{c.unchanged} unchanged, {len(report.rejected)} skipped{repeated} "
        f"({report.rows} rows read)",
        highlight=False,
        markup=False,
    )


@import_app.command("customers")
def import_customers(path: CsvFile, dry_run: DryRun = False) -> None:
    """Customers: customer_id,email required; names, company, rep_id, the customer file…"""
    from reengage.ingest import Kind

    _import(Kind.CUSTOMERS, path, dry_run)


@import_app.command("reps")
def import_reps(path: CsvFile, dry_run: DryRun = False) -> None:
    """Sales reps: rep_id,email required; name, phone, timezone optional."""
    from reengage.ingest import Kind

    _import(Kind.REPS, path, dry_run)


@import_app.command("activities")
def import_activities(path: CsvFile, dry_run: DryRun = False) -> None:
    """Activities: customer_id,occurred_at required; activity_id, kind, amount, margin."""
    from reengage.ingest import Kind

    _import(Kind.ACTIVITIES, path, dry_run)


# -- seed and demo -----------------------------------------------------------------------------


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
    from reengage.ingest import Kind
    from reengage.seed import write_dataset

    day = parse_day(now)
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
    from reengage import demo as demo_module
    from reengage.cli.stats import show_results
    from reengage.logs import configure_logging

    if folder is not None and folder.exists() and not folder.is_dir():
        raise InputError(
            f"cannot use {folder}: it is a file, not a folder (give a folder; it is made "
            "if it is missing)"
        )
    settings = _settings()
    configure_logging("warning", settings.log_format)  # the demo speaks in tables
    examples = Path(__file__).resolve().parents[2]  # the project's own campaigns/ and templates/
    if not settings.campaigns_dir.is_dir() and (examples / "campaigns").is_dir():
        _State.settings = settings.model_copy(
            update={
                "campaigns_dir": examples / "campaigns",
                "templates_dir": examples / "templates",
            }
        )
    demo_module.run_demo(
        out,
        customers=customers,
        now=utcnow(),
        workspace=_workspace(),
        folder=folder,
        stats_tables=show_results,
    )
