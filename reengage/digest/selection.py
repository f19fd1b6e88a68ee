"""Who may go on one rep's list: the candidates, from that rep's rows alone.

A candidate is one of the rep's callable customers with an open call due in the last
:data:`TASK_DAYS` (or later), a person's reply waiting from the last :data:`REPLY_DAYS`, or
whom detection alone finds worth a call: some value a year, and a lapse score of
:data:`MIN_LAPSE_SCORE` or more or a decline ratio at :data:`~reengage.detect.DECLINE_THRESHOLD`
or below. :func:`rep_candidates` reads them with the rep's queries
(:mod:`reengage.store.rep_calls`: no other rep's rows).

Ranking needs four numbers per customer (:class:`~reengage.digest.standings.Standing`:
days silent, lapse score, how much the orders shrank, a year's value), not an assessment:
:mod:`reengage.digest.standings` works them out from the stats rows, all of a rep's at
once, with the same arithmetic and score as :func:`reengage.detect.assess` wherever the
list depends on them. A full :class:`~reengage.detect.Assessment` is made only for the
few customers who end up on the list (their card says why), under one population prior
shared by every rep of a pass.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt

from reengage.detect import YEAR_DAYS, Assessment, Population
from reengage.digest.standings import (
    MIN_LAPSE_SCORE,
    Standing,
    Standings,
    all_standings,
    shrinking,
    standing_of,
    top_rows,
)
from reengage.lapse_model import LapseModel
from reengage.scoring import assess_customers
from reengage.store import Store
from reengage.store.calls import OpenCall, PastCall, WaitingReply
from reengage.store.rep_calls import RepSignals
from reengage.store.rep_stats import RepStats

REPLY_DAYS = 30  # a reply older than this is no longer a reason to call
TASK_DAYS = 21  # an open call nobody logged drops off after this long
ASSESS_CHUNK = 1000  # customers assessed per query (a bounded id list)
_PRIORITY_CERTAINTY = {"high": 0.9, "normal": 0.7, "low": 0.5}


@dataclass
class Candidate:
    """A customer who may go on a list, with the signals that put them there.

    Ranked by ``known`` (its :attr:`standing`); ``assessment`` (the words on the card) is
    filled in only for those listed. Without ``known``, the standing is the assessment's.
    """

    customer_id: int
    assessment: Assessment | None = None
    calls: list[OpenCall] = field(default_factory=list)
    reply: WaitingReply | None = None
    flagged: bool = False  # detection alone finds them worth a call
    known: Standing | None = None
    row: int | None = None  # their stats row: ``known`` is approximate until :meth:`settle`

    @property
    def standing(self) -> Standing | None:
        """The numbers the customer is ranked by (None: never did anything)."""
        if self.known is not None:
            return self.known
        return standing_of(self.assessment) if self.assessment is not None else None

    @property
    def committed(self) -> bool:
        """A call due today, or a reply waiting: listed ahead of detection-only customers."""
        return bool(self.calls) or self.reply is not None

    @property
    def certainty(self) -> float:
        """How surely the habit lapsed (0–1); an explicit call or a reply raises it."""
        s = self.standing
        score = s.lapse_score if s is not None else 0.0
        shrink = s.shrink if s is not None else 0.0
        floor = max(
            [_PRIORITY_CERTAINTY.get(c.priority, 0.7) for c in self.calls]
            + ([0.8] if self.reply is not None else [])
            + [0.0]
        )
        if any(c.campaign_id is None for c in self.calls):
            floor = 1.0  # the rep said "call again on this day"
        return max(score, shrink, floor)

    @property
    def value_per_year(self) -> float:
        """What the customer was worth per year while the habit was alive."""
        s = self.standing
        return s.value_per_year if s is not None else 0.0

    @property
    def value_at_risk(self) -> float:
        """A year's value × how surely it is lapsing."""
        return self.value_per_year * self.certainty

    @property
    def priority(self) -> float:
        """Value at risk, halved for each year they have been gone (harder to win back)."""
        s = self.standing
        silent = s.days_silent if s is not None else 0.0
        return float(self.value_at_risk * 0.5 ** (silent / YEAR_DAYS))


def worth_a_call(a: Assessment) -> bool:
    """Detection alone lists them: the habit has probably lapsed, or orders are shrinking."""
    p = a.profile
    return a.lapse_score >= MIN_LAPSE_SCORE or shrinking(p.aov_ratio, p.count_ratio, p.margin_ratio)


