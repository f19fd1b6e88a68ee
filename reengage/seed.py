"""Synthetic customers with realistic, varied buying rhythms — for the demo, tests and bench.

Deterministic: customer ``i`` depends only on ``(seed, i, now)``, so 300 customers are a
prefix of 3,000. Rows come out as CSV-shaped dicts and go in through ``reengage import``'s
own parser, so seeded data exercises the same path as an operator's files.

The mix follows what real purchase histories look like: many one- or two-time buyers;
weekly, fortnightly, monthly and quarterly habits; and for each a fate — steady, lapsed
(stopped a few rhythms ago), shrinking (orders getting smaller and rarer while still
coming), or long gone.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

FIRST = [
    "Anna",
    "Ben",
    "Carla",
    "David",
    "Elif",
    "Farah",
    "Gustav",
    "Hana",
    "Ivan",
    "Julia",
    "Kofi",
    "Lena",
    "Mateo",
    "Nora",
    "Omar",
    "Priya",
    "Quentin",
    "Renée",
    "Sven",
    "Tamar",
    "Uma",
    "Viktor",
    "Wen",
    "Ximena",
    "Yusuf",
    "Zoë",
    "Li",
    "Mei",
    "Jun",
    "Xiu",
]
LAST = [
    "Alvarez",
    "Becker",
    "Chen",
    "Dubois",
    "Eriksen",
    "Fischer",
    "García",
    "Hoffmann",
    "Ivanova",
    "Jansen",
    "Kowalski",
    "Lindqvist",
    "Müller",
    "Nakamura",
    "O'Connor",
    "Petrov",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Usman",
    "Vogel",
    "Wang",
    "Zhang",
    "Liu",
]
COMPANY_A = [
    "North",
    "Blue",
    "Green",
    "Summit",
    "Harbor",
    "Maple",
    "Iron",
    "Silver",
    "Oak",
    "River",
    "Alpine",
    "Coastal",
]
COMPANY_B = [
    "Bakery",
    "Cafés",
    "Builders",
    "Dental",
    "Florists",
    "Garage",
    "Hotels",
    "Kitchens",
    "Logistics",
    "Print Shop",
    "Studios",
    "Supplies",
]
ROLES = ["Owner", "Managing Director", "Purchasing Manager", "Operations Lead", "Office Manager"]
INTERESTS = [
    "espresso",
    "baking",
    "sustainability",
    "cycling",
    "wine",
    "gardening",
    "new products",
    "bulk pricing",
    "fast delivery",
    "football",
    "design",
    "travel",
]
PRODUCTS = [
    "espresso beans",
    "oat milk",
    "A4 copy paper",
    "printer toner",
    "olive oil",
    "cleaning supplies",
    "packaging tape",
    "herbal tea",
    "notebooks",
    "dog food",
]
ZONES = [
    "Europe/Berlin",
    "Europe/London",
    "America/New_York",
    "America/Chicago",
    "Asia/Shanghai",
    "Europe/Paris",
]
DOMAINS = ["example.com", "example.org", "example.net"]

# (name, typical gap in days, share of customers, segment, lifetime range in days)
RHYTHMS = [
    ("weekly", 7.0, 0.10, "retail", (60, 240)),
    ("fortnightly", 14.0, 0.11, "retail", (120, 420)),
    ("monthly", 30.0, 0.19, "online", (200, 900)),
    ("quarterly", 91.0, 0.15, "wholesale", (500, 1500)),
    ("occasional", 120.0, 0.45, "online", (30, 900)),
]
# Shares for "regulars": mostly habitual buyers (about 20 activities each), for benchmarks.
REGULAR_SHARES = {
    "weekly": 0.22,
    "fortnightly": 0.25,
    "monthly": 0.30,
    "quarterly": 0.18,
    "occasional": 0.05,
}
FATES = [("steady", 0.48), ("lapsed", 0.27), ("shrinking", 0.15), ("gone", 0.10)]


@dataclass(frozen=True)
class Dataset:
    """Where a generated data set was written."""

    reps: Path
    customers: Path
    activities: Path
    customer_count: int
    activity_count: int


def rep_rows(customers: int, reps: int | None = None) -> list[dict[str, str]]:
    """``reps`` reps, or one per hundred customers (at least three)."""
    count = reps if reps is not None else max(3, customers // 100)
    return [
        {
            "rep_id": f"R{n:03d}",
            "name": f"{FIRST[n % len(FIRST)]} {LAST[(n * 7) % len(LAST)]}",
            "email": f"rep{n:03d}@sales.example.com",
            "timezone": ZONES[n % len(ZONES)],
        }
        for n in range(1, count + 1)
    ]


def _pick(rng: random.Random, weighted: list[tuple[str, float]]) -> str:
    return rng.choices([w[0] for w in weighted], weights=[w[1] for w in weighted])[0]


def customer(
    i: int, *, seed: int, now: datetime, reps: int, regulars: bool = False
) -> tuple[dict[str, str], list[dict[str, str]]]:
    """Customer ``i``'s CSV row and their activity rows, oldest first.

    ``regulars`` swaps the realistic mix (many one-time buyers) for mostly habitual ones.
    """
    rng = random.Random(f"{seed}:{i}")
    weights = [REGULAR_SHARES[r[0]] if regulars else r[2] for r in RHYTHMS]
    rhythm = rng.choices(RHYTHMS, weights=weights)[0]
    name, gap, _, segment, (life_lo, life_hi) = rhythm
    fate = _pick(rng, FATES)
    first, last = rng.choice(FIRST), rng.choice(LAST)
    cid = f"C{i:06d}"
    b2b = segment == "wholesale" or rng.random() < 0.15
    zone = rng.choice(ZONES)
    locale = "zh-CN" if zone == "Asia/Shanghai" and rng.random() < 0.7 else "en"
    row = {
        "customer_id": cid,
        "email": f"{_ascii(first)}.{_ascii(last)}.{i}@{rng.choice(DOMAINS)}".lower(),
        "first_name": first,
        "last_name": last,
        "company": f"{rng.choice(COMPANY_A)} {rng.choice(COMPANY_B)}" if b2b else "",
        "phone": f"+1-555-{rng.randrange(100, 999)}-{rng.randrange(1000, 9999)}",
        "segment": "wholesale"
        if b2b and segment != "wholesale" and rng.random() < 0.5
        else segment,
        "locale": locale,
        "timezone": zone,
        "rep_id": f"R{rng.randrange(1, reps + 1):03d}",
        "consent": "no" if rng.random() < 0.03 else "yes",
        "last_product": rng.choice(PRODUCTS),
        "interests": ";".join(rng.sample(INTERESTS, rng.randrange(0, 4))),
        "tags": ";".join(t for t in (name, "b2b" if b2b else "") if t),
        "birthday": f"{rng.randrange(1955, 2002)}-{rng.randrange(1, 13):02d}-"
        f"{rng.randrange(1, 29):02d}"
        if rng.random() < 0.4
        else "",
        "decision_maker": "",
        "decision_maker_role": "",
        "contacts": "",
        "important_dates": "",
    }
    if b2b:
        boss = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        row["decision_maker"], row["decision_maker_role"] = boss, rng.choice(ROLES[:2])
        row["contacts"] = f"{first} {last}|{rng.choice(ROLES[2:])}|{row['phone']}|{row['email']}"
        signed = now.date() - timedelta(days=rng.randrange(200, 2000))
        row["important_dates"] = f"contract anniversary={signed.isoformat()}"
    return row, list(_activities(rng, cid, gap, name, fate, (life_lo, life_hi), now))


def _activities(
    rng: random.Random,
    cid: str,
    gap: float,
    rhythm: str,
    fate: str,
    life: tuple[int, int],
    now: datetime,
) -> Iterator[dict[str, str]]:
    # The habit ends `stop` days before now: soon for the steady, a few rhythms ago for the
    # lapsed, long ago for the gone. Shrinking customers still buy, less and less.
    if fate == "lapsed":
        stop = gap * rng.uniform(2.5, 8.0)
    elif fate == "gone":
        stop = rng.uniform(400, 800)
    else:
        stop = 0.0
    start = stop + rng.uniform(*life)
    base = rng.lognormvariate(4.0 if rhythm in ("weekly", "fortnightly") else 5.0, 0.6)
    margin_rate = rng.uniform(0.15, 0.45)
    if rhythm == "occasional":
        count = rng.choices([1, 2, 3], weights=[0.6, 0.28, 0.12])[0]
        days = sorted(rng.uniform(stop, start) for _ in range(count))[::-1]
    else:
        days, t = [], start
        while t > stop:
            days.append(t)
            step = rng.gammavariate(4.0, gap / 4.0)  # CV 0.5: habits are regular, not clocks
            if rng.random() < 0.04:
                step *= 3  # a holiday, a busy quarter
            t -= step
    total = len(days)
    for n, ago in enumerate(days):
        factor = 1.0
        if fate == "shrinking" and n >= total * 0.6:
            factor = 1.0 - 0.6 * (n - total * 0.6) / max(1.0, total * 0.4)
        amount = round(base * factor * rng.uniform(0.7, 1.3), 2)
        when = now - timedelta(days=ago, seconds=rng.randrange(0, 36000))
        yield {
            "activity_id": f"{cid}-{n + 1:04d}",
            "customer_id": cid,
            "occurred_at": when.isoformat(timespec="seconds"),
            "kind": "order",
            "amount": f"{amount:.2f}",
            "margin": f"{amount * margin_rate:.2f}",
        }
        if rhythm in ("weekly", "fortnightly") and rng.random() < 0.3:
            visit = when - timedelta(hours=rng.randrange(1, 48))
            yield {
                "activity_id": f"{cid}-{n + 1:04d}v",
                "customer_id": cid,
                "occurred_at": visit.isoformat(timespec="seconds"),
                "kind": "visit",
                "amount": "",
                "margin": "",
            }


def _ascii(text: str) -> str:
    table = str.maketrans({"é": "e", "ë": "e", "ü": "u", "í": "i", "'": "", " ": ""})
    return text.translate(table)


CUSTOMER_COLUMNS = [
    "customer_id",
    "email",
    "first_name",
    "last_name",
    "company",
    "phone",
    "segment",
    "locale",
    "timezone",
    "rep_id",
    "consent",
    "last_product",
    "interests",
    "tags",
    "birthday",
    "decision_maker",
    "decision_maker_role",
    "contacts",
    "important_dates",
]
ACTIVITY_COLUMNS = ["activity_id", "customer_id", "occurred_at", "kind", "amount", "margin"]
REP_COLUMNS = ["rep_id", "name", "email", "timezone"]


def write_dataset(
    folder: Path,
    customers: int,
    *,
    seed: int = 1,
    now: datetime,
    regulars: bool = False,
    reps: int | None = None,
) -> Dataset:
    """Write reps.csv, customers.csv and activities.csv into ``folder`` (streamed); ``reps``
    sales reps share the customers (default: one per hundred customers)."""
    folder.mkdir(parents=True, exist_ok=True)
    rep_list = rep_rows(customers, reps)
    paths = [folder / "reps.csv", folder / "customers.csv", folder / "activities.csv"]
    with paths[0].open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, REP_COLUMNS)
        writer.writeheader()
        writer.writerows(rep_list)
    activity_count = 0
    with (
        paths[1].open("w", newline="", encoding="utf-8") as c_handle,
        paths[2].open("w", newline="", encoding="utf-8") as a_handle,
    ):
        c_writer = csv.DictWriter(c_handle, CUSTOMER_COLUMNS)
        a_writer = csv.DictWriter(a_handle, ACTIVITY_COLUMNS)
        c_writer.writeheader()
        a_writer.writeheader()
        for i in range(1, customers + 1):
            row, activities = customer(i, seed=seed, now=now, reps=len(rep_list), regulars=regulars)
            c_writer.writerow(row)
            a_writer.writerows(activities)
            activity_count += len(activities)
    return Dataset(
        paths[0], paths[1], paths[2], customer_count=customers, activity_count=activity_count
    )
