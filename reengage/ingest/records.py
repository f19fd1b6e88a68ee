"""Validating one record, however it arrived (a CSV row or a JSON item): the ``parse_*``
functions and what an import reports."""

from __future__ import annotations

import difflib
import hashlib
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from reengage.addresses import AddressError, normalize
from reengage.errors import RowError
from reengage.locales import normalise_locale
from reengage.models import NO_SEGMENT, ActivityKind, CustomerStatus
from reengage.store import UpsertResult
from reengage.timeutil import parse_date, read_timestamp


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

_EMAIL = re.compile(r"^[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;]+$")
_SPACE = re.compile(r"\s+")
_YES = {"1", "yes", "y", "true", "t", "on"}
_NO = {"0", "no", "n", "false", "f", "off"}
_KINDS = [k.value for k in ActivityKind]
# The largest amount or margin one activity may carry: a trillion in any currency (a big
# order in dong or rupiah fits). Beyond it a value is a mistake, and summed into a customer's
# value per year it would turn scores into infinity and priorities into NaN.
MAX_MONEY = 1e12
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


# -- field parsers: each returns the value or raises RowError(column, problem) ------------


def _text(row: Mapping[str, str], column: str, *, max_len: int = 200) -> str | None:
    raw = row.get(column)
    if raw is None:
        return None
    if raw.isprintable():  # the common case, checked at C speed: nothing to clean
        value = raw.strip()
    else:
        try:
            raw.encode("utf-8")  # fails only on the surrogate-escaped bytes of invalid UTF-8
        except UnicodeEncodeError:
            raise RowError(column, "is not valid UTF-8 text; save the file as CSV UTF-8") from None
        if "\x00" in raw:  # PostgreSQL cannot store it, and it is never meant
            raise RowError(column, "contains a NUL character (\\x00); remove it")
        value = _SPACE.sub(" ", raw).strip()  # a line break or tab in a name is never wanted
        if found := _CONTROL.search(value):
            raise RowError(column, _control_problem(value, found.start()))
    if len(value) > max_len:
        raise RowError(column, f"is {len(value)} characters long; the limit is {max_len}")
    return value or None


# Control characters left once whitespace (tab, line breaks) became spaces: C0, DEL and C1.
# Never meant in a name or a note, and dangerous on a rep's terminal (ESC starts sequences
# that clear the screen or retitle the window), so a row holding one is refused, not cleaned:
# what else a careless export garbled is for a person to look at.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def _control_problem(value: str, at: int) -> str:
    return (
        f"contains a control character ({value[at]!r}, in "
        f"{value[max(0, at - 10) : at + 20]!r}): remove it (it is never text, and some "
        "clear or retitle the terminal that shows it)"
    )


def _required(row: Mapping[str, str], column: str, max_len: int = 200) -> str:
    value = _text(row, column, max_len=max_len)
    if value is None:
        raise RowError(column, "is empty; every row needs one")
    return value


def looks_like_email(text: str) -> bool:
    """Whether ``text`` has the shape of an address (what imports accept as one)."""
    return len(text) <= 320 and "\x00" not in text and bool(_EMAIL.match(text.strip()))


def _email(row: Mapping[str, str], column: str = "email") -> str:
    value = _required(row, column, max_len=320)
    if not _EMAIL.match(value):
        raise RowError(column, f"{value!r} is not an email address like ana@example.com")
    try:
        return normalize(value)
    except AddressError as exc:
        raise RowError(column, str(exc)) from exc


