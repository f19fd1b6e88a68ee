"""The stats rows a rep's list ranks, read as columns of numbers.

A list scores each of the rep's callable customers with some value (ten thousand per rep
at a million customers), so the read is most of its cost. These rows never become
SQLAlchemy rows with parsed ``datetime``s: they arrive as NumPy columns (:class:`RepStats`),
timestamps as exact microseconds since 1970 and NULL as NaN, and a row becomes a Python
object (:meth:`RepStats.row`) only when a list looks at it one by one.

On PostgreSQL the select is sent as ``COPY ... TO STDOUT (FORMAT BINARY)`` with every
column of fixed width (NULL timestamps as ``-infinity``, other NULLs as NaN), so the
whole answer is one NumPy record array: a timestamp's binary form is already its
microseconds (since 2000), and nothing is parsed row by row. Measured on 100,000
customers: 0.4 s for every row against 0.9 s through a server-side cursor. SQLite returns
its rows through the driver, with timestamps turned into microseconds in SQL
(:class:`~reengage.store.sqlfuncs.epoch_us`).

The rows are a rep's customers found by their ids in the stats' primary key (see
:func:`reengage.store.rep_calls.of_rep`), or, for many reps, one pass in the order of the
reps (:func:`reps_valued`): one rep's rows in memory at a time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reengage.store import sqlfuncs
from reengage.store.rep_calls import callable_of, of_rep
from reengage.store.tables import CUSTOMERS, STATS

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PG_EPOCH_US = 946_684_800_000_000  # PostgreSQL's binary timestamps count from 2000-01-01
_NOT_A_TIME = np.iinfo(np.int64).min  # '-infinity' in PostgreSQL's binary form


class ValuedRow(NamedTuple):
    """The stats a list ranks a customer by (what detection's profile holds, less the
    names), one customer's."""

    customer_id: int
    segment: str | None
    order_count: int
    first_order_at: datetime | None
    last_order_at: datetime | None
    last_activity_at: datetime | None
    total_value: float
    typical_gap_days: float | None
    count_ratio: float | None
    aov_ratio: float | None
    margin_ratio: float | None


def _moment(us: float) -> datetime | None:
    return None if np.isnan(us) else _EPOCH + timedelta(microseconds=int(us))


