"""Detection speed: the daemon's own pass, whole (every customer scored: the baseline) and
as it runs between changes (only who is due), on the shipped campaigns.

    python bench/detect.py [--customers 300000] [--database-url URL]

Generates mostly habitual customers (about 20 activities each) with `reengage.seed`,
imports them through `reengage import` (timed), then runs `jobs.detect_and_enroll` with
the campaigns in ./campaigns, each pass in a fresh process (wall seconds, peak RSS):

- whole: the first pass, which scores every customer (what every pass cost before the
  looks, and what a new model or changed audience costs once);
- steady: the next pass, ten minutes later, nobody's record changed;
- 1% ordered: after one customer in a hundred placed an order.

On SQLite it also copies the database before the last pass, runs a whole pass on the copy
and checks both enrolled the same customers.
Aims (issue 19): a steady pass ≤ 2 s and a 1% pass ≤ 5 s at 1,000,000 customers on
PostgreSQL (300,000 on SQLite), peak RSS ≤ 400 MB.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

NOW = datetime(2026, 11, 1, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[1]


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


def detection_pass(url: str, now: datetime, whole: bool) -> dict[str, object]:
    from reengage.campaigns import load_campaigns
    from reengage.jobs import detect_and_enroll
    from reengage.store import Store

    campaigns = list(load_campaigns([ROOT / "campaigns"]).campaigns.values())
    store = Store.open(url)
    started = time.perf_counter()
    report = detect_and_enroll(store, campaigns, now, whole=whole)
    seconds = time.perf_counter() - started
    store.close()
    return {
        "seconds": seconds,
        "entered": sum(report.entered.values()) + sum(report.held_out.values()),
        "looked_at": report.looked_at,
        "whole": report.whole,
    }


def enrolled(url: str) -> list[tuple[int, str]]:
    import sqlalchemy as sa

    from reengage.store import Store
    from reengage.store.tables import ENROLLMENTS

    store = Store.open(url)
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(ENROLLMENTS.c.customer_id, ENROLLMENTS.c.campaign_id))
        found = sorted((r[0], r[1]) for r in rows)
    store.close()
    return found


def order_one_in_a_hundred(url: str, now: datetime) -> int:
    from reengage.store import Store
    from reengage.store.activities import NewActivity

    store = Store.open(url)
    ids = store.detection.all_ids(after=0, limit=10**9)[::100]
    rows = [NewActivity(f"bench-{c}", c, "order", now, 40.0, 10.0) for c in ids]
    for start in range(0, len(rows), 20_000):
        store.customers.add_activities(rows[start : start + 20_000], now)
    store.close()
    return len(rows)


def peak_mb() -> float:
    """This process's peak resident memory since it exec'd (``VmHWM``; ``ru_maxrss`` would
    carry over the forking parent's, which holds the generated data)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_phase(url: str, now: datetime, whole: bool) -> dict[str, object]:
    args = [sys.executable, __file__, "--phase", "pass", "--url", url, "--now", now.isoformat()]
    out = subprocess.run(
        [*args, *(["--whole"] if whole else [])], check=True, capture_output=True, text=True
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def main() -> None:
    from reengage.logs import configure_logging

    configure_logging("warning")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=300_000)
    parser.add_argument("--database-url", help="default: a temporary SQLite file")
    parser.add_argument("--phase", choices=["pass"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--now", help=argparse.SUPPRESS)
    parser.add_argument("--whole", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        result = detection_pass(args.url, datetime.fromisoformat(args.now), args.whole)
        result["peak_mb"] = peak_mb()
        print(json.dumps(result))
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
            f"(generated in {built['generate_s']:.0f} s); import {built['import_s']:.0f} s"
        )
        rows = [("whole pass (scores everyone)", run_phase(url, NOW, whole=False))]
        later = NOW + timedelta(minutes=10)
        rows.append(("steady pass (nothing changed)", run_phase(url, later, whole=False)))
        later += timedelta(minutes=10)
        ordered = order_one_in_a_hundred(url, later)
        copy = None
        if url.startswith("sqlite:///"):
            copy = folder / "whole.db"
            shutil.copy(url.removeprefix("sqlite:///"), copy)
        later += timedelta(minutes=10)
        rows.append((f"after {ordered:,} customers ordered", run_phase(url, later, whole=False)))
        print(f"\ndetection passes, backend {url.split(':')[0]}, the shipped campaigns")
        print(f"{'':34}{'looked at':>12}{'enrolled':>10}{'seconds':>10}{'peak MB':>10}")
        for label, r in rows:
            print(
                f"{label:34}{r['looked_at']:>12,}{r['entered']:>10,}"
                f"{r['seconds']:>10.2f}{r['peak_mb']:>10.0f}"
            )
        if copy is not None:
            baseline = run_phase(f"sqlite:///{copy}", later, whole=True)
            same = enrolled(url) == enrolled(f"sqlite:///{copy}")
            print(
                f"{'the same pass scoring everyone':34}{baseline['looked_at']:>12,}"
                f"{baseline['entered']:>10,}{baseline['seconds']:>10.2f}"
                f"{baseline['peak_mb']:>10.0f}"
            )
            print(f"\nsame enrollments as scoring everyone: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