def _money(row: Mapping[str, str], column: str) -> float | None:
    """An amount of money: a finite number within ±``MAX_MONEY``, or None when empty; an
    ``amount`` is never negative (a refund is not a purchase), a ``margin`` may be.

    Only plain ASCII notation is read (``-1234.50``, ``.5``, ``1e3``): ``float`` would also
    take ``1_000``, full-width or Arabic-Indic digits and more, which an export never means.
    A non-zero amount smaller than a cent (``0.001``, ``-1e-320``, ``1e-400`` that underflows
    to 0) is refused, not rounded: ingest stores amounts as given, so rounding only these
    would silently turn a misplaced decimal point or exponent into a free order.
    """
    raw = row.get(column)
    if raw is None or not raw.strip():
        return None
    text = raw.strip(_ASCII_SPACE)
    if not (plain := _PLAIN_NUMBER.fullmatch(text)):
        if text.lower().lstrip("+-") in ("inf", "infinity"):
            raise _out_of_range(column, text)
        shown = _text(row, column, max_len=40)
        fixed = _plain_spelling(raw)
        if fixed is None:
            raise RowError(column, f"{shown!r} is not a number like 1234.50")
        raise RowError(
            column,
            f"{shown!r} is not a plain number: write {fixed} (ASCII digits 0-9, '.' before "
            "the decimals, no digit grouping)",
        )
    value = float(text)
    if not -MAX_MONEY <= value <= MAX_MONEY:  # also 1e400 that became infinity
        raise _out_of_range(column, text)
    if abs(value) == MAX_MONEY and Decimal(text).copy_abs() > MAX_MONEY:  # exact, unrounded
        raise _out_of_range(column, text)  # 1000000000000.000001: beyond, though it reads as 1e12
    if abs(value) < MIN_MONEY and (value or _NON_ZERO.search(plain["mantissa"])):
        raise RowError(
            column,
            f"{text[:40]!r} is not zero but smaller than a cent (0.01): write 0 if there was "
            f"no {column}, or check the decimal point and the exponent",
        )
    if value < 0 and column == "amount":
        raise RowError(
            column,
            f"{text[:40]!r} is negative: an amount is what the customer paid, and reengage "
            "counts no refunds or returns (one would read as the customer buying again); "
            "leave refunds out of the file (a negative margin, a sale at a loss, is fine)",
        )
    return value or 0.0  # -0 is 0


# Plain decimal notation: ASCII digits only (``[0-9]`` is never a Unicode digit).
_PLAIN_NUMBER = re.compile(
    r"(?P<mantissa>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(?:[eE][+-]?[0-9]+)?"
)
_NON_ZERO = re.compile(r"[1-9]")
_ASCII_SPACE = " \t\r\n\f\v"
MIN_MONEY = 0.01  # the smallest non-zero amount or margin: a cent


def _out_of_range(column: str, text: str) -> RowError:
    return RowError(
        column,
        f"{text[:40]!r} is out of range: {column} must be between "
        f"{'0' if column == 'amount' else f'-{MAX_MONEY:,.0f}'} and {MAX_MONEY:,.0f}; check "
        "that the column holds money, "
        "not an id or a phone number",
    )


def _plain_spelling(raw: str) -> str | None:
    """How to write ``raw`` plainly, if it is a number ``float`` reads but this importer does
    not: ``1_000`` (1000), ``１２`` (12), ``٣٤`` (34), ``12`` with a no-break space (12)."""
    text = unicodedata.normalize("NFKC", raw).strip().replace("_", "")
    text = "".join(str(d) if (d := unicodedata.decimal(c, None)) is not None else c for c in text)
    return text if _PLAIN_NUMBER.fullmatch(text) and text != raw.strip(_ASCII_SPACE) else None


