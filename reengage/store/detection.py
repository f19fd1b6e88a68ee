"""What detection and scoring read: customers' profiles from the running stats (or
rebuilt from activities as of a moment), the population's gaps, lapse candidates in one
indexed query, and the fitted lapse models (``store.detection``)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reengage.detect import Profile
from reengage.history import Event, Summary
from reengage.horizon import REGULAR_ORDERS, HorizonChoice
from reengage.lapse_model import LapseModel
from reengage.models import ActivityKind
from reengage.store import enrollment_reads, enrollments, lapse_models, looks, passes
from reengage.store.sqlfuncs import epoch_days
from reengage.store.tables import ACTIVITIES, CUSTOMERS, STATS


class DetectionReads:
    """Detection's reads and the lapse models; each call one short transaction."""

    def __init__(self, tx: Callable[[], AbstractContextManager[Connection]]) -> None:
        self._tx = tx

    def profiles(
        self,
        *,
        last_order_between: tuple[datetime, datetime] | None = None,
        customer_ids: Sequence[int] | None = None,
        rep_external_ids: Sequence[str] | None = None,
        chunk: looks.Chunk | None = None,
    ) -> Iterator[Profile]:
        """Detection profiles from the running stats, streamed; never reads activities.

        ``last_order_between`` narrows to customers whose last order falls in the range —
        a range scan of the ``last_order_at`` index, which is how an audience's
        "silent between N and M days" becomes one indexed query. ``rep_external_ids``
        narrows to these reps' customers (the ``rep_external_id`` index). ``chunk``
        narrows to a detection pass's chunk (a range of the primary key).
        """
        query = profile_query()
        if last_order_between is not None:
            low, high = last_order_between
            query = query.where(STATS.c.last_order_at.between(low, high))
        if customer_ids is not None:
            query = query.where(STATS.c.customer_id.in_(list(customer_ids)))
        if chunk is not None:
            query = query.where(looks.in_chunk(chunk, CUSTOMERS.c.id))
        queries = [query]
        if rep_external_ids is not None:
            owners = sorted(set(rep_external_ids))
            queries = [  # a few thousand reps a query keeps under every driver's bind limit
                query.where(CUSTOMERS.c.rep_external_id.in_(owners[start : start + 5000]))
                for start in range(0, len(owners), 5000)
            ]
        with self._tx() as conn:
            for each in queries:
                for row in conn.execution_options(yield_per=5000).execute(each):
                    yield profile_of(row)

    def gap_sample(self, size: int = 5000) -> list[tuple[str | None, float]]:
        """``(segment, typical gap)`` of about ``size`` customers spread evenly over the base.

        Enough to fit the population's typical gaps without reading a million rows.
        """
        return self._spread_sample(STATS.c.segment, size)

    def rhythm_sample(self, size: int = 2000) -> list[tuple[int, float]]:
        """``(orders, typical gap)`` of about ``size`` customers spread evenly over the base,
        those with a gap: what the horizon is chosen from (:mod:`reengage.horizon`)."""
        return self._spread_sample(STATS.c.order_count, size)

    def regular_buyers(self) -> int:
        """How many customers are regular buyers (:data:`REGULAR_ORDERS` orders or more,
        with a typical gap): the whole base's count, one COUNT over the stats."""
        with self._tx() as conn:
            return conn.scalar(sa.select(sa.func.count()).where(_regular())) or 0

    def regular_sample(self, size: int = 2000) -> list[tuple[int, float]]:
        """``(orders, typical gap)`` of about ``size`` regular buyers spread over the ids:
        for a base where they are too rare for :meth:`rhythm_sample` to find enough."""
        with self._tx() as conn:
            count = conn.scalar(sa.select(sa.func.count()).where(_regular())) or 0
            step = max(1, count // size)
            query = sa.select(STATS.c.order_count, STATS.c.typical_gap_days).where(
                _regular(), STATS.c.customer_id % step == 0
            )
            return [(orders, gap) for orders, gap in conn.execute(query)]

    def _spread_sample(self, column: sa.ColumnElement[Any], size: int) -> list[tuple[Any, float]]:
        # ``(column, typical gap)`` of about ``size`` customers with a gap, evenly spread
        # over the ids: primary-key lookups, not a scan.
        with self._tx() as conn:
            top = conn.scalar(sa.select(sa.func.max(STATS.c.customer_id))) or 0
            step = max(1, top // size)
            wanted = list(range(step, top + 1, step))
            sample: list[tuple[Any, float]] = []
            for start in range(0, len(wanted), 5000):
                query = sa.select(column, STATS.c.typical_gap_days).where(
                    STATS.c.customer_id.in_(wanted[start : start + 5000]),
                    STATS.c.typical_gap_days.is_not(None),
                )
                sample.extend((value, gap) for value, gap in conn.execute(query))
            return sample

    def lapse_candidates(
        self, now: datetime, *, min_days: float, max_days: float, factor: float, min_gap: float
    ) -> list[tuple[int, str | None, int, float | None, float, float, float]]:
        """Customers possibly silent for ``factor`` × their gap, within a silence range.

        Returns ``(customer_id, segment, order_count, typical_gap_days, days_silent,
        age_days, total_value)``, all from one covering index. The
        silence range is a range scan of the ``last_order_at`` index; the factor test is a
        necessary condition (no expected gap is below ``min_gap`` or the customer's own), so
        the caller's exact check never misses anyone. Days are computed in the database.
        """
        now_days = now.timestamp() / 86400.0
        silent = sa.literal(now_days) - epoch_days(STATS.c.last_order_at)
        shortest = sa.case(
            (STATS.c.typical_gap_days.is_(None), min_gap),
            (STATS.c.typical_gap_days < min_gap, STATS.c.typical_gap_days),
            else_=min_gap,
        )
        # The expected gap is at least both of these; the larger one rules out more rows.
        floor_gap = sa.case(
            (STATS.c.gap_floor_days > shortest, STATS.c.gap_floor_days), else_=shortest
        )
        query = (
            sa.select(
                STATS.c.customer_id,
                STATS.c.segment,
                STATS.c.order_count,
                STATS.c.typical_gap_days,
                silent,
                sa.literal(now_days) - epoch_days(STATS.c.first_order_at),
                STATS.c.total_value,
            )
            .where(
                STATS.c.last_order_at.between(
                    now - timedelta(days=max_days), now - timedelta(days=min_days)
                )
            )
            .where(silent >= floor_gap * factor)
        )
        with self._tx() as conn:
            # fetchall in one call: row-by-row fetching costs more than the query itself
            return conn.execute(query).all()  # type: ignore[return-value]

    def trends(self, customer_ids: Sequence[int]) -> dict[int, tuple[float | None, float | None]]:
        """``count_ratio`` and ``aov_ratio`` of these customers (primary-key lookups): what
        the lapse score reads beyond :meth:`lapse_candidates`'s covering index."""
        found: dict[int, tuple[float | None, float | None]] = {}
        with self._tx() as conn:
            for start in range(0, len(customer_ids), 5000):
                query = sa.select(
                    STATS.c.customer_id, STATS.c.count_ratio, STATS.c.aov_ratio
                ).where(STATS.c.customer_id.in_(list(customer_ids[start : start + 5000])))
                found.update((c, (count, aov)) for c, count, aov in conn.execute(query))
        return found

    # -- when to look again (see store/looks.py) ------------------------------------------

    def pass_state(self) -> looks.PassState | None:
        """What the last whole detection pass was computed with, or None before the first."""
        with self._tx() as conn:
            return looks.state(conn)

    def kept_horizon(self) -> HorizonChoice | None:
        """The rhythm horizon the daemon keeps with its population: the running pass's, else
        the last whole pass's; None before the daemon chose one."""
        with self._tx() as conn:
            shared = passes.running(conn)
            if shared is not None and shared.horizon is not None:
                return shared.horizon
            state = looks.state(conn)
        return None if state is None else state.horizon

    def due_ids(self, now: datetime, *, after: int, limit: int) -> list[int]:
        """The next ``limit`` customers due a look at ``now``, in id order after ``after``."""
        with self._tx() as conn:
            return looks.due_ids(conn, now, after, limit)

    def all_ids(self, *, after: int, limit: int) -> list[int]:
        """The next ``limit`` customers with stats, in id order after ``after``."""
        with self._tx() as conn:
            return looks.all_ids(conn, after, limit)

    def next_chunk(
        self, *, after: int, limit: int, due_at: datetime | None, upto: int | None = None
    ) -> looks.Chunk | None:
        """The next ``limit`` customers after ``after`` (only those due at ``due_at``, or
        everyone when it is None; none beyond ``upto``) with their look versions; None
        past the last."""
        with self._tx() as conn:
            return looks.next_chunk(conn, after, limit, due_at, upto)

    # -- passes several workers share (see store/passes.py) ------------------------------

    def running_pass(self) -> passes.SharedPass | None:
        """The detection pass that runs now, or None."""
        with self._tx() as conn:
            return passes.running(conn)

    def start_pass(self, now: datetime, whole: bool, state: looks.PassState) -> passes.SharedPass:
        """Start a pass as of ``now`` (or get the one another worker just started)."""
        with self._tx() as conn:
            return passes.start(conn, now, whole, state)

    def abandon_pass(self, pass_id: int, now: datetime) -> None:
        """Stop a pass computed with campaigns, a model or a population no longer current."""
        with self._tx() as conn:
            passes.abandon(conn, pass_id, now)

    def release_chunks(self, holder: str, now: datetime) -> int:
        """Let go of what ``holder`` took and did not finish (:func:`passes.release`)."""
        with self._tx() as conn:
            return passes.release(conn, holder, now)

    def take_chunk(
        self, shared: passes.SharedPass, holder: str, now: datetime, lease: timedelta, limit: int
    ) -> passes.Taken | None:
        """The next chunk of the pass for this worker, leased until ``now + lease``."""
        with self._tx() as conn:
            return passes.take(conn, shared, holder, now, lease, limit)

    def commit_chunk(
        self,
        shared: passes.SharedPass,
        taken: passes.Taken,
        holder: str,
        now: datetime,
        lease: timedelta,
        *,
        done: bool,
        new: Sequence[enrollments.NewEnrollment],
        looked: Sequence[tuple[int, int, datetime | None]],
    ) -> bool:
        """Write what part of a chunk decided (enrollments at the pass's moment, the next
        looks) in one transaction, only while this worker holds the chunk; False: nothing
        written, the chunk went to another worker or the pass was stopped."""
        try:
            with self._tx() as conn:
                if not passes.still_held(conn, shared, taken.after, holder, now, lease, done=done):
                    raise _Lost  # rolls the transaction back
                enrollments.insert_enrollments(conn, new, shared.now)
                looks.write_looks(conn, looked)
                return True
        except _Lost:
            return False

    def finish_pass(self, shared: passes.SharedPass, now: datetime) -> bool:
        """Finish the pass and write its state, if every chunk is done."""
        with self._tx() as conn:
            return passes.finish(conn, shared, now)

    def enrollment_history(
        self, chunk: looks.Chunk, since: datetime
    ) -> list[tuple[int, str, str, datetime]]:
        """``(customer, campaign, status, enrolled_at)`` of the chunk's running enrollments
        and those since ``since``."""
        with self._tx() as conn:
            return enrollment_reads.history_in_chunk(conn, chunk, since)

    def write_looks(self, rows: Sequence[tuple[int, int, datetime | None]]) -> None:
        """``(customer, version read, when)``: when to look again, unless they changed."""
        with self._tx() as conn:
            looks.write_looks(conn, rows)

    def look_again(self, customer_ids: Sequence[int]) -> None:
        """These customers are due at the next pass."""
        with self._tx() as conn:
            for start in range(0, len(customer_ids), 5000):  # under every driver's bind limit
                looks.look_again(conn, customer_ids[start : start + 5000])

    def ended_since(self, since: datetime) -> list[int]:
        """Customers with an enrollment that ended after ``since``."""
        with self._tx() as conn:
            return looks.ended_since(conn, since)

    def latest_lapse_model(self) -> LapseModel | None:
        """The model in force (the newest fitted), or None before the first fit."""
        with self._tx() as conn:
            found = lapse_models.latest(conn)
        return None if found is None else found.model

    def profiles_as_of(self, as_of: datetime) -> Iterator[Profile]:
        """Profiles rebuilt from the activities up to ``as_of`` (later ones ignored).

        For backtests and ``score --as-of``: a pass over the activity table in index order,
        folding each customer's history with the same code as ingest.
        """
        query = (
            sa.select(
                ACTIVITIES.c.customer_id,
                CUSTOMERS.c.external_id,
                CUSTOMERS.c.segment,
                ACTIVITIES.c.kind,
                ACTIVITIES.c.occurred_at,
                ACTIVITIES.c.amount,
                ACTIVITIES.c.margin,
                CUSTOMERS.c.first_name,
                CUSTOMERS.c.last_name,
                CUSTOMERS.c.company,
            )
            .join(CUSTOMERS, CUSTOMERS.c.id == ACTIVITIES.c.customer_id)
            .where(ACTIVITIES.c.occurred_at <= as_of)
            .order_by(ACTIVITIES.c.customer_id, ACTIVITIES.c.occurred_at)
        )
        with self._tx() as conn:
            rows = conn.execution_options(yield_per=10_000).execute(query)
            for (customer_id, external_id, segment, *name), group in itertools.groupby(
                rows, key=lambda r: (r[0], r[1], r[2], r[7], r[8], r[9])
            ):
                summary = Summary().fold(Event(r[3], r[4], r[5], r[6]) for r in group)
                yield Profile.from_summary(
                    summary, customer_id, external_id, segment, display_name(*name)
                )

    def buyers_between(self, start: datetime, end: datetime) -> set[int]:
        """Customers with at least one order in ``(start, end]``: who came back."""
        query = (
            sa.select(ACTIVITIES.c.customer_id)
            .where(ACTIVITIES.c.kind == ActivityKind.ORDER.value)
            .where(ACTIVITIES.c.occurred_at > start, ACTIVITIES.c.occurred_at <= end)
            .distinct()
        )
        with self._tx() as conn:
            return set(conn.scalars(query))


def _regular() -> sa.ColumnElement[bool]:
    """A regular buyer's stats: enough orders for a gap of their own (as the horizon counts)."""
    return sa.and_(STATS.c.order_count >= REGULAR_ORDERS, STATS.c.typical_gap_days > 0)


class _Lost(Exception):
    """The chunk is no longer this worker's: roll back what its transaction began."""


def profile_query() -> sa.Select[Any]:
    """What a detection profile reads: the stats joined to the customer (no JSON column);
    turn each row into a :class:`Profile` with :func:`profile_of`."""
    return sa.select(
        STATS.c.customer_id,
        CUSTOMERS.c.external_id,
        CUSTOMERS.c.segment,
        STATS.c.activity_count,
        STATS.c.order_count,
        STATS.c.first_order_at,
        STATS.c.last_order_at,
        STATS.c.last_activity_at,
        STATS.c.total_value,
        STATS.c.total_margin,
        STATS.c.typical_gap_days,
        STATS.c.count_ratio,
        STATS.c.aov_ratio,
        STATS.c.margin_ratio,
        CUSTOMERS.c.first_name,
        CUSTOMERS.c.last_name,
        CUSTOMERS.c.company,
    ).join(CUSTOMERS, CUSTOMERS.c.id == STATS.c.customer_id)


def profile_of(row: Any) -> Profile:
    """The :class:`Profile` of a :func:`profile_query` row."""
    return Profile(
        customer_id=row.customer_id,
        external_id=row.external_id,
        segment=row.segment,
        activity_count=row.activity_count,
        order_count=row.order_count,
        first_order_at=row.first_order_at,
        last_order_at=row.last_order_at,
        last_activity_at=row.last_activity_at,
        total_value=row.total_value,
        total_margin=row.total_margin,
        typical_gap_days=row.typical_gap_days,
        count_ratio=row.count_ratio,
        aov_ratio=row.aov_ratio,
        margin_ratio=row.margin_ratio,
        name=display_name(row.first_name, row.last_name, row.company),
    )


def display_name(first: str | None, last: str | None, company: str | None) -> str:
    """ "Ana Li (Ana's Bakery)", or whichever parts are known."""
    person = " ".join(p for p in (first, last) if p)
    if company:
        return f"{person} ({company})" if person else company
    return person
