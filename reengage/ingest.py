"""Import customers, reps and activities: CSV files now, the HTTP ingest API later.

Both paths validate records with the same ``parse_*`` functions and write through the same
``Store`` upserts, so a record means the same thing however it arrives. Files are streamed
in batches (constant memory); a bad row is reported as ``FILE:LINE: column: problem`` and
skipped, and every good row is still imported. Re-importing a file changes nothing.
"""

from __future__ import annotations

import csv
import difflib
import gc
import hashlib
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog

from reengage.errors import InputError, RowError
from reengage.logs import get_logger
from reengage.models import ActivityKind, CustomerStatus
from reengage.store import NewActivity, Store, UpsertResult
from reengage.timeutil import parse_date, parse_timestamp

log = get_logger(__name__)


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
    Kind.REPS: ("name", "phone", "timezone"),
    Kind.ACTIVITIES: ("activity_id", "kind", "amount", "margin"),
}

_EMAIL = re.compile(r"^[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;]+$")
_LOCALE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_SPACE = re.compile(r"\s+")
_YES = {"1", "yes", "y", "true", "t", "on"}
_NO = {"0", "no", "n", "false", "f", "off"}
_KINDS = [k.value for k in ActivityKind]


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

    @property
    def ok(self) -> bool:
        return not self.rejected


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
        value = _SPACE.sub(" ", raw).strip()  # a line break in a name is never wanted
    if len(value) > max_len:
        raise RowError(column, f"is {len(value)} characters long; the limit is {max_len}")
    return value or None


def _required(row: Mapping[str, str], column: str, max_len: int = 200) -> str:
    value = _text(row, column, max_len=max_len)
    if value is None:
        raise RowError(column, "is empty; every row needs one")
    return value


def _email(row: Mapping[str, str], column: str = "email") -> str:
    value = _required(row, column, max_len=320)
    if not _EMAIL.match(value):
        raise RowError(column, f"{value!r} is not an email address like ana@example.com")
    return value.lower()


def _number(row: Mapping[str, str], column: str) -> float | None:
    raw = row.get(column)
    if raw is None or not raw.strip():
        return None
    try:
        value = float(raw)  # also takes surrounding spaces and 1_000
    except ValueError:
        shown = _text(row, column, max_len=40)
        raise RowError(column, f"{shown!r} is not a number like 1234.50") from None
    if not math.isfinite(value):
        raise RowError(column, f"{raw.strip()!r} is not a finite number")
    return value


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


# -- records -------------------------------------------------------------------------------


def parse_rep(row: Mapping[str, str]) -> dict[str, Any]:
    """Validate one rep record; returns only the columns the source supplied."""
    out: dict[str, Any] = {"external_id": _required(row, "rep_id"), "email": _email(row)}
    name = _text(row, "name")
    out["name"] = name or out["email"].split("@")[0]
    if "phone" in row:
        out["phone"] = _text(row, "phone", max_len=50)
    if "timezone" in row:
        out["timezone"] = _timezone(row) or "UTC"
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
    if "last_product" in row:
        out["last_product"] = _text(row, "last_product", max_len=300)
    if "notes" in row:
        out["notes"] = _text(row, "notes", max_len=5000)
    if "rep_id" in row:
        out["rep_external_id"] = _text(row, "rep_id")
    if "locale" in row:
        locale = (_text(row, "locale", max_len=35) or "en").replace("_", "-")
        if not _LOCALE.match(locale):
            raise RowError("locale", f"{locale!r} is not a locale like en or zh-CN")
        out["locale"] = locale
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
        occurred_at = parse_timestamp(raw_time, zone)
    except ValueError as exc:
        raise RowError("occurred_at", str(exc)) from None
    raw_kind = _text(row, "kind", max_len=32)
    kind = _choice(raw_kind, _KINDS, "kind") if raw_kind else ActivityKind.ORDER.value
    amount, margin = _number(row, "amount"), _number(row, "margin")
    key = _text(row, "activity_id") or activity_key(customer, kind, occurred_at, amount, margin)
    return ActivityRecord(key, customer, kind, occurred_at, amount, margin)