def _bool(row: Mapping[str, str], column: str, default: bool) -> bool:
    raw = _text(row, column)
    if raw is None:
        return default
    if raw.lower() in _YES:
        return True
    if raw.lower() in _NO:
        return False
    raise RowError(column, f"{raw!r} is not yes or no")


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _timezone(row: Mapping[str, str], column: str = "timezone") -> str | None:
    raw = _text(row, column, max_len=64)
    if raw is None:
        return None
    try:
        _zone(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise RowError(column, f"{raw!r} is not an IANA time zone like Europe/Berlin") from None
    return raw


def _list(row: Mapping[str, str], column: str) -> list[str]:
    raw = _text(row, column, max_len=5000)
    return [part.strip() for part in raw.split(";") if part.strip()] if raw else []


def _choice(raw: str, allowed: list[str], column: str) -> str:
    if raw in allowed:
        return raw
    value = raw.strip().lower().replace(" ", "_").replace("-", "_")
    if value in allowed:
        return value
    close = difflib.get_close_matches(value, allowed, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise RowError(column, f"{raw!r} is not known; {hint}use one of {', '.join(allowed)}")


def _contacts(row: Mapping[str, str]) -> list[dict[str, str]]:
    contacts = []
    for entry in _list(row, "contacts"):
        parts = [p.strip() for p in entry.split("|")]
        if not parts[0] or len(parts) > 4:
            raise RowError(
                "contacts",
                f"{entry!r} is not 'name|role|phone|email' (entries separated by ';')",
            )
        parts += [""] * (4 - len(parts))
        contact = dict(zip(("name", "role", "phone", "email"), parts, strict=True))
        contacts.append({k: v for k, v in contact.items() if v})
    return contacts


def _important_dates(row: Mapping[str, str]) -> list[dict[str, str]]:
    dates = []
    for entry in _list(row, "important_dates"):
        label, sep, when = entry.rpartition("=")
        if not sep or not label.strip():
            raise RowError(
                "important_dates",
                f"{entry!r} is not 'label=YYYY-MM-DD' (entries separated by ';')",
            )
        try:
            dates.append({"label": label.strip(), "date": parse_date(when).isoformat()})
        except ValueError as exc:
            raise RowError("important_dates", str(exc)) from None
    if (birthday := _text(row, "birthday", max_len=10)) is not None:
        try:
            dates.append({"label": "birthday", "date": parse_date(birthday).isoformat()})
        except ValueError as exc:
            raise RowError("birthday", str(exc)) from None
    return dates


def _locale(row: Mapping[str, str]) -> str:
    try:  # zh_CN, zh-cn and ZH-cn are one locale, stored as zh-CN
        return normalise_locale(_text(row, "locale", max_len=35) or "en")
    except ValueError as exc:
        raise RowError("locale", str(exc)) from None


# -- records -------------------------------------------------------------------------------


def parse_rep(row: Mapping[str, str]) -> dict[str, Any]:
    """Validate one rep record; returns only the columns the source supplied."""
    out: dict[str, Any] = {"external_id": _required(row, "rep_id"), "email": _email(row)}
    name = _text(row, "name") if "name" in row else None
    if name:  # no name column, or an empty cell: the stored name stays (see upsert_reps)
        out["name"] = name
    if "phone" in row:
        out["phone"] = _text(row, "phone", max_len=50)
    if "timezone" in row:
        out["timezone"] = _timezone(row) or "UTC"
    if "locale" in row:
        out["locale"] = _locale(row)
    return out


def parse_customer(row: Mapping[str, str]) -> dict[str, Any]:
    """Validate one customer record; returns only the columns the source supplied."""
    out: dict[str, Any] = {"external_id": _required(row, "customer_id"), "email": _email(row)}
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
            out[column] = _text(row, column, max_len=limit)
    if out.get("segment") == NO_SEGMENT:
        raise RowError(
            "segment",
            f"{NO_SEGMENT!r} is what reports call customers without a segment: leave it empty "
            "for them, or give this segment another name",
        )
    if "last_product" in row:
        out["last_product"] = _text(row, "last_product", max_len=300)
    if "notes" in row:
        out["notes"] = _text(row, "notes", max_len=5000)
    if "rep_id" in row:
        out["rep_external_id"] = _text(row, "rep_id")
    if "locale" in row:
        out["locale"] = _locale(row)
    if "timezone" in row:
        out["timezone"] = _timezone(row)
    if "consent" in row:
        out["consent"] = _bool(row, "consent", default=True)
    if "status" in row:
        raw = _text(row, "status")
        out["status"] = (
            _choice(raw, [s.value for s in CustomerStatus], "status")
            if raw
            else CustomerStatus.ACTIVE.value
        )
    if "contacts" in row:
        out["contacts"] = _contacts(row)
    if "interests" in row:
        out["interests"] = _list(row, "interests")
    if "tags" in row:
        out["tags"] = _list(row, "tags")
    if "important_dates" in row or "birthday" in row:
        out["important_dates"] = _important_dates(row)
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
        customer = _required(row, "customer_id")
        raw_time = _required(row, "occurred_at", max_len=40)
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
    raw_kind = _text(row, "kind", max_len=32)
    kind = _choice(raw_kind, _KINDS, "kind") if raw_kind else ActivityKind.ORDER.value
    amount, margin = _money(row, "amount"), _money(row, "margin")
    key = _text(row, "activity_id") or activity_key(customer, kind, occurred_at, amount, margin)
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
