"""What the lapse benches share: a purchase history into reengage, and the comparison table.

A bench (``bench/cdnow.py``, ``bench/completejourney.py``) reads a public purchase history
into :class:`Purchase` rows; :func:`run` writes them as customers.csv and activities.csv,
imports them into a fresh SQLite database with ``reengage.ingest.import_file`` (the code
behind ``reengage import``) and, for each as-of date and horizon, scores everyone with
``reengage.scoring.fit_model`` and ``assess_all`` (the code behind ``reengage score
--backtest``): a model fitted only on what was known by then, checked against who placed
no order in (as-of, as-of + horizon].

Beside the lapse score it ranks the same customers by

- plain recency (days silent);
- BG/NBD (Fader, Hardie & Lee 2005), fitted by maximum likelihood on the same customers as
  of the same date: P(no purchase within the horizon) and the expected number of purchases
  (fewest first) — the better of the two is shown;
- a logistic RFM model: a logistic regression on log recency, log frequency, log order
  value and log age, fitted the way reengage fits its own (customers as of as-of − horizon,
  labelled by who ordered by as-of).

Each ranking is measured by ROC AUC and the precision of its top 10 % (the share of them
who did not come back), over all customers and over regular ones (3+ orders by the as-of
date). scipy and numpy are needed for BG/NBD (``pip install scipy``).
"""

from __future__ import annotations

import argparse
import csv
import importlib
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from baselines import bgnbd_scores, fit_bgnbd, fit_logit, rfm_rows

REGULAR_ORDERS = 3
BASELINES = ("plain recency", "BG/NBD", "logistic RFM")


@dataclass(frozen=True)
class Purchase:
    customer: str
    at: datetime  # aware
    amount: float


def write_csvs(
    purchases: Sequence[Purchase], folder: Path, segments: dict[str, str] | None = None
) -> tuple[Path, Path]:
    """customers.csv (with a segment where known) and activities.csv, one row per order."""
    segments = segments or {}
    customers_csv, activities_csv = folder / "customers.csv", folder / "activities.csv"
    with customers_csv.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["customer_id", "email", "segment"])
        for customer in sorted({p.customer for p in purchases}):
            out.writerow([customer, f"c{customer}@example.com", segments.get(customer, "")])
    with activities_csv.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["activity_id", "customer_id", "occurred_at", "amount"])
        for n, p in enumerate(purchases, 1):  # one row per order; same-day orders stay apart
            out.writerow([f"o-{n}", p.customer, p.at.isoformat(), f"{p.amount:.2f}"])
    return customers_csv, activities_csv


def import_into_reengage(url: str, customers_csv: Path, activities_csv: Path, now: datetime) -> Any:
    from reengage.ingest import Kind, import_file
    from reengage.store import Store

    store = Store.open(url, upgrade=True)
    for kind, path in ((Kind.CUSTOMERS, customers_csv), (Kind.ACTIVITIES, activities_csv)):
        report = import_file(store, kind, path, now=now, zone=ZoneInfo("UTC"), batch_size=20_000)
        if report.rejected or report.warnings:
            print(f"import {kind.value}: {len(report.rejected)} rejected, {report.warnings}")
        print(f"imported {kind.value}: {report.rows} rows")
    return store


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Cell:
    auc: float | None
    top10: float | None


def measure(scores: Sequence[float], gone: Sequence[bool]) -> Cell:
    from reengage.backtest import precision_at, roc_auc

    return Cell(roc_auc(scores, gone), precision_at(scores, gone, 0.10))


@dataclass(frozen=True)
class Rankings:
    """Every ranking of the customers known at one as-of date, and who did not come back."""

    ids: list[str]
    gone: list[bool]
    regular: Any  # numpy bool array: 3+ orders by the as-of date
    scores: dict[str, list[float]]


