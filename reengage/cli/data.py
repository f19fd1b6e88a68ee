"""Commands for data: the schema, imports, seed, demo and scores.

One customer and the lapsed list (``reengage customers``) are in ``customers.py``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn
from rich.table import Table

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
)
from reengage.errors import InputError
from reengage.timeutil import parse_duration, utcnow

if TYPE_CHECKING:
    from reengage import scoring
    from reengage.ingest import ImportReport, Kind

# -- db ---------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration (safe to run on every deploy)."""
    from reengage.store import Store, migrate

    store = Store.open(_settings().database_url, upgrade=True)
    revision = migrate.current_revision(store.engine)
    store.close()
    out.print(f"database is at revision {revision} (head)")


@db_app.command("current")
def db_current() -> None:
    """Show the schema revision of the database and of this code."""
    from reengage.store import migrate
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


def _parse_day(value: str | None) -> datetime:
    if value is None:
        return datetime.combine(utcnow().date(), time(), UTC)
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
    from reengage.ingest import Kind
    from reengage.seed import write_dataset

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


@app.command()
def score(
    as_of: Annotated[
        str | None,
        typer.Option(help="Judge the history as it stood on this date (later activity ignored)."),
    ] = None,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write one row per customer to this CSV file.")
    ] = None,
    run_backtest: Annotated[
        bool,
        typer.Option("--backtest", help="Check the score against what happened after --as-of."),
    ] = False,
    horizon: Annotated[
        str,
        typer.Option(help="How long a customer has to come back, e.g. 90d (backtest and fit)."),
    ] = "90d",
    fit: Annotated[
        bool,
        typer.Option(
            "--fit", help="Learn the score from this business's history and keep it for detection."
        ),
    ] = False,
) -> None:
    """Score every customer: days silent, expected gap, lapse ratio and score, declines, value.

    The lapse score is the probability of no order within the horizon. It is learned from
    your own history (--fit; --as-of and --backtest learn from what was known by that date).
    """
    from reengage import scoring

    when = _parse_day(as_of) if as_of else None
    try:
        span = parse_duration(horizon)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--horizon") from None
    store = _store()
    try:
        if run_backtest:
            if when is None:
                raise typer.BadParameter(
                    "--backtest needs --as-of, a date at least one horizon in the past",
                    param_hint="--as-of",
                )
            now = utcnow()  # the edge reads the clock once; the check takes that moment
            if when + span > now:
                raise typer.BadParameter(
                    f"{as_of} plus the horizon ({horizon}) ends on {when + span:%Y-%m-%d}, "
                    "which has not come yet, so nobody's return can be checked: choose a "
                    f"date on or before {now - span:%Y-%m-%d} (or a shorter --horizon)",
                    param_hint="--as-of",
                )
            report, fitted = scoring.backtest(store, as_of=when, horizon=span)
            _print_fit(fitted)
            _print_backtest(report)
            return
        if fit:
            fitted = scoring.fit_model(store, when or utcnow(), span.total_seconds() / 86400)
            _print_fit(fitted)
            if fitted.kept_prior_because is None:
                store.detection.save_lapse_model(
                    fitted.model, auc=fitted.auc, auc_recency=fitted.auc_recency, now=utcnow()
                )
                out.print("saved: detection and `reengage score` now use this model")
            return
        population, assessments = scoring.assess_all(store, utcnow(), as_of=when)
    finally:
        store.close()
    if out_file is not None:
        count = scoring.write_csv(assessments, out_file)
        out.print(f"wrote {count} customers to {out_file}")
        return
    lapsed_count = sum(a.lapse_score >= 0.5 for a in assessments)
    declining = sum(a.declining for a in assessments)
    out.print(
        f"{len(assessments)} customers scored as of {(when or utcnow()):%Y-%m-%d}: "
        f"{lapsed_count} have probably lapsed (score ≥ 0.5), {declining} are shrinking; "
        f"typical gap {population.typical_gap_days:.0f} days. Use --out FILE.csv for all rows."
    )


def _print_fit(fitted: scoring.FitResult) -> None:
    if fitted.kept_prior_because is not None:
        out.print(f"lapse model: kept the rhythm prior — {fitted.kept_prior_because}")
        return
    out.print(
        f"lapse model: {fitted.model.describe()}; {fitted.did_not_return} of "
        f"{fitted.customers} did not come back within the horizon. Ranking on that history: "
        f"ROC AUC {_fmt(fitted.auc, '{:.3f}')} (plain recency "
        f"{_fmt(fitted.auc_recency, '{:.3f}')})."
    )


def _print_backtest(report: scoring.BacktestReport) -> None:
    end = report.as_of + report.horizon
    out.print(
        f"Scored {report.customers} customers as of {report.as_of:%Y-%m-%d}; "
        f"{report.did_not_return} ({report.did_not_return / max(report.customers, 1):.0%}) "
        f"placed no order by {end:%Y-%m-%d}."
    )
    table = Table(title="How well each ranking finds the customers who did not come back")
    for column in ("ranking", "ROC AUC", "precision, top 5%", "precision, top 10%"):
        table.add_column(column, justify="left" if column == "ranking" else "right")
    for m in report.methods:
        table.add_row(
            m.name,
            _fmt(m.auc, "{:.3f}"),
            _fmt(m.precision_top5, "{:.0%}"),
            _fmt(m.precision_top10, "{:.0%}"),
        )
    out.print(table)
    calib = Table(title="Calibration of lapse_score: predicted against observed")
    for column in ("score band", "customers", "predicted", "did not come back"):
        calib.add_column(column, justify="right")
    for row in report.calibration:
        calib.add_row(
            f"{row.low:.1f}–{row.high:.1f}",
            str(row.count),
            f"{row.predicted:.0%}",
            f"{row.observed:.0%}",
        )
    out.print(calib)


def _fmt(value: float | None, pattern: str) -> str:
    return "—" if value is None else pattern.format(value)