def _maybe(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


@dataclass(frozen=True)
class RepStats:
    """Stats rows of a rep's customers, column by column (the fields of :class:`ValuedRow`).

    Timestamps are microseconds since 1970 as floats (exact below 2**53, until the year
    2255), NULL as NaN. ``segment`` is an index into ``segments`` (the segments the
    reader was told about, 1 for the first), 0 for any other or none: a list needs a
    segment only for its typical gap, which is the same for every segment the population
    does not know.
    """

    segments: tuple[str, ...]
    customer_id: Ints
    segment: npt.NDArray[np.int32]
    order_count: Ints
    first_order_us: Floats
    last_order_us: Floats
    last_activity_us: Floats
    total_value: Floats
    typical_gap_days: Floats
    count_ratio: Floats
    aov_ratio: Floats
    margin_ratio: Floats

    @classmethod
    def of(cls, segments: Sequence[str], rows: Sequence[Sequence[Any]]) -> RepStats:
        """The columns of these rows (fields in order, timestamps in microseconds, segment
        as its index)."""
        columns: list[Any] = list(zip(*rows, strict=True)) if rows else [()] * 11
        ints = [np.array(c, dtype=np.int64) for c in columns[:3]]
        floats = [np.array(c, dtype=np.float64) for c in columns[3:]]
        return cls(tuple(segments), ints[0], ints[1].astype(np.int32), ints[2], *floats)

    def __len__(self) -> int:
        return len(self.customer_id)

    def row(self, i: int) -> ValuedRow:
        """Row ``i`` with its timestamps back as datetimes: the same instants, to the
        microsecond, as reading the stats row itself."""
        segment = int(self.segment[i])
        return ValuedRow(
            int(self.customer_id[i]),
            self.segments[segment - 1] if segment else None,
            int(self.order_count[i]),
            _moment(self.first_order_us[i]),
            _moment(self.last_order_us[i]),
            _moment(self.last_activity_us[i]),
            float(self.total_value[i]),
            _maybe(self.typical_gap_days[i]),
            _maybe(self.count_ratio[i]),
            _maybe(self.aov_ratio[i]),
            _maybe(self.margin_ratio[i]),
        )


_TIMES = (STATS.c.first_order_at, STATS.c.last_order_at, STATS.c.last_activity_at)
_RATIOS = (STATS.c.typical_gap_days, STATS.c.count_ratio, STATS.c.aov_ratio, STATS.c.margin_ratio)


def valued_query(
    conn: Connection,
    segments: Sequence[str],
    where: sa.ColumnElement[bool],
    reps: Sequence[str] = (),
) -> sa.Select[Any]:
    """The stats columns of :class:`RepStats` for the callable customers ``where`` selects,
    with some value (nobody with ``total_value`` 0 is worth anything a year, so detection
    alone never lists them); given ``reps``, each row's rep as its index in them first,
    ordered by it."""
    pg = conn.dialect.name == "postgresql"
    segment: Any = sa.literal(0, sa.Integer)  # no segment known: every one is "other"
    if segments:
        known = {s: n for n, s in enumerate(segments, 1)}
        segment = sa.case(known, value=CUSTOMERS.c.segment, else_=0)
    if pg:  # fixed width for COPY: no NULL, every column of a known binary type
        never: Any = sa.literal_column("'-infinity'::timestamp")
        nan: Any = sa.literal_column("'NaN'::float8")
        times: list[Any] = [sa.func.coalesce(t, never) for t in _TIMES]
        ratios: list[Any] = [sa.func.coalesce(r, nan) for r in _RATIOS]
        ids: list[Any] = [sa.cast(STATS.c.customer_id, sa.BigInteger), sa.cast(segment, sa.Integer)]
        count: Any = sa.cast(STATS.c.order_count, sa.BigInteger)
    else:
        times = [sqlfuncs.epoch_us(t) for t in _TIMES]
        ratios = list(_RATIOS)
        ids = [STATS.c.customer_id, segment]
        count = STATS.c.order_count
    columns = [*ids, count, *times, STATS.c.total_value, *ratios]
    query = sa.select(*columns).join(CUSTOMERS, CUSTOMERS.c.id == STATS.c.customer_id)
    query = query.where(where, STATS.c.total_value > 0)
    if reps:
        owner = sa.case(
            {r: n for n, r in enumerate(reps)}, value=CUSTOMERS.c.rep_external_id, else_=-1
        )
        owner_column = sa.cast(owner, sa.Integer) if pg else owner
        query = query.add_columns(owner_column).order_by(CUSTOMERS.c.rep_external_id)
    return query


def rep_valued(conn: Connection, rep_external_id: str, segments: Sequence[str]) -> RepStats:
    """The ranking numbers of the rep's callable customers with some value, found by the
    rep's ids (at 30,000 customers PostgreSQL preferred hashing a scan of every stats row
    to probing a rep's 500)."""
    where = of_rep(conn, STATS.c.customer_id, rep_external_id)
    query = valued_query(conn, segments, where)
    if conn.dialect.name == "postgresql":
        empty = np.zeros(0, dtype=_records(0))
        return _of_records(segments, np.concatenate([*_copied(conn, query, 0), empty]))
    return RepStats.of(segments, conn.execute(query).all())


def reps_valued(
    conn: Connection, rep_external_ids: Sequence[str], segments: Sequence[str]
) -> Iterator[tuple[str, RepStats]]:
    """:func:`rep_valued` of these reps in one pass ordered by rep, a rep's rows at a time
    (reps with none are not named)."""
    chosen = sorted(set(rep_external_ids))
    for start in range(0, len(chosen), _REPS_A_QUERY):
        reps = chosen[start : start + _REPS_A_QUERY]
        query = valued_query(conn, segments, callable_of(reps), reps)
        if conn.dialect.name == "postgresql":
            for index, records in _by_owner(_copied(conn, query, 1)):
                yield reps[index], _of_records(segments, records)
            continue
        rows: list[Sequence[Any]] = []
        owner: int | None = None
        for part in conn.execution_options(yield_per=5000).execute(query).partitions():
            for row in part:
                if row[-1] != owner:
                    if owner is not None:
                        yield reps[owner], RepStats.of(segments, rows)
                    owner, rows = row[-1], []
                rows.append(row[:-1])
        if owner is not None:
            yield reps[owner], RepStats.of(segments, rows)


_REPS_A_QUERY = 5000  # reps named in one query


# --- PostgreSQL: COPY in binary, read as record arrays ------------------------------------

_FIELDS: tuple[tuple[str, str], ...] = (
    ("customer_id", ">i8"),
    ("segment", ">i4"),
    ("order_count", ">i8"),
    *((f"{name}_us", ">i8") for name in ("first_order", "last_order", "last_activity")),
    *((name, ">f8") for name in ("total_value", "gap", "count", "aov", "margin")),
)


def _records(owners: int) -> np.dtype[Any]:
    """One row of the binary COPY: a field count, then each field's length and value."""
    fields: list[tuple[str, str]] = [("fields", ">i2")]
    for name, kind in _FIELDS + (("owner", ">i4"),) * owners:
        fields += [(f"{name}_length", ">i4"), (name, kind)]
    return np.dtype(fields)


def _copied(conn: Connection, query: sa.Select[Any], owners: int) -> Iterator[Any]:
    """The rows of ``query`` as record arrays, a batch at a time, by a binary COPY (the
    values inlined by SQLAlchemy's literal rendering: reps, segments, statuses)."""
    sql = query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
    dtype = _records(owners)
    raw: Any = conn.connection.driver_connection
    parts: list[bytes] = []
    size = 0
    header = 19  # signature, flags, header extension length
    with raw.cursor() as cursor, cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT BINARY)") as copy:
        for data in copy:  # a message a row: gathered, then read a few thousand at once
            parts.append(bytes(data))
            size += len(data)
            if size >= _BATCH_BYTES:
                batch, rest = _parse(b"".join(parts), header, dtype)
                yield batch
                parts, size, header = [rest], len(rest), 0
    batch, rest = _parse(b"".join(parts), header, dtype)
    if len(batch):
        yield batch
    if rest != b"\xff\xff":  # what is left is the trailer, and only it
        raise RuntimeError(f"unexpected end of a binary COPY: {rest[:16]!r}")