def rankings_at(
    store: Any,
    days: dict[str, list[float]],
    value: dict[str, list[float]],
    epoch: datetime,
    as_of: datetime,
    horizon: int,
) -> Rankings:
    """The lapse score and every baseline for the customers known at ``as_of``."""
    import numpy as np

    from reengage import scoring

    at = (as_of - epoch).total_seconds() / 86400.0
    fit = scoring.fit_model(store, as_of, float(horizon))
    _, assessments = scoring.assess_all(store, as_of, as_of=as_of, model=fit.model)
    ids = [a.profile.external_id for a in assessments]
    gone = [not any(at < d <= at + horizon for d in days[c]) for c in ids]
    returned = store.detection.buyers_between(as_of, as_of + timedelta(days=horizon))
    if gone != [a.profile.customer_id not in returned for a in assessments]:
        raise SystemExit(f"{as_of:%Y-%m-%d}: the bench and reengage disagree on who came back")
    regular = np.array([a.profile.order_count >= REGULAR_ORDERS for a in assessments])

    # BG/NBD on distinct purchase days, as of the same moment
    x, t_x, age = [], [], []
    for c in ids:
        past = sorted({int(d) for d in days[c] if d <= at})
        x.append(len(past) - 1)
        t_x.append(past[-1] - past[0])
        age.append(int(at) - past[0])
    xs, txs, ages = (np.array(v, float) for v in (x, t_x, age))
    params = fit_bgnbd(xs, txs, ages)
    p0, expected = bgnbd_scores(params, xs, txs, ages, float(horizon))

    # logistic RFM, fitted as reengage fits (as of as-of − horizon, labelled by as-of)
    train_ids, train_rows = rfm_rows(days, value, at - horizon)
    if len(train_ids) < 2:
        raise SystemExit(
            f"{as_of:%Y-%m-%d}: no history before as-of − {horizon} days to learn from"
        )
    train_gone = [not any(at - horizon < d <= at for d in days[c]) for c in train_ids]
    scorer = fit_logit(train_rows, train_gone)
    test_ids, test_rows = rfm_rows(days, value, at)
    rfm = dict(zip(test_ids, scorer(test_rows), strict=True))

    rankings = {
        "lapse_score (reengage)": [a.lapse_score for a in assessments],
        "plain recency": [a.days_silent for a in assessments],
        "BG/NBD P(none in h)": [float(v) for v in p0],
        "BG/NBD -E[purchases]": [-float(v) for v in expected],
        "logistic RFM": [float(rfm[c]) for c in ids],
    }
    return Rankings(ids, gone, regular, rankings)


def compare_at(
    store: Any,
    days: dict[str, list[float]],
    value: dict[str, list[float]],
    epoch: datetime,
    as_of: datetime,
    horizon: int,
) -> tuple[dict[str, tuple[Cell, Cell]], int, int, int, int]:
    """Every ranking at one as-of date and horizon: (all, regulars) per method."""
    import numpy as np

    found = rankings_at(store, days, value, epoch, as_of, horizon)
    ids, gone, regular = found.ids, found.gone, found.regular
    table = {}
    for name, scores in found.scores.items():
        s = np.array(scores)
        table[name] = (
            measure(list(s), gone),
            measure(list(s[regular]), [g for g, r in zip(gone, regular, strict=True) if r]),
        )
    return (
        table,
        len(ids),
        sum(gone),
        int(regular.sum()),
        sum(g for g, r in zip(gone, regular, strict=True) if r),
    )


def show(value: float | None) -> str:
    return "  n/a" if value is None else f"{value:.3f}"


def best_baseline(table: dict[str, tuple[Cell, Cell]], part: int, metric: str) -> float:
    return max(
        getattr(cells[part], metric) or 0.0
        for name, cells in table.items()
        if name.startswith(BASELINES)
    )


