"""Validating one record, however it arrived (a CSV row or a JSON item): what each kind of
file holds, the ``parse_*`` functions that turn a row into a record (each field read by
``fields``), an activity's stable key, and what an import reports."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from reengage.errors import RowError
from reengage.ingest.fields import (
    read_bool,
    read_choice,
    read_contacts,
    read_email,
    read_important_dates,
    read_list,
    read_locale,
    read_money,
    read_required,
    read_text,
    read_timezone,
)
from reengage.models import NO_SEGMENT, ActivityKind, CustomerStatus
from reengage.store import UpsertResult
from reengage.timeutil import read_timestamp


class Kind(StrEnum):
    """What a file holds."""

    CUSTOMERS = "customers"
    REPS = "reps"
    ACTIVITIES = "activities"


REQUIRED: dict[Kind, tuple[str, ...]] = {
    Kind.CUSTOMERS: ("customer_id", "email"),
    Kind.REPS: ("rep_id", "email"),
    Kind.ACTIVITIES: ("customer_id", "occurred_at"),
}
OPTIONAL: dict[Kind, tuple[str, ...]] = {
    Kind.CUSTOMERS: (
        "first_name",
        "last_name",
        "company",
        "phone",
        "segment",
        "locale",
        "timezone",
        "rep_id",
        "consent",
        "status",
        "decision_maker",
        "decision_maker_role",
        "contacts",
        "interests",
        "important_dates",
        "birthday",
        "tags",
        "notes",
        "last_product",
    ),
    Kind.REPS: ("name", "phone", "timezone", "locale"),
    Kind.ACTIVITIES: ("activity_id", "kind", "amount", "margin"),
}

_KINDS = [k.value for k in ActivityKind]
AUTO_KEY = "auto:"  # how the key of an activity that came without an activity_id begins


@dataclass(frozen=True)
class RowProblem:
    """A rejected row: where it is and what is wrong."""

    file: str
    line: int
    column: str
    problem: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.column}: {self.problem}"


@dataclass
class ImportReport:
    """What an import did, for the summary line and the exit code."""

    kind: Kind
    file: str
    dry_run: bool = False
    rows: int = 0
    counts: UpsertResult = field(default_factory=UpsertResult)
    rejected: list[RowProblem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Of the rejected rows, how many repeat an id seen earlier in the same file or request.
    repeated: int = 0
    # Set when a file's second pass met a broken quote and stopped: what was and was not done.
    stopped: str | None = None
    # Rows imported whose local time fell in a DST change (each named in a warning, up to
    # a limit): read as the warning says, never moved silently.
    dst_rows: int = 0

    @property
    def ok(self) -> bool:
        """Whether every row was imported (or found unchanged): no row skipped, no early stop."""
        return not self.rejected and self.stopped is None


def parse_rep(row: Mapping[str, str]) -> dict[str, Any]:
    """Validate one rep record; returns only the columns the source supplied."""
    out: dict[str, Any] = {"external_id": read_required(row, "rep_id"), "email": read_email(row)}
    name = read_text(row, "name") if "name" in row else None
    if name:  # no name column, or an empty cell: the stored name stays (see upsert_reps)
        out["name"] = name
    if "phone" in row:
        out["phone"] = read_text(row, "phone", max_len=50)
    if "timezone" in row:
        out["timezone"] = read_timezone(row) or "UTC"
    if "locale" in row:
        out["locale"] = read_locale(row)
    return out


def parse_customer(row: Mapping[str, str]) -> dict[str, Any]:
    """Validate one customer record; returns only the columns the source supplied."""
    out: dict[str, Any] = {
        "external_id": read_required(row, "customer_id"),
        "email": read_email(row),
    }
    for column, limit in (
        ("first_name", 200),
        ("last_name", 200),
        ("company", 300),
        ("phone", 50),
        ("segment", 100),
        ("decision_maker", 200),
        ("decision_maker_role", 200),
    ):
        if column in row:
            out[column] = read_text(row, column, max_len=limit)
    if out.get("segment") == NO_SEGMENT:
        raise RowError(
            "segment",
            f"{NO_SEGMENT!r} is what reports call customers without a segment: leave it empty "
            "for them, or give this segment another name",
        )
    if "last_product" in row:
        out["last_product"] = read_text(row, "last_product", max_len=300)
    if "notes" in row:
        out["notes"] = read_text(row, "notes", max_len=5000)
    if "rep_id" in row:
        out["rep_external_id"] = read_text(row, "rep_id")
    if "locale" in row:
        out["locale"] = read_locale(row)
    if "timezone" in row:
        out["timezone"] = read_timezone(row)
    if "consent" in row:
        out["consent"] = read_bool(row, "consent", default=True)
    if "status" in row:
        raw = read_text(row, "status")
        out["status"] = (
            read_choice(raw, [s.value for s in CustomerStatus], "status")
            if raw
            else CustomerStatus.ACTIVE.value
        )
    if "contacts" in row:
        out["contacts"] = read_contacts(row)
    if "interests" in row:
        out["interests"] = read_list(row, "interests")
    if "tags" in row:
        out["tags"] = read_list(row, "tags")
    if "important_dates" in row or "birthday" in row:
        out["important_dates"] = read_important_dates(row)
    return out


class ActivityRecord(NamedTuple):
    """A validated activity whose customer is still named by external id (cheap to build)."""

    activity_id: str
    customer_id: str
    kind: str
    occurred_at: datetime
    amount: float | None
    margin: float | None
    # The local time fell in a DST change: what it was read as (a warning, never silent).
    note: str | None = None


# What an activity's date can be: a placeholder (0001-01-01, 9999-12-31) is not a purchase,
# and one would turn a customer's rhythm into nonsense (a gap of 740,000 days).
FIRST_YEAR, LAST_YEAR = 1900, 2099


def _local_year(moment: datetime, zone: ZoneInfo) -> int:
    try:
        return moment.astimezone(zone).year
    except OverflowError:
        return moment.year


def parse_activity(row: Mapping[str, str], zone: ZoneInfo) -> ActivityRecord:
    """Validate one activity record; naive timestamps are read in ``zone``."""
    customer_raw, time_raw = row.get("customer_id"), row.get("occurred_at")
    if (  # the common, clean row: checked once at C speed instead of field by field
        customer_raw
        and time_raw
        and (customer_raw + time_raw).isprintable()
        and len(customer_raw) <= 200
        and len(time_raw) <= 40
        and (customer := customer_raw.strip())
        and (raw_time := time_raw.strip())
    ):
        pass
    else:
        customer = read_required(row, "customer_id")
        raw_time = read_required(row, "occurred_at", max_len=40)
    try:
        occurred_at, note = read_timestamp(raw_time, zone)
    except ValueError as exc:
        raise RowError("occurred_at", str(exc)) from None
    except OverflowError:  # 9999-12-31T23:00-05:00 is past the last datetime once in UTC
        raise RowError("occurred_at", f"{raw_time!r} is out of range") from None
    if not FIRST_YEAR <= occurred_at.year <= LAST_YEAR and not (
        FIRST_YEAR <= _local_year(occurred_at, zone) <= LAST_YEAR
    ):  # 0001-01-01, 9999-12-31
        raise RowError(
            "occurred_at",
            f"{raw_time!r} is out of range: activity must be dated between {FIRST_YEAR} and "
            f"{LAST_YEAR}; check the column's format and that it holds this activity's date",
        )
    raw_kind = read_text(row, "kind", max_len=32)
    kind = read_choice(raw_kind, _KINDS, "kind") if raw_kind else ActivityKind.ORDER.value
    amount, margin = read_money(row, "amount"), read_money(row, "margin")
    key = read_text(row, "activity_id") or activity_key(customer, kind, occurred_at, amount, margin)
    return ActivityRecord(key, customer, kind, occurred_at, amount, margin, note)


def activity_key(
    customer: str, kind: str, occurred_at: datetime, amount: float | None, margin: float | None
) -> str:
    """A stable id for an activity that came without one: a hash of what it says.

    Re-importing the same row gives the same key, so it is not counted twice. Two truly
    distinct activities with identical content need an ``activity_id`` to be told apart.
    """
    content = f"{customer}\x1f{kind}\x1f{occurred_at.isoformat()}\x1f{amount!r}\x1f{margin!r}"
    return AUTO_KEY + hashlib.blake2b(content.encode(), digest_size=16).hexdigest()
