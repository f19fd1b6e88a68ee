"""Import customers, reps and activities: CSV files and the HTTP ingest API.

Both paths validate records with the same ``parse_*`` functions (``records``, each field read
by ``fields``) and write through the same batch importer and ``Store`` upserts, so a record
means the same thing however it arrives. Importing the same records again changes nothing.

What happens to each kind of problem in a file:

- **The file as a whole** is unusable (unreadable, empty, binary or UTF-16, no usable
  header): one InputError, nothing written.
- **A broken quote** (one never closed, even on a line already past the csv field limit, or
  a quoted value running over lines that then does not fit): everything after it would be
  misread, so nothing is written. A first pass runs only the C ``csv`` parser over the
  whole file before any batch is written (a few percent of the import's time) and raises
  InputError naming the line (``csvfile``). Should the second pass meet one anyway (the
  file changed in between), it stops at that row and the report's ``stopped`` says that
  the rows before it were handled and none after it.
- **A bad row** (a value that does not validate, an amount that is not plain ASCII notation,
  beyond ``MAX_MONEY`` or non-zero below ``MIN_MONEY``, a negative amount (a refund), a
  NUL or another control character (tabs and line breaks inside a value become spaces),
  too many or too few fields, text after a closing quote, a value longer than the csv
  limit whose quotes close on its line) is reported as ``FILE:LINE: column: problem`` and
  skipped; every other row is still imported.
- **A repeated id** (the same customer_id, rep_id or activity_id, or the same content for
  an activity without one, twice in one file or request): an operator's export holds one
  row per id, so a repeat is suspicious. The first good row is imported and each later one
  is reported (``'C1' already appears on line 12 of this file``) and skipped. Keeping the
  first works while streaming (it was written batches ago) and does not depend on where
  batch boundaries fall; the ids kept so far are remembered in ``seen.FirstLines``.

Every non-blank row read ends as exactly one of imported, updated, unchanged or skipped,
so ``rows`` always equals their sum; the repeated ids are counted among the skipped rows
(and again in ``repeated``).
"""

from __future__ import annotations

import difflib
import gc
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from reengage import i18n
from reengage.errors import RowError
from reengage.ingest.csvfile import Batch, CsvReader, Progress
from reengage.ingest.records import (
    AUTO_KEY,
    OPTIONAL,
    REQUIRED,
    ActivityRecord,
    ImportReport,
    Kind,
    RowProblem,
    activity_key,
    parse_activity,
    parse_customer,
    parse_rep,
)
from reengage.ingest.seen import FirstLines
from reengage.logs import get_logger
from reengage.store import NewActivity, Store

__all__ = [
    "MAX_DST_WARNINGS",
    "ImportReport",
    "Kind",
    "RowProblem",
    "activity_key",
    "import_file",
    "import_items",
    "parse_activity",
    "parse_customer",
    "parse_rep",
]