def print_table(tables: dict[int, dict[str, tuple[Cell, Cell]]]) -> list[str]:
    """One row per ranking, per horizon: AUC and top-10 % over all and regulars; then the
    lapse score's margin over the best baseline in each column. Returns the margin lines."""
    horizons = sorted(tables)
    head = " | ".join(f"h={h}d all AUC  p10  reg AUC  p10" for h in horizons)
    print(f"{'ranking':<24} | {head}")
    print("-" * (27 + 33 * len(horizons)))
    for name in tables[horizons[0]]:
        cells = []
        for h in horizons:
            whole, reg = tables[h][name]
            cells.append(
                f"{show(whole.auc):>11} {show(whole.top10)} {show(reg.auc):>8} {show(reg.top10)}"
            )
        print(f"{name:<24} | " + " | ".join(cells))
    margins = []
    for h in horizons:
        ours = tables[h]["lapse_score (reengage)"]
        parts = []
        for part, label in ((0, "all"), (1, "regular")):
            for metric, short in (("auc", "AUC"), ("top10", "top-10%")):
                mine = getattr(ours[part], metric) or 0.0
                delta = mine - best_baseline(tables[h], part, metric)
                parts.append(f"{label} {short} {delta:+.3f}")
        margins.append(f"h={h}d margin over the best baseline: " + ", ".join(parts))
    print("\n".join(margins))
    return margins


def run(
    name: str,
    purchases: Sequence[Purchase],
    folder: Path,
    as_of_dates: Sequence[datetime],
    horizons: Sequence[int],
    now: datetime,
    segments: dict[str, str] | None = None,
) -> None:
    """Import the purchases, then print the table for each as-of date."""
    from reengage.logs import configure_logging

    configure_logging("warning")
    csvs = write_csvs(purchases, folder, segments)
    store = import_into_reengage(f"sqlite:///{folder / 'bench.db'}", *csvs, now)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    days: dict[str, list[float]] = {}
    value: dict[str, list[float]] = {}
    for p in sorted(purchases, key=lambda p: p.at):
        days.setdefault(p.customer, []).append((p.at - epoch).total_seconds() / 86400.0)
        value.setdefault(p.customer, []).append(p.amount)
    summary = []
    try:
        for as_of in as_of_dates:
            tables = {}
            print()
            for h in horizons:
                table, n, gone, regular, regular_gone = compare_at(
                    store, days, value, epoch, as_of, h
                )
                tables[h] = table
                print(
                    f"{name} as of {as_of:%Y-%m-%d}, horizon {h} days: {n} customers, "
                    f"{gone / n:.1%} did not come back; {regular} regular, "
                    f"{regular_gone / max(regular, 1):.1%} of them did not"
                )
            summary += [f"{as_of:%Y-%m-%d} {m}" for m in print_table(tables)]
    finally:
        store.close()
    print()
    print("\n".join(summary))


def bench_main(
    argv: Sequence[str] | None,
    doc: str,
    defaults: tuple[list[int], list[str]],
    needs: tuple[list[str], str],
    go: Callable[[Path, list[datetime], list[int]], None],
) -> None:
    """A history bench's command line: ``--horizon`` days, ``--as-of`` dates, ``--keep DIR``;
    stops with ``needs``' install line when one of its modules is missing; runs ``go(folder,
    as-of moments, horizons)`` in DIR or a temporary folder."""
    parser = argparse.ArgumentParser(description=doc.split("\n", 1)[0])
    parser.add_argument("--horizon", nargs="+", type=int, default=defaults[0])
    parser.add_argument(
        "--as-of",
        nargs="+",
        type=date.fromisoformat,
        default=[*map(date.fromisoformat, defaults[1])],
    )
    parser.add_argument("--keep", type=Path, help="work in DIR and leave the files there")
    args = parser.parse_args(argv)
    modules, install = needs
    try:
        for module in modules:
            importlib.import_module(module)
    except ImportError:
        raise SystemExit(f"this bench needs {' and '.join(modules)}: {install}") from None
    dates = [datetime.combine(d, time(0), UTC) for d in args.as_of]
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        go(args.keep, dates, args.horizon)
        return
    with tempfile.TemporaryDirectory(prefix="reengage-bench-") as folder:
        go(Path(folder), dates, args.horizon)
