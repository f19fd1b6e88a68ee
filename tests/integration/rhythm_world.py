"""Generated purchase histories of a business with a known rhythm, as CSV files to import.

A *fast* business (a grocer: regulars order every week or so) and a *slow* one (a furniture
maker: every few months) differ only in the typical gap; in both, each customer's own gap is
spread around it, gaps are gamma-distributed (shape 2), and about half the habits end at
some moment of the history, so there is something to predict.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from reengage.ingest import Kind, import_file
from reengage.store import Store


@dataclass(frozen=True)
class Business:
    """A kind of business: its customers' typical gap and how long its history is."""

    name: str
    gap_days: float
    history_days: float


FAST = Business("grocer", 11.0, 400.0)  # regulars' median gap ~9 days: horizon 28 days
SLOW = Business("furniture", 120.0, 2400.0)  # median gap ~100 days: horizon ~300 days


def write_history(
    folder: Path, business: Business, *, customers: int, now: datetime, seed: int = 1
) -> tuple[Path, Path]:
    """``customers.csv`` and ``activities.csv`` for ``business``, ending before ``now``."""
    rng = random.Random(f"{business.name}-{seed}")
    folder.mkdir(parents=True, exist_ok=True)
    people, orders = folder / "customers.csv", folder / "activities.csv"
    with (
        people.open("w", newline="", encoding="utf-8") as p_handle,
        orders.open("w", newline="", encoding="utf-8") as o_handle,
    ):
        p_writer = csv.writer(p_handle)
        o_writer = csv.writer(o_handle)
        p_writer.writerow(["customer_id", "email"])
        o_writer.writerow(["activity_id", "customer_id", "occurred_at", "kind", "amount"])
        for i in range(1, customers + 1):
            cid = f"{business.name[0].upper()}{i:05d}"
            p_writer.writerow([cid, f"{cid.lower()}@example.com"])
            gap = business.gap_days * rng.lognormvariate(0.0, 0.35)
            at = now - timedelta(days=business.history_days * rng.uniform(0.2, 1.0))
            ends = (
                at + timedelta(days=rng.uniform(0, business.history_days))
                if rng.random() < 0.5
                else now
            )
            n = 0
            while at < min(ends, now):
                n += 1
                amount = round(rng.lognormvariate(4.0, 0.5), 2)
                o_writer.writerow([f"{cid}-{n}", cid, at.isoformat(), "order", f"{amount:.2f}"])
                at += timedelta(days=rng.gammavariate(2.0, gap / 2.0))
    return people, orders


def import_history(
    store: Store,
    folder: Path,
    business: Business,
    *,
    customers: int,
    now: datetime,
    seed: int = 1,
) -> None:
    """Write ``business``'s history and import it through the real import."""
    people, orders = write_history(folder, business, customers=customers, now=now, seed=seed)
    for kind, path in ((Kind.CUSTOMERS, people), (Kind.ACTIVITIES, orders)):
        report = import_file(store, kind, path, now=now, zone=ZoneInfo("UTC"))
        assert report.ok, report.rejected[:3]
