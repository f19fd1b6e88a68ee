"""Import speed and memory: `reengage import activities` against a bare executemany.

    python bench/import.py [--rows 1000000] [--database-url URL]

Generates customers and about --rows activity rows with `reengage.seed`, then measures, each
in a fresh process on a freshly migrated database:

- reengage: `ingest.import_file` — validation, de-duplication, upserts, stats kept current;
- baseline: the same rows parsed with `csv` and written by one bare `executemany` into the
  same `activities` table (no validation, no de-duplication, no stats).

Prints rows/s and peak memory (max RSS) of each, side by side. Aim: 50,000 rows/s on SQLite.
"""

from __future__ import annotations

import argparse
import csv
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


def generate(folder: Path, rows: int) -> tuple[Path, Path, int]:
    from reengage.seed import customer, write_dataset

    sample = [len(customer(i, seed=1, now=NOW, reps=10)[1]) for i in range(1, 2001)]
    per_customer = sum(sample) / len(sample)
    data = write_dataset(folder, max(1, round(rows / per_customer)), seed=1, now=NOW)
    return data.customers, data.activities, data.activity_count


def fresh_database(url: str | None, folder: Path, name: str) -> str:
    """A migrated empty database: a new SQLite file, or the PostgreSQL one emptied."""
    from reengage.store import Store, migrate
    from reengage.store.engine import create_engine

    if url is None:
        url = f"sqlite:///{folder / (name + '.db')}"
    else:
        engine = create_engine(url)
        if migrate.current_revision(engine) is not None:
            migrate.downgrade(engine, "base")
        engine.dispose()
    Store.open(url, upgrade=True).close()
    return url


def phase(kind: str, url: str, customers: Path, activities: Path) -> dict[str, float]:
    """Run in a child process so that max RSS belongs to this measurement alone."""
    from reengage.ingest import Kind, import_file
    from reengage.store import Store

    store = Store.open(url)
    import_file(store, Kind.CUSTOMERS, customers, now=NOW, zone=ZoneInfo("UTC"))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    if kind == "reengage":
        report = import_file(store, Kind.ACTIVITIES, activities, now=NOW, zone=ZoneInfo("UTC"))
        rows = report.counts.inserted
    else:
        rows = bare_executemany(store, activities)
    seconds = time.perf_counter() - start
    store.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "rows": rows,
        "seconds": seconds,
        "peak_mb": peak / 1024,
        "growth_mb": (peak - rss_before) / 1024,
    }


def bare_executemany(store: object, activities: Path) -> int:
    import sqlalchemy as sa

    engine = store.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        ids = dict(conn.execute(sa.text("SELECT external_id, id FROM customers")).all())
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        mark = "?" if engine.dialect.name == "sqlite" else "%s"
        sql = (
            f"INSERT INTO activities (external_id, customer_id, kind, occurred_at, amount, "
            f"margin, created_at) VALUES ({', '.join([mark] * 7)})"
        )
        created = NOW.replace(tzinfo=None)
        count = 0
        with activities.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            batch: list[tuple[object, ...]] = []
            for row in reader:
                when = datetime.fromisoformat(row["occurred_at"]).astimezone(UTC)
                batch.append(
                    (
                        row["activity_id"],
                        ids[row["customer_id"]],
                        row["kind"],
                        when.replace(tzinfo=None),
                        float(row["amount"] or 0),
                        float(row["margin"] or 0),
                        created,
                    )
                )
                if len(batch) == 5000:
                    cursor.executemany(sql, batch)
                    raw.commit()
                    count += len(batch)
                    batch = []
            if batch:
                cursor.executemany(sql, batch)
                raw.commit()
                count += len(batch)
        return count
    finally:
        raw.close()


def main() -> None:
    from reengage.logs import configure_logging

    configure_logging("warning")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url", help="default: a temporary SQLite file")
    parser.add_argument("--phase", choices=["reengage", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("--files", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        url, customers, activities = args.files
        print(json.dumps(phase(args.phase, url, Path(customers), Path(activities))))
        return

    with tempfile.TemporaryDirectory(prefix="reengage-bench-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        customers, activities, count = generate(folder / "data", args.rows)
        print(
            f"generated {count:,} activity rows in {time.perf_counter() - started:.1f} s "
            f"({activities.stat().st_size / 1e6:.0f} MB)"
        )
        results = {}
        for name in ("baseline", "reengage"):
            url = fresh_database(args.database_url, folder, name)
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--phase",
                    name,
                    "--files",
                    url,
                    str(customers),
                    str(activities),
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            results[name] = json.loads(out.strip().splitlines()[-1])
        backend = (args.database_url or "sqlite").split(":")[0]
        print(f"\nbackend: {backend}")
        print(f"{'':24}{'rows':>12}{'seconds':>10}{'rows/s':>12}{'peak MB':>10}{'growth MB':>11}")
        for name, label in (("baseline", "bare executemany"), ("reengage", "reengage import")):
            r = results[name]
            print(
                f"{label:24}{r['rows']:>12,.0f}{r['seconds']:>10.2f}"
                f"{r['rows'] / r['seconds']:>12,.0f}{r['peak_mb']:>10.0f}{r['growth_mb']:>11.0f}"
            )
        ratio = (results["reengage"]["rows"] / results["reengage"]["seconds"]) / (
            results["baseline"]["rows"] / results["baseline"]["seconds"]
        )
        print(
            f"\nreengage import runs at {ratio:.0%} of a bare executemany, with validation, "
            "de-duplication and per-customer stats kept current (aim: >= 50,000 rows/s)."
        )


if __name__ == "__main__":
    main()