@dataclass(frozen=True)
class RepCandidates:
    """One rep's candidates and what the ranking needs to know of them.

    ``candidates`` are ranked one by one: everyone with a call or a reply, and flagged
    customers with an open call of any date, a past call or a pause (the day's rules may
    list them, or leave them off). ``plain`` are the other flagged customers (rows of
    ``standings``): nothing leaves them off and nothing lifts them, so they are ranked by
    their priority alone, counted, and scored one by one only if they may be listed.
    """

    candidates: dict[int, Candidate]
    calls_of: dict[int, list[OpenCall]]  # every open call per customer, earliest due first
    last: dict[int, PastCall]
    paused: set[int]
    standings: Standings | None = None
    plain: npt.NDArray[np.intp] = field(default_factory=lambda: np.zeros(0, dtype=np.intp))

    def settle(self, candidate: Candidate) -> None:
        """Give the candidate their exact standing (if it was approximate)."""
        if candidate.row is not None and self.standings is not None:
            candidate.known = self.standings.exact(candidate.row)
            candidate.row = None

    def best(self, loose: list[int], size: int) -> dict[int, tuple[float, Standing]]:
        """By id, the exact priority and standing of every plain customer, or flagged
        candidate ranked like one (stats rows ``loose``), who may be among the ``size``
        first of them (the ``size`` first are among these)."""
        if self.standings is None or size <= 0:
            return {}
        rows = np.concatenate([self.plain, np.array(loose, dtype=np.intp)])
        return {cid: (p, s) for p, cid, s in self.standings.best(rows, size)}

    def first(self, committed: list[Candidate], size: int) -> list[Candidate]:
        """The ``size`` first of these candidates by exact priority (then id), in order:
        only those whose approximate priority may reach the cut are scored exactly (see
        :func:`~reengage.digest.standings.top_rows`)."""
        if len(committed) > size and self.standings is not None:
            rough = np.array([c.priority for c in committed], dtype=np.float64)
            committed = [
                committed[i] for i in top_rows(rough, size, self.standings.margin).tolist()
            ]
        for candidate in committed:
            self.settle(candidate)
        return heapq.nsmallest(size, committed, key=lambda c: (-c.priority, c.customer_id))


def rep_candidates(
    store: Store,
    rep_external_id: str,
    now: datetime,
    prior: tuple[Population, LapseModel],
    read: tuple[RepSignals, RepStats] | None = None,
) -> RepCandidates:
    """The candidates of one rep's list at ``now``, ranked under ``prior``; ``read``: the
    rep's signals and stats rows when already read with other reps'."""
    if not rep_external_id:  # a customer without a rep is on nobody's list
        return RepCandidates({}, {}, {}, set())
    population, model = prior
    if read is None:
        segments = sorted(population.segment_gap_days)
        read = store.calls.rep_signals(rep_external_id, now, replies_since(now), segments)
    signals, stats = read
    calls_of: dict[int, list[OpenCall]] = defaultdict(list)
    for call in signals.calls:
        calls_of[call.customer_id].append(call)
    fresh = now - timedelta(days=TASK_DAYS)
    wanted = {c.customer_id for c in signals.calls if c.due_at >= fresh}
    wanted.update(r.customer_id for r in signals.replies)
    touched = calls_of.keys() | signals.last_calls.keys() | signals.paused
    ranked = all_standings(stats, population, model, now)
    special = wanted | touched
    hit = np.isin(stats.customer_id, np.fromiter(special, dtype=np.int64, count=len(special)))
    candidates: dict[int, Candidate] = {}
    for i in np.flatnonzero(hit & ranked.present).tolist():
        cid = int(stats.customer_id[i])
        if cid in wanted or ranked.flagged[i]:
            s = ranked.approximate(i)
            candidates[cid] = Candidate(cid, flagged=bool(ranked.flagged[i]), known=s, row=i)
    unread = sorted(wanted - candidates.keys())  # a call or a reply; no value, or no stats
    for start in range(0, len(unread), ASSESS_CHUNK):
        chunk = unread[start : start + ASSESS_CHUNK]
        for cid, a in assess_customers(store, now, customer_ids=chunk, prior=prior).items():
            candidates[cid] = Candidate(cid, a)
    for cid in unread:
        candidates.setdefault(cid, Candidate(cid))
    for reply in signals.replies:  # the newest one wins (oldest first)
        candidates[reply.customer_id].reply = reply
    plain = np.flatnonzero(ranked.flagged & ~hit)
    return RepCandidates(candidates, calls_of, signals.last_calls, signals.paused, ranked, plain)


def replies_since(now: datetime) -> datetime:
    """The oldest reply that still puts a customer on the list."""
    return now - timedelta(days=REPLY_DAYS)


def all_signals(store: Store, reps: list[str], now: datetime) -> dict[str, RepSignals]:
    """Every one of ``reps``' signals, read together (the morning pass lists them all)."""
    return store.calls.reps_signals([r for r in reps if r], now, replies_since(now))