log = get_logger(__name__)


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
    reader = CsvReader(path, kind, progress)
    report = ImportReport(kind=kind, file=str(path), dry_run=dry_run)
    report.warnings.extend(reader.warnings)
    with structlog.contextvars.bound_contextvars(import_kind=kind.value, import_file=str(path)):
        log.info("import_started", dry_run=dry_run)
        reader.check_structure()
        # A big import allocates millions of short-lived objects; freezing what already
        # exists (modules, the engine) spares every full collection from re-scanning it.
        gc.collect()
        gc.freeze()
        batches = reader.batches(batch_size, report.rejected)
        # Rows are rarely shorter than 64 bytes: sized so, the table seldom has to grow.
        seen = FirstLines(expected=min(path.stat().st_size // 64, 1 << 21))
        where = "on line {} of this file"
        if dry_run:
            with store.rolled_back():
                _import_rows(store, kind, batches, report, now, zone, seen, where)
        else:
            _import_rows(store, kind, batches, report, now, zone, seen, where)
        report.rows, report.stopped = reader.rows, reader.stopped
        c = report.counts
        log.info(
            "import_finished",
            rows=report.rows,
            inserted=c.inserted,
            updated=c.updated,
            unchanged=c.unchanged,
            rejected=len(report.rejected),
            repeated=report.repeated,
            stopped=report.stopped is not None,
            dry_run=dry_run,
        )
    return report


def _import_rows(
    store: Store,
    kind: Kind,
    batches: Iterable[Batch],
    report: ImportReport,
    now: datetime,
    zone: ZoneInfo,
    seen: FirstLines,
    where: str,
) -> None:
    """Validate, drop repeated ids and upsert each batch; ``where`` says where a line is."""
    unknown_reps: set[str] = set()
    untranslated: set[str] = set()
    for batch in batches:
        if kind is Kind.ACTIVITIES:
            _import_activities(store, batch, report, now, zone, seen, where)
            continue
        parse, id_column = (
            (parse_customer, "customer_id") if kind is Kind.CUSTOMERS else (parse_rep, "rep_id")
        )
        good = []
        for line, row in batch:
            try:
                record = parse(row)
            except RowError as exc:
                report.rejected.append(RowProblem(report.file, line, exc.field, exc.problem))
                continue
            first = seen.first(record["external_id"], line)
            if first is not None:
                _repeated(report, line, id_column, f"{record['external_id']!r}", first, where)
                continue
            good.append(record)
        if kind is Kind.CUSTOMERS:
            reps = {r["rep_external_id"] for r in good if r.get("rep_external_id")}
            unknown_reps |= reps - store.customers.known_rep_ids(reps)
            report.counts.add(store.customers.upsert_customers(good, now))
        else:
            # A language reengage has no words in: English words, the locale's formats.
            untranslated |= {
                r["locale"]
                for r in good
                if "locale" in r
                and i18n.closest(r["locale"]).split("-")[0] != r["locale"].split("-")[0]
            }
            report.counts.add(store.customers.upsert_reps(good, now))
    if report.dst_rows > MAX_DST_WARNINGS:
        report.warnings.append(
            f"… and {report.dst_rows - MAX_DST_WARNINGS} more rows whose local time falls in "
            f"a DST change in {zone.key}, read the same way: give times with their UTC "
            "offset (like 2026-10-25T02:30+01:00) to say exactly when"
        )
    if untranslated:
        sample = ", ".join(sorted(untranslated)[:5])
        report.warnings.append(
            f"no digest or call form in {sample} yet: those reps get English words with "
            f"their locale's dates and money (shipped: {', '.join(i18n.shipped())}; "
            "docs/languages.md says how to add one)"
        )
    if unknown_reps:
        sample = ", ".join(sorted(unknown_reps)[:5])
        report.warnings.append(
            f"{len(unknown_reps)} rep id(s) not imported yet ({sample}): "
            "their customers are kept and will be linked once `reengage import reps` runs"
        )


def _repeated(
    report: ImportReport, line: int, column: str, what: str, first: int, where: str
) -> None:
    report.repeated += 1
    report.rejected.append(
        RowProblem(
            report.file,
            line,
            column,
            f"{what} already appears {where.format(first)}; only the first is imported "
            "(merge the two, or give this one an id of its own)",
        )
    )


# Rows named one by one in a warning when their local time falls in a DST change; more
# are counted in one line (a shop open through the night has dozens each change).
MAX_DST_WARNINGS = 20
# How far past "now" an activity may be dated: clocks and time zones disagree by hours, not
# days. A later one (a planned delivery, a typo) would hide a lapse: the customer would look
# as if they had just ordered until that date came.
FUTURE_SLACK = timedelta(days=1)


def _import_activities(
    store: Store,
    batch: Batch,
    report: ImportReport,
    now: datetime,
    zone: ZoneInfo,
    seen: FirstLines,
    where: str,
) -> None:
    parsed: list[tuple[int, ActivityRecord]] = []
    for line, row in batch:
        try:
            parsed.append((line, parse_activity(row, zone)))
        except RowError as exc:
            report.rejected.append(RowProblem(report.file, line, exc.field, exc.problem))
    ids = store.customers.customer_ids(record.customer_id for _, record in parsed)
    ready = []
    latest = now + FUTURE_SLACK
    for line, record in parsed:
        if record.occurred_at > latest:
            report.rejected.append(
                RowProblem(
                    report.file,
                    line,
                    "occurred_at",
                    f"{record.occurred_at:%Y-%m-%d %H:%M} UTC is in the future (now is "
                    f"{now:%Y-%m-%d %H:%M} UTC): an activity is recorded once it happened; "
                    "check the date and its time zone, and import it when it has",
                )
            )
            continue
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
        first = seen.first(record.activity_id, line)
        if first is None and record.note is not None:
            report.dst_rows += 1
            if report.dst_rows <= MAX_DST_WARNINGS:
                report.warnings.append(f"{report.file}:{line}: occurred_at: {record.note}")
        if first is not None:
            what = repr(record.activity_id)
            if record.activity_id.startswith(AUTO_KEY):
                what = f"the same activity without an activity_id ({_described(record)})"
            _repeated(report, line, "activity_id", what, first, where)
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
    report.counts.add(store.customers.add_activities(ready, now))


def _described(record: ActivityRecord) -> str:
    parts = [
        f"customer {record.customer_id!r}",
        f"{record.kind} at {record.occurred_at:%Y-%m-%d %H:%M:%S} UTC",
    ]
    parts += [
        f"{k} {v:g}"
        for k, v in (("amount", record.amount), ("margin", record.margin))
        if v is not None
    ]
    return ", ".join(parts)


# -- JSON items (the HTTP ingest API) --------------------------------------------------------

MAX_ITEMS = 10_000
LIST_FIELDS = {"interests", "tags"}
TYPED_FIELDS = {"consent": bool, "amount": float, "margin": float}


def import_items(
    store: Store,
    kind: Kind,
    items: list[Any],
    *,
    now: datetime,
    zone: ZoneInfo,
    batch_size: int = 5000,
) -> ImportReport:
    """Import a batch of JSON records the way a CSV file's rows are imported.

    A bad item is reported with its index (``RowProblem.line``) and field; the others are
    stored. Items are idempotent on their external ids, like re-imported rows.
    """
    report = ImportReport(kind=kind, file="items")
    rows: Batch = []
    for index, item in enumerate(items):
        try:
            rows.append((index, flatten_item(kind, item)))
        except RowError as exc:
            report.rejected.append(RowProblem("items", index, exc.field, exc.problem))
    batches = (rows[i : i + batch_size] for i in range(0, len(rows), batch_size))
    seen = FirstLines(expected=len(items))
    _import_rows(store, kind, batches, report, now, zone, seen, "at index {} of this request")
    report.rows = len(items)
    log.info(
        "items_imported",
        kind=kind.value,
        items=len(items),
        inserted=report.counts.inserted,
        updated=report.counts.updated,
        rejected=len(report.rejected),
        repeated=report.repeated,
    )
    return report


def flatten_item(kind: Kind, item: Any) -> dict[str, str]:
    """A JSON item as the text record the parsers read (lists joined as a CSV holds them)."""
    if not isinstance(item, dict):
        raise RowError("item", f"expected a JSON object, got {type(item).__name__}")
    known = (*REQUIRED[kind], *OPTIONAL[kind])
    row: dict[str, str] = {}
    for key, value in item.items():
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise RowError(str(key)[:100], f"unknown field; {hint}fields: {', '.join(known)}")
        row[key] = _as_text(key, value)
    return row


def _as_text(key: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool | int | float) and key not in TYPED_FIELDS:
        # The schema says string: an id sent as 1.0 must not become a customer "1.0".
        raise RowError(key, f"expected a string in quotes, got {value!r}")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        if key in LIST_FIELDS and all(isinstance(v, str) and ";" not in v for v in value):
            return ";".join(value)
        if key == "contacts" and all(isinstance(v, dict) for v in value):
            return ";".join(_contact(v) for v in value)
        if key == "important_dates" and all(isinstance(v, dict) for v in value):
            return ";".join(f"{_plain(v.get('label'))}={_plain(v.get('date'))}" for v in value)
    raise RowError(key, f"unexpected {type(value).__name__}; see /api/v1/openapi.json")


def _contact(value: dict[str, Any]) -> str:
    return "|".join(_plain(value.get(k)) for k in ("name", "role", "phone", "email")).rstrip("|")


def _plain(value: Any) -> str:
    text = "" if value is None else str(value)
    if any(c in text for c in ";|="):
        raise RowError("item", f"{text!r}: ';', '|' and '=' are not allowed inside list entries")
    return text
