"""Who each rep should call today, ranked, and why.

Candidates come from three places: a campaign's ``call`` step or a "call again" the rep
set (open call tasks due by today), a person's reply still waiting for an answer, and
detection — customers whose habit lapsed or whose orders are shrinking. Commitments come
first (a call the rep or a campaign put on the list, a reply), then everyone else; within
each, by priority: a year's value at risk × how surely the habit has lapsed × how winnable
they still are. Left off: anyone marked do-not-contact, called recently (14 days; 90 if
the rep said "later", a year if "not worth it", 2 days after no answer), scheduled for
another day, or paused — unless a call for today was put on the list on purpose.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from reengage.detect import Assessment, Population
from reengage.digest.prompts import (
    MailLine,
    Person,
    Upcoming,
    last_call_words,
    mail_history,
    person_to_ask,
    questions,
    upcoming_dates,
)
from reengage.digest.reasons import reasons_now
from reengage.digest.selection import (
    ASSESS_CHUNK,
    REPLY_DAYS,
    TASK_DAYS,
    Candidate,
    all_signals,
    rep_candidates,
)
from reengage.i18n import DEFAULT, Texts, texts
from reengage.lapse_model import LapseModel
from reengage.models import Customer, Rep, WorthIt
from reengage.scoring import assess_customers, prior_for
from reengage.store import Store
from reengage.store.calls import PastCall, Touch
from reengage.store.rep_calls import RepSignals
from reengage.store.rep_stats import RepStats

HISTORY_DAYS = 180  # what reengage did: mails and responses this far back


@dataclass(frozen=True)
class ListPolicy:
    """How long the list is and how long a called customer stays off it."""

    size: int = 10
    cooldown_days: int = 14

    def cooldown(self, call: PastCall) -> timedelta:
        """How long after this call the customer stays off the list (unless called back)."""
        if call.reached == "nobody":
            return timedelta(days=2)
        if call.worth == WorthIt.NO.value:
            return timedelta(days=365)
        if call.worth == WorthIt.LATER.value:
            return timedelta(days=max(self.cooldown_days, 90))
        return timedelta(days=self.cooldown_days)


@dataclass(frozen=True)
class CallItem:
    """One client on a rep's list, with everything the card shows."""

    customer: Customer
    rank: int
    priority: float
    value_at_risk: float
    value_per_year: float
    why: list[str]
    person: Person
    history: list[MailLine]
    replies: list[str]
    last_call: str | None
    questions: list[str]
    dates: list[Upcoming]
    interests: list[str]
    headline: str = ""  # the strongest reason in a few words, for the digest's compact list

    @property
    def name(self) -> str:
        """The customer's name, as a rep would say it."""
        person = " ".join(p for p in (self.customer.first_name, self.customer.last_name) if p)
        return person or self.customer.company or self.customer.email


@dataclass(frozen=True)
class CallList:
    """A rep's calls for one local day: the top ones in full, the rest as a count."""

    rep: Rep
    day: date
    items: list[CallItem]
    more: int

    @property
    def empty(self) -> bool:
        """Nobody to call."""
        return not self.items


