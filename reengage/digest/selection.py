"""Who may go on one rep's list: the candidates, from that rep's rows alone.

A candidate is one of the rep's callable customers with an open call due in the last
:data:`TASK_DAYS` (or later), a person's reply waiting from the last :data:`REPLY_DAYS`, or
whom detection alone finds worth a call: some value a year, and a lapse score of
:data:`MIN_LAPSE_SCORE` or more or a decline ratio at :data:`~reengage.detect.DECLINE_THRESHOLD`
or below. :func:`rep_candidates` reads them with the rep's queries
(:mod:`reengage.store.rep_calls`: no other rep's rows), screens the profiles
of the rep's customers with some value with the same inputs and score as
:func:`reengage.detect.assess` (without writing an assessment's words), and assesses only
the candidates with :func:`reengage.scoring.assess_customers`, under one population prior
shared by every rep of a pass. The full assessment, not the screen, decides who is flagged.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from reengage.detect import (
    DECLINE_THRESHOLD,
    YEAR_DAYS,
    Assessment,
    Population,
    Profile,
    inputs_of,
)
from reengage.lapse_model import LapseModel
from reengage.scoring import assess_customers
from reengage.store import Store
from reengage.store.calls import OpenCall, PastCall, WaitingReply

REPLY_DAYS = 30  # a reply older than this is no longer a reason to call
TASK_DAYS = 21  # an open call nobody logged drops off after this long
MIN_LAPSE_SCORE = 0.5  # detection alone lists a customer from this lapse score up
ASSESS_CHUNK = 1000  # customers assessed per query (a bounded id list)
_PRIORITY_CERTAINTY = {"high": 0.9, "normal": 0.7, "low": 0.5}


@dataclass
class Candidate:
    """A customer who may go on a list, with the signals that put them there."""

    customer_id: int
    assessment: Assessment | None = None
    calls: list[OpenCall] = field(default_factory=list)
    reply: WaitingReply | None = None
    flagged: bool = False  # detection alone finds them worth a call

    @property
    def committed(self) -> bool:
        """A call due today, or a reply waiting: listed ahead of detection-only customers."""
        return bool(self.calls) or self.reply is not None

    @property
    def certainty(self) -> float:
        """How surely the habit lapsed (0–1); an explicit call or a reply raises it."""
        a = self.assessment
        shrink = 0.0
        score = 0.0
        if a is not None:
            score = a.lapse_score
            ratios = (a.profile.margin_ratio, a.profile.aov_ratio, a.profile.count_ratio)
            shrink = 1.0 - min([r for r in ratios if r is not None] + [1.0])
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
        return self.assessment.value_per_year if self.assessment else 0.0

    @property
    def value_at_risk(self) -> float:
        """A year's value × how surely it is lapsing."""
        return self.value_per_year * self.certainty

    @property
    def priority(self) -> float:
        """Value at risk, halved for each year they have been gone (harder to win back)."""
        silent = self.assessment.days_silent if self.assessment else 0.0
        return float(self.value_at_risk * 0.5 ** (silent / YEAR_DAYS))


def worth_a_call(a: Assessment) -> bool:
    """Detection alone lists them: the habit has probably lapsed, or orders are shrinking."""
    shrinking = any(
        r is not None and r <= DECLINE_THRESHOLD
        for r in (a.profile.aov_ratio, a.profile.count_ratio, a.profile.margin_ratio)
    )
    return a.lapse_score >= MIN_LAPSE_SCORE or shrinking


@dataclass(frozen=True)
class RepCandidates:
    """One rep's candidates and what the ranking needs to know of them."""

    candidates: dict[int, Candidate]
    calls_of: dict[int, list[OpenCall]]  # every open call per customer, earliest due first
    last: dict[int, PastCall]
    paused: set[int]


def rep_candidates(
    store: Store, rep_external_id: str, now: datetime, prior: tuple[Population, LapseModel]
) -> RepCandidates:
    """The candidates of one rep's list at ``now``, assessed under ``prior``."""
    if not rep_external_id:  # a customer without a rep is on nobody's list
        return RepCandidates({}, {}, {}, set())
    signals = store.calls.rep_signals(rep_external_id, now, now - timedelta(days=REPLY_DAYS))
    population, model = prior
    screened = [p for p in signals.valued if _may_flag(p, population, model, now)]
    assessed = assess_customers(store, now, profiles=screened, prior=prior)
    fresh = now - timedelta(days=TASK_DAYS)
    wanted = set(assessed)
    wanted.update(c.customer_id for c in signals.calls if c.due_at >= fresh)
    wanted.update(r.customer_id for r in signals.replies)
    others = wanted - assessed.keys()  # a call or a reply, not flagged by the screen
    read = [p for p in signals.valued if p.customer_id in others]
    assessed.update(assess_customers(store, now, profiles=read, prior=prior))
    unread = sorted(others - {p.customer_id for p in read})  # no value, or no stats at all
    for start in range(0, len(unread), ASSESS_CHUNK):
        chunk = unread[start : start + ASSESS_CHUNK]
        assessed.update(assess_customers(store, now, customer_ids=chunk, prior=prior))
    flagged = {p.customer_id for p in screened}
    candidates: dict[int, Candidate] = {}
    for cid in sorted(wanted):
        a = assessed.get(cid)
        worth = cid in flagged and a is not None and a.value_per_year > 0 and worth_a_call(a)
        candidates[cid] = Candidate(cid, a, flagged=worth)
    for reply in signals.replies:  # the newest one wins (oldest first)
        candidates[reply.customer_id].reply = reply
    calls_of: dict[int, list[OpenCall]] = defaultdict(list)
    for call in signals.calls:
        calls_of[call.customer_id].append(call)
    return RepCandidates(candidates, calls_of, signals.last_calls, signals.paused)


def _may_flag(profile: Profile, population: Population, model: LapseModel, now: datetime) -> bool:
    # The screen: the inputs and score `assess` computes, with none of an assessment's words.
    if any(
        r is not None and r <= DECLINE_THRESHOLD
        for r in (profile.aov_ratio, profile.count_ratio, profile.margin_ratio)
    ):
        return True
    inputs = inputs_of(profile, population, now)
    return inputs is not None and model.score(inputs) >= MIN_LAPSE_SCORE
