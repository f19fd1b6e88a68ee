"""Detection speed: the indexed pass over running stats against a GROUP BY over activities.

    python bench/detect.py [--customers 1000000] [--database-url URL]

Generates mostly habitual customers (about 20 activities each) with `reengage.seed`,
imports them through `reengage import` (timed), then measures, each in a fresh process:

- reengage: `scoring.lapsed_audience` — one indexed query on `customer_stats` plus
  arithmetic per match; never reads the activity table;
- baseline: the same answer from a plain GROUP BY over the activity table (every
  customer's order history aggregated in SQL, then folded and judged the same way).

Prints seconds and peak memory of each and checks both found the same customers.
Aim: the pass under 2 s on SQLite and at least 10x faster than the baseline.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

NOW = datetime(2026, 11, 1, tzinfo=UTC)
RULE = {"factor": 2.0, "min_days_silent": 21.0, "max_days_silent": 365.0}


def build(url: str, folder: Path, customers: int) -> dict[str, float]:
    """Generate and import; returns timings."""
    from reengage.ingest import Kind, import_file
    from reengage.seed import write_dataset
    from reengage.store import Store

    started = time.perf_counter()
    data = write_dataset(folder, customers, seed=1, now=NOW, regulars=True)
    generated = time.perf_counter() - started
    store = Store.open(url, upgrade=True)
    started = time.perf_counter()
    import_file(
        store, Kind.CUSTOMERS, data.customers, now=NOW, zone=ZoneInfo("UTC"), batch_size=20_000
    )
    import_file(
        store, Kind.ACTIVITIES, data.activities, now=NOW, zone=ZoneInfo("UTC"), batch_size=20_000
    )
    imported = time.perf_counter() - started
    store.close()
    return {"activities": data.activity_count, "generate_s": generated, "import_s": imported}


def reengage_pass(url: str) -> tuple[list[int], float]:
    from reengage.scoring import LapseCriteria, lapsed_audience
    from reengage.store import Store

    store = Store.open(url)
    started = time.perf_counter()
    found = lapsed_audience(store, NOW, LapseCriteria(**RULE))
    seconds = time.perf_counter() - started
    store.close()
    return sorted(c.customer_id for c in found), seconds


def baseline_pass(url: str) -> tuple[list[int], float]:
    import sqlalchemy as sa

    from reengage.detect import Profile, expected_gap_days, fit_population
    from reengage.history import Event, Summary
    from reengage.scoring import LapseCriteria
    from reengage.store import Store

    rule = LapseCriteria(**RULE)
    store = Store.open(url)
    started = time.perf_counter()
    # Every customer's order history, aggregated by the database in one GROUP BY.
    if store.dialect == "sqlite":
        history = "group_concat(a.occurred_at || '|' || coalesce(a.amount, 0), ';')"
    else:
        history = "string_agg(a.occurred_at::text || '|' || coalesce(a.amount, 0)::text, ';')"
    sql = (
        f"SELECT a.customer_id, c.segment, {history} FROM activities a"
        " JOIN customers c ON c.id = a.customer_id"
        " WHERE a.kind = 'order' GROUP BY a.customer_id, c.segment"
    )
    profiles = []
    with store.engine.connect() as conn:
        for customer_id, segment, history in conn.execute(sa.text(sql)):
            events = []
            for item in history.split(";"):
                when, amount = item.rsplit("|", 1)
                at = datetime.fromisoformat(when).replace(tzinfo=UTC)
                events.append(Event("order", at, float(amount), 0.0))
            summary = Summary().fold(events)
            profiles.append(Profile.from_summary(summary, customer_id, "", segment))
    population = fit_population(store.detection.gap_sample())
    found = []
    for p in profiles:
        assert p.last_order_at is not None
        silent = (NOW - p.last_order_at).total_seconds() / 86400.0
        if not rule.min_days_silent <= silent <= rule.max_days_silent:
            continue
        gap = expected_gap_days(p.typical_gap_days, p.order_count, population.gap_for(p.segment))
        if silent >= rule.factor * gap:
            found.append(p.customer_id)
    seconds = time.perf_counter() - started
    store.close()
    return sorted(found), seconds


def main() -> None:
    from reengage.logs import configure_logging

    configure_logging("warning")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--database-url", help="default: a temporary SQLite file")
    parser.add_argument("--phase", choices=["reengage", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        found, seconds = (reengage_pass if args.phase == "reengage" else baseline_pass)(args.url)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"found": found, "seconds": seconds, "peak_mb": peak}))
        return

    with tempfile.TemporaryDirectory(prefix="reengage-bench-") as tmp:
        folder = Path(tmp)
        url = args.database_url or f"sqlite:///{folder / 'bench.db'}"
        if args.database_url:
            from reengage.store import migrate
            from reengage.store.engine import create_engine

            engine = create_engine(url)
            if migrate.current_revision(engine) is not None:
                migrate.downgrade(engine, "base")
            engine.dispose()
        built = build(url, folder / "data", args.customers)
        print(
            f"{args.customers:,} customers, {built['activities']:,} activities "
            f"(generated in {built['generate_s']:.0f} s)"
        )
        print(
            f"import through `reengage import`: {built['import_s']:.0f} s "
            f"({built['activities'] / built['import_s']:,.0f} activities/s, stats kept)"
        )
        results = {}
        for name in ("baseline", "reengage"):
            out = subprocess.run(
                [sys.executable, __file__, "--phase", name, "--url", url],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            results[name] = json.loads(out.strip().splitlines()[-1])
        backend = url.split(":")[0]
        print(
            f"\ndetection pass (factor {RULE['factor']}, silent {RULE['min_days_silent']:.0f}"
            f"–{RULE['max_days_silent']:.0f} days), backend {backend}"
        )
        print(f"{'':34}{'customers found':>16}{'seconds':>10}{'peak MB':>10}")
        for name, label in (
            ("baseline", "GROUP BY over activities"),
            ("reengage", "reengage indexed pass"),
        ):
            r = results[name]
            print(f"{label:34}{len(r['found']):>16,}{r['seconds']:>10.2f}{r['peak_mb']:>10.0f}")
        same = results["baseline"]["found"] == results["reengage"]["found"]
        speedup = results["baseline"]["seconds"] / results["reengage"]["seconds"]
        print(
            f"\nsame answer: {'yes' if same else 'NO'}; reengage is {speedup:.0f}x faster "
            "(aim: under 2 s and at least 10x)."
        )


if __name__ == "__main__":
    main()
