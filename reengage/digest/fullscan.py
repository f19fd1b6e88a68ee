"""The call lists as they were first built: every open call and waiting reply in the base,
every customer of the chosen reps assessed. Kept as the reference the indexed lists
(:func:`reengage.digest.calllist.build_lists`) are held to — by the exactness test and the
digest bench — not used by the service.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta

from reengage.digest.calllist import (
    CallList,
    ListPolicy,
    cards,
    day_start,
    local_day,
    rep_zone,
)
from reengage.digest.selection import REPLY_DAYS, TASK_DAYS, Candidate, worth_a_call
from reengage.models import CustomerStatus
from reengage.scoring import assess_customers
from reengage.store import Store
from reengage.store.calls import OpenCall


def build_lists_full_scan(
    store: Store,
    now: datetime,
    policy: ListPolicy,
    *,
    reps: Iterable[str] | None = None,
    day: date | None = None,
) -> list[CallList]:
    """Each rep's list as the full scan builds it (the reference; see the module)."""
    chosen = store.calls.reps(reps)
    if not chosen:
        return []
    reps_of = [r.external_id for r in chosen]
    assessments = list(assess_customers(store, now, rep_external_ids=reps_of).values())
    assessed = {a.profile.customer_id: a for a in assessments}
    candidates: dict[int, Candidate] = {}
    for a in assessments:
        if a.value_per_year > 0 and worth_a_call(a):
            candidates[a.profile.customer_id] = Candidate(a.profile.customer_id, a, flagged=True)
    open_calls = store.calls.open_calls()
    for call in open_calls:
        if call.due_at >= now - timedelta(days=TASK_DAYS):
            candidates.setdefault(call.customer_id, Candidate(call.customer_id))
    for reply in store.calls.waiting_replies(now - timedelta(days=REPLY_DAYS)):
        candidates.setdefault(reply.customer_id, Candidate(reply.customer_id))
        candidates[reply.customer_id].reply = reply  # the newest one wins (oldest first)
    for cid, candidate in candidates.items():
        candidate.assessment = candidate.assessment or assessed.get(cid)
    facts = store.calls.call_facts(candidates)
    last = store.calls.last_calls(candidates)
    calls_of: dict[int, list[OpenCall]] = defaultdict(list)
    for call in open_calls:
        calls_of[call.customer_id].append(call)

    lists: list[CallList] = []
    by_rep: dict[str, list[Candidate]] = defaultdict(list)
    for cid, candidate in candidates.items():
        fact = facts.get(cid)
        if fact and fact.rep_external_id and fact.status == CustomerStatus.ACTIVE.value:
            by_rep[fact.rep_external_id].append(candidate)
    for rep in chosen:
        zone = rep_zone(rep)
        today = day or local_day(rep, now)
        end = day_start(today + timedelta(days=1), zone)
        start = day_start(today, zone)
        ranked: list[Candidate] = []
        for candidate in by_rep.get(rep.external_id, []):
            cid = candidate.customer_id
            mine = calls_of.get(cid, [])
            candidate.calls = [
                c for c in mine if c.due_at < end and c.due_at >= start - timedelta(days=TASK_DAYS)
            ]
            if any(c.due_at >= end for c in mine) and not candidate.calls:
                continue  # scheduled for another day
            called = last.get(cid)
            if (
                called is not None
                and called.called_at + policy.cooldown(called) > start
                and not any(c.created_at >= called.called_at for c in candidate.calls)
            ):
                continue  # called recently, and nobody asked for another call since
            paused = facts[cid].paused_until
            if paused is not None and paused > now and not candidate.calls:
                continue
            if not candidate.committed and not candidate.flagged:
                continue
            ranked.append(candidate)
        ranked.sort(key=lambda c: (not c.committed, -c.priority, c.customer_id))
        top = ranked[: policy.size]
        lists.append(
            CallList(rep, today, cards(store, top, last, now, zone, today), len(ranked) - len(top))
        )
    return lists