def rep_zone(rep: Rep) -> ZoneInfo:
    """The rep's time zone (UTC when the name is not known)."""
    try:
        return ZoneInfo(rep.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_day(rep: Rep, now: datetime) -> date:
    """The rep's date at ``now``."""
    return now.astimezone(rep_zone(rep)).date()


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """Midnight at the start of ``day`` in ``zone``."""
    return datetime.combine(day, time(0), zone)


def build_lists(
    store: Store,
    now: datetime,
    policy: ListPolicy,
    *,
    reps: Iterable[str] | None = None,
    day: date | None = None,
) -> list[CallList]:
    """Each rep's list for their local today (or ``day``), ranked, with full cards.

    One rep at a time, from that rep's rows only (:func:`.selection.rep_candidates`), under
    one population prior for the whole pass: a rep's list costs that rep's open calls,
    replies and customers with some value, whatever the size of the base. Several reps'
    calls, replies, last calls and pauses are read together first, one query per table
    (:func:`.selection.all_signals`), then their stats rows in one pass ordered by rep,
    each rep ranked as its rows arrive (one rep's customers in memory at a time); the cards
    of everyone listed are then written with one read of their customer records and mail.
    """
    chosen = store.calls.reps(reps)
    if not chosen:
        return []
    prior = prior_for(store)
    if len(chosen) == 1:
        return finish(store, [rank_rep(store, chosen[0], now, policy, prior, day=day)], now, prior)
    ids = [r.external_id for r in chosen if r.external_id]
    shared = all_signals(store, ids, now)
    by_id = {r.external_id: r for r in chosen}
    made: dict[str, Ranked] = {}
    segments = sorted(prior[0].segment_gap_days)
    for owner, valued in store.calls.reps_valued(ids, segments):  # one pass over their stats
        read = (shared[owner], valued)
        made[owner] = rank_rep(store, by_id[owner], now, policy, prior, day=day, read=read)
    for rep in chosen:  # nobody with any value
        if rep.external_id not in made:
            read = (
                shared.get(rep.external_id, RepSignals([], [], {}, set())),
                RepStats.of(segments, []),
            )
            made[rep.external_id] = rank_rep(store, rep, now, policy, prior, day=day, read=read)
    return finish(store, [made[rep.external_id] for rep in chosen], now, prior)


@dataclass(frozen=True)
class Ranked:
    """One rep's list before its cards are written: who is on it, in order."""

    rep: Rep
    today: date
    zone: ZoneInfo
    top: list[Candidate]
    last: dict[int, PastCall]
    more: int


def rank_rep(
    store: Store,
    rep: Rep,
    now: datetime,
    policy: ListPolicy,
    prior: tuple[Population, LapseModel],
    *,
    day: date | None = None,
    read: tuple[RepSignals, RepStats] | None = None,
) -> Ranked:
    """One rep's list, ranked (see :func:`build_lists`); ``read``: its inputs, when read
    with other reps'."""
    found = rep_candidates(store, rep.external_id, now, prior, read)
    zone = rep_zone(rep)
    today = day or local_day(rep, now)
    end = day_start(today + timedelta(days=1), zone)
    start = day_start(today, zone)
    committed: list[Candidate] = []  # listed first, by priority
    others: list[Candidate] = []  # flagged with nothing due today, standing exact
    loose: list[int] = []  # the same, by their stats rows: ranked with the plain ones
    for cid, candidate in found.candidates.items():
        mine = found.calls_of.get(cid, [])
        candidate.calls = [
            c for c in mine if c.due_at < end and c.due_at >= start - timedelta(days=TASK_DAYS)
        ]
        if any(c.due_at >= end for c in mine) and not candidate.calls:
            continue  # scheduled for another day
        called = found.last.get(cid)
        if (
            called is not None
            and called.called_at + policy.cooldown(called) > start
            and not any(c.created_at >= called.called_at for c in candidate.calls)
        ):
            continue  # called recently, and nobody asked for another call since
        if cid in found.paused and not candidate.calls:
            continue
        if candidate.committed:
            committed.append(candidate)
        elif not candidate.flagged:
            continue
        elif candidate.row is not None:
            loose.append(candidate.row)
        else:
            others.append(candidate)
    counted = len(committed) + len(others) + len(loose) + len(found.plain)
    # The sort key: commitments first, then priority, then id; exact for all who may be
    # listed, approximate for the others (see digest/standings.py).
    first = found.first(committed, policy.size)
    ranked = [(False, -c.priority, c.customer_id) for c in first]
    ranked.extend((True, -c.priority, c.customer_id) for c in others)
    best = found.best(loose, policy.size - len(first))
    ranked.extend((True, -priority, cid) for cid, (priority, _) in best.items())
    top: list[Candidate] = []
    for _, _, cid in heapq.nsmallest(policy.size, ranked):
        chosen = found.candidates.get(cid) or Candidate(cid, flagged=True, known=best[cid][1])
        found.settle(chosen)
        top.append(chosen)
    return Ranked(rep, today, zone, top, found.last, counted - len(top))


def finish(
    store: Store, ranked: list[Ranked], now: datetime, prior: tuple[Population, LapseModel]
) -> list[CallList]:
    """The ranked lists with their cards, everyone listed read at once."""
    chosen = [c for r in ranked for c in r.top]
    words(store, chosen, now, prior)
    customers, touches_of = card_inputs(store, [c.customer_id for c in chosen], now)
    return [
        CallList(
            r.rep,
            r.today,
            _cards(r.top, customers, touches_of, r.last, r.zone, r.today, texts(r.rep.locale)),
            r.more,
        )
        for r in ranked
    ]


def words(
    store: Store, chosen: list[Candidate], now: datetime, prior: tuple[Population, LapseModel]
) -> None:
    """Give the listed candidates ranked by their standing alone their full assessment
    (the card's reason and questions)."""
    missing = [c.customer_id for c in chosen if c.assessment is None and c.known is not None]
    assessed: dict[int, Assessment] = {}
    for start in range(0, len(missing), ASSESS_CHUNK):
        chunk = missing[start : start + ASSESS_CHUNK]
        assessed.update(assess_customers(store, now, customer_ids=chunk, prior=prior))
    for candidate in chosen:
        if candidate.assessment is None and candidate.known is not None:
            candidate.assessment = assessed.get(candidate.customer_id)


def card_inputs(
    store: Store, ids: list[int], now: datetime
) -> tuple[dict[int, Customer], dict[int, list[Touch]]]:
    """The customer records and recent mail of these customers, for their cards."""
    customers = store.customers.customers_by_ids(ids)
    touches_of: dict[int, list[Touch]] = defaultdict(list)
    ordered = sorted(set(ids))
    for start in range(0, len(ordered), ASSESS_CHUNK):
        chunk = ordered[start : start + ASSESS_CHUNK]
        for t in store.calls.touches(chunk, now - timedelta(days=HISTORY_DAYS)):
            touches_of[t.customer_id].append(t)
    return customers, touches_of


def cards(
    store: Store,
    chosen: list[Candidate],
    last: dict[int, PastCall],
    now: datetime,
    zone: ZoneInfo,
    today: date,
    t: Texts | None = None,
) -> list[CallItem]:
    """The full cards of the chosen candidates, ranked in this order (in ``t``'s words)."""
    customers, touches_of = card_inputs(store, [c.customer_id for c in chosen], now)
    return _cards(chosen, customers, touches_of, last, zone, today, t or texts(DEFAULT))


def _cards(
    chosen: list[Candidate],
    customers: dict[int, Customer],
    touches_of: dict[int, list[Touch]],
    last: dict[int, PastCall],
    zone: ZoneInfo,
    today: date,
    t: Texts,
) -> list[CallItem]:
    items = []
    for rank, candidate in enumerate(chosen, 1):
        customer = customers.get(candidate.customer_id)
        if customer is None:
            continue
        mine = touches_of.get(candidate.customer_id, [])
        reasons = reasons_now(candidate, zone, t, today)
        items.append(
            CallItem(
                customer=customer,
                rank=rank,
                priority=candidate.priority,
                value_at_risk=candidate.value_at_risk,
                value_per_year=candidate.value_per_year,
                why=[r.line for r in reasons],
                person=person_to_ask(customer),
                history=mail_history(mine, zone, t),
                replies=_replies(candidate, zone, t),
                last_call=last_call_words(last.get(candidate.customer_id), zone, t),
                questions=questions(
                    candidate.assessment,
                    customer,
                    mine,
                    last.get(candidate.customer_id),
                    candidate.reply,
                    t,
                ),
                dates=upcoming_dates(customer.important_dates, today),
                interests=list(customer.interests),
                headline=reasons[0].short if reasons else "",
            )
        )
    return items


def assess_one(store: Store, customer_id: int, now: datetime) -> Assessment | None:
    """One customer's standing today, without assessing everyone."""
    return assess_customers(store, now, customer_ids=[customer_id]).get(customer_id)


def candidate_for(store: Store, customer_id: int, now: datetime, until: datetime) -> Candidate:
    """One customer's signals as a list would see them: calls due before ``until``, the
    newest waiting reply, today's assessment (for the outcome form's header)."""
    found = Candidate(customer_id, assess_one(store, customer_id, now))
    found.calls = [c for c in store.calls.open_calls([customer_id]) if c.due_at < until]
    replies = store.calls.waiting_replies(now - timedelta(days=REPLY_DAYS), [customer_id])
    found.reply = replies[-1] if replies else None
    return found


def why_now(
    candidate: Candidate, zone: ZoneInfo, t: Texts | None = None, today: date | None = None
) -> list[str]:
    """Why this customer is on the list, in the words the card uses, strongest first."""
    return [r.line for r in reasons_now(candidate, zone, t or texts(DEFAULT), today)]


def _replies(candidate: Candidate, zone: ZoneInfo, t: Texts) -> list[str]:
    reply = candidate.reply
    if reply is None:
        return []
    day = t.date(reply.received_at.astimezone(zone), t.gettext("dd MMM"))
    return [f"{day}: {reply.text.strip()[:600]}"]