_BATCH_BYTES = 1 << 20


def _parse(data: bytes, header: int, dtype: np.dtype[Any]) -> tuple[Any, bytes]:
    """The whole rows in ``data`` after ``header`` bytes, and the bytes left over."""
    count = (len(data) - header) // dtype.itemsize
    rows = np.frombuffer(data, dtype=dtype, count=count, offset=header)
    return rows, data[header + count * dtype.itemsize :]


def _by_owner(batches: Iterator[Any]) -> Iterator[tuple[int, Any]]:
    """Record batches ordered by owner, regrouped a whole owner at a time."""
    kept: list[Any] = []
    for batch in batches:
        owners = batch["owner"]
        if kept and kept[-1]["owner"][-1] != owners[0]:  # a new owner starts the batch
            done = np.concatenate(kept)
            yield int(done["owner"][0]), done
            kept = []
        start = 0
        for cut in (np.flatnonzero(owners[1:] != owners[:-1]) + 1).tolist():
            done = np.concatenate([*kept, batch[start:cut]])
            yield int(done["owner"][0]), done
            kept, start = [], cut
        kept.append(batch[start:])
    if kept:
        done = np.concatenate(kept)
        yield int(done["owner"][0]), done


def _time(column: Any) -> Floats:
    stamps = column.astype(np.int64)
    found: Floats = (stamps + _PG_EPOCH_US).astype(np.float64)
    found[stamps == _NOT_A_TIME] = np.nan
    return found


def _of_records(segments: Sequence[str], records: Any) -> RepStats:
    return RepStats(
        tuple(segments),
        records["customer_id"].astype(np.int64),
        records["segment"].astype(np.int32),
        records["order_count"].astype(np.int64),
        _time(records["first_order_us"]),
        _time(records["last_order_us"]),
        _time(records["last_activity_us"]),
        records["total_value"].astype(np.float64),
        records["gap"].astype(np.float64),
        records["count"].astype(np.float64),
        records["aov"].astype(np.float64),
        records["margin"].astype(np.float64),
    )
