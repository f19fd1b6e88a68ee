"""Import customers, reps and activities: CSV files and the HTTP ingest API.

Both paths validate records with the same ``parse_*`` functions (``records``) and write
through the same batch importer and ``Store`` upserts, so a record means the same thing
however it arrives. Files are streamed in batches (constant memory); a bad row is reported
as ``FILE:LINE: column: problem`` (an API item as its index and field) and skipped, and
every good one is still imported. Importing the same records again changes nothing.
"""

from __future__ import annotations

import difflib
import gc
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from reengage.errors import RowError
from reengage.ingest.csvfile import CsvReader, Progress
from reengage.ingest.records import (
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
from reengage.logs import get_logger
from reengage.store import NewActivity, Store

__all__ = [
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

Batch = list[tuple[int, dict[str, str]]]


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
    # A big import allocates millions of short-lived objects; freezing what already exists
    # (modules, the engine) spares every full collection from re-scanning it: ~10% faster.
    gc.collect()
    gc.freeze()
    report.warnings.extend(reader.warnings)
    with structlog.contextvars.bound_contextvars(import_kind=kind.value, import_file=str(path)):
        log.info("import_started", dry_run=dry_run)
        batches = reader.batches(batch_size, report.rejected)
        if dry_run:
            with store.rolled_back():
                _import_rows(store, kind, batches, report, now, zone)
        else:
            _import_rows(store, kind, batches, report, now, zone)
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
    batches: Iterable[Batch],
    report: ImportReport,
    now: datetime,
    zone: ZoneInfo,
) -> None:
    unknown_reps: set[str] = set()
    for batch in batches:
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
    _import_rows(store, kind, batches, report, now, zone)
    report.rows = len(items)
    log.info(
        "items_imported",
        kind=kind.value,
        items=len(items),
        inserted=report.counts.inserted,
        updated=report.counts.updated,
        rejected=len(report.rejected),
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