def activity_key(
    customer: str, kind: str, occurred_at: datetime, amount: float | None, margin: float | None
) -> str:
    """A stable id for an activity that came without one: a hash of what it says.

    Re-importing the same row gives the same key, so it is not counted twice. Two truly
    distinct activities with identical content need an ``activity_id`` to be told apart.
    """
    content = f"{customer}\x1f{kind}\x1f{occurred_at.isoformat()}\x1f{amount!r}\x1f{margin!r}"
    return "auto:" + hashlib.blake2b(content.encode(), digest_size=16).hexdigest()


# -- files ---------------------------------------------------------------------------------

Progress = Callable[[int], None]


def import_file(
    store: Store,
    kind: Kind,
    path: Path,
    *,
    now: datetime,
    zone: ZoneInfo,
    batch_size: int = 5000,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Import one CSV file of ``kind``; see the module docstring for the guarantees.

    Raises InputError (and changes nothing) when the file as a whole is unusable.
    """
    reader = _CsvReader(path, kind, progress)
    report = ImportReport(kind=kind, file=str(path), dry_run=dry_run)
    # A big import allocates millions of short-lived objects; freezing what already exists
    # (modules, the engine) spares every full collection from re-scanning it: ~10% faster.
    gc.collect()
    gc.freeze()
    report.warnings.extend(reader.warnings)
    with structlog.contextvars.bound_contextvars(import_kind=kind.value, import_file=str(path)):
        log.info("import_started", dry_run=dry_run)
        if dry_run:
            with store.rolled_back():
                _import_rows(store, kind, reader, report, now, zone, batch_size)
        else:
            _import_rows(store, kind, reader, report, now, zone, batch_size)
        c = report.counts
        log.info(
            "import_finished",
            rows=report.rows,
            inserted=c.inserted,
            updated=c.updated,
            unchanged=c.unchanged,
            rejected=len(report.rejected),
            dry_run=dry_run,
        )
    return report


def _import_rows(
    store: Store,
    kind: Kind,
    reader: _CsvReader,
    report: ImportReport,
    now: datetime,
    zone: ZoneInfo,
    batch_size: int,
) -> None:
    unknown_reps: set[str] = set()
    for batch in reader.batches(batch_size, report.rejected):
        report.rows += len(batch)
        if kind is Kind.ACTIVITIES:
            _import_activities(store, batch, report, now, zone)
            continue
        parse = parse_customer if kind is Kind.CUSTOMERS else parse_rep
        good = []
        for line, row in batch:
            try:
                good.append(parse(row))
            except RowError as exc:
                report.rejected.append(RowProblem(report.file, line, exc.field, exc.problem))
        if kind is Kind.CUSTOMERS:
            reps = {r["rep_external_id"] for r in good if r.get("rep_external_id")}
            unknown_reps |= reps - store.known_rep_ids(reps)
            report.counts.add(store.upsert_customers(good, now))
        else:
            report.counts.add(store.upsert_reps(good, now))
    if unknown_reps:
        sample = ", ".join(sorted(unknown_reps)[:5])
        report.warnings.append(
            f"{len(unknown_reps)} rep id(s) not imported yet ({sample}): "
            "their customers are kept and will be linked once `reengage import reps` runs"
        )


def _import_activities(
    store: Store,
    batch: list[tuple[int, dict[str, str]]],
    report: ImportReport,
    now: datetime,
    zone: ZoneInfo,
) -> None:
    parsed: list[tuple[int, ActivityRecord]] = []
    for line, row in batch:
        try:
            parsed.append((line, parse_activity(row, zone)))
        except RowError as exc:
            report.rejected.append(RowProblem(report.file, line, exc.field, exc.problem))
    ids = store.customer_ids(record.customer_id for _, record in parsed)
    ready = []
    for line, record in parsed:
        customer_id = ids.get(record.customer_id)
        if customer_id is None:
            report.rejected.append(
                RowProblem(
                    report.file,
                    line,
                    "customer_id",
                    f"no customer {record.customer_id!r}; import customers first",
                )
            )
            continue
        ready.append(
            NewActivity(
                record.activity_id,
                customer_id,
                record.kind,
                record.occurred_at,
                record.amount,
                record.margin,
            )
        )
    report.counts.add(store.add_activities(ready, now))


class _CsvReader:
    """Streams a CSV file as ``(line, row)`` batches after checking its header."""

    def __init__(self, path: Path, kind: Kind, progress: Progress | None) -> None:
        self.path, self.kind, self.progress = path, kind, progress
        self.warnings: list[str] = []
        try:
            with path.open("rb") as handle:
                head = handle.read(65536)
        except OSError as exc:
            raise InputError(f"{path}: cannot read: {exc.strerror}") from exc
        if not head.strip():
            raise InputError(f"{path}: the file is empty; expected a header line and rows")
        if b"\x00" in head:
            raise InputError(f"{path}: this is not a CSV text file (it contains binary data)")
        first = head.splitlines()[0]
        try:
            header_line = first.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InputError(
                f"{path}: the header is not UTF-8 text; save the file as CSV UTF-8"
            ) from None
        self.delimiter = max(",;\t", key=header_line.count)
        self.header = [
            h.strip().lower() for h in next(csv.reader([header_line], delimiter=self.delimiter))
        ]
        missing = [c for c in REQUIRED[kind] if c not in self.header]
        if missing:
            raise InputError(
                f"{path}:1: the header lacks {', '.join(missing)}; a {kind.value} file needs "
                f"at least the columns {','.join(REQUIRED[kind])} (found: "
                f"{','.join(self.header) or 'nothing'})"
            )
        known = set(REQUIRED[kind]) | set(OPTIONAL[kind])
        for column in self.header:
            if column and column not in known:
                close = difflib.get_close_matches(column, sorted(known), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self.warnings.append(f"{path}:1: column {column!r} is not used{hint}")
        duplicated = {c for c in self.header if self.header.count(c) > 1}
        if duplicated:
            raise InputError(
                f"{path}:1: column(s) {', '.join(sorted(duplicated))} appear "
                "twice in the header; keep one of each"
            )

    def _lines(self) -> Iterator[str]:
        with self.path.open("rb") as handle:
            done = 0
            for number, raw in enumerate(handle):
                done += len(raw)
                if self.progress is not None and number % 2000 == 0:
                    self.progress(done)
                # surrogateescape keeps a bad byte as a marker that the field parser reports
                text = raw.decode("utf-8", errors="surrogateescape")
                yield text.removeprefix("\ufeff") if number == 0 else text
            if self.progress is not None:
                self.progress(done)

    def batches(
        self, size: int, rejected: list[RowProblem]
    ) -> Iterator[list[tuple[int, dict[str, str]]]]:
        """Rows in batches of ``size``; rows with too many fields go to ``rejected``."""
        reader = csv.reader(self._lines(), delimiter=self.delimiter)
        next(reader)  # header, already checked
        width = len(self.header)
        batch: list[tuple[int, dict[str, str]]] = []
        line = reader.line_num + 1
        for fields in reader:
            start, line = line, reader.line_num + 1
            if not "".join(fields).strip():
                continue  # blank lines are not rows
            if len(fields) > width:
                rejected.append(
                    RowProblem(
                        str(self.path),
                        start,
                        self.header[-1],
                        f"the row has {len(fields)} fields but the header has {width}; "
                        "quote values that contain the delimiter",
                    )
                )
                continue
            if len(fields) < width:  # spreadsheets drop trailing empty cells
                fields += [""] * (width - len(fields))
            batch.append((start, dict(zip(self.header, fields, strict=True))))
            if len(batch) >= size:
                yield batch
                batch = []
        if batch:
            yield batch
