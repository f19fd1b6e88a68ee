"""What every claimed enrollment is checked against before its mail may go.

Step 2 of the sending protocol (docs/architecture.md): consent, suppression, a pause, the
step's condition, the send window and the weekly cap, read once per claimed batch
(:func:`read_facts`) and decided item by item (:func:`prepare`), which writes what it
decides for an item that will not be sent now; :func:`decide_batch` does both for a batch.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from reengage import metrics
from reengage.campaigns import Campaign, Step
from reengage.compose import Workspace
from reengage.detect import Assessment
from reengage.errors import StoreError
from reengage.logs import get_logger
from reengage.models import Customer, CustomerStatus
from reengage.retries import CAMPAIGN_WAIT, ITEM_ERROR_BACKOFF
from reengage.sendtimes import condition_met, next_send_time, next_step, window_zone
from reengage.store import Store
from reengage.store.sending import Claimed
from reengage.timeutil import as_utc

log = get_logger(__name__)
# Results that move nothing on: the item is due again later.
PUT_OFF = frozenset({"outside_window", "capped", "error", "campaign_unavailable"})


@dataclass
class BatchFacts:
    """Customer rows, suppressions, recent sends and rep names for one claimed batch."""

    customers: dict[int, Customer]
    suppressed: set[str]
    recent_sends: dict[int, list[datetime]]
    rep_names: dict[str, str] = field(default_factory=dict)
    # (step_key, kind) of responses, for enrollments whose next step has a condition
    responses: dict[int, set[tuple[str | None, str]]] = field(default_factory=dict)
    assessments: dict[int, Assessment] = field(default_factory=dict)
    campaigns_incomplete: bool = False  # some campaign file does not load right now
    campaigns_held: frozenset[str] = frozenset()  # their mail cannot be made right now


@dataclass(frozen=True)
class Planned:
    """A claimed enrollment whose mail passed every check and is about to be sent."""

    item: Claimed
    campaign: Campaign
    step: Step
    index: int


def decide_batch(
    store: Store,
    ws: Workspace,
    campaigns: dict[str, Campaign],
    claimed: list[Claimed],
    now: datetime,
    incomplete: bool,
    held: frozenset[str],
) -> tuple[BatchFacts, list[str | Planned]]:
    """The batch's facts, and for each claimed item its result or the plan to send it."""
    facts = read_facts(store, ws, campaigns, claimed, now, incomplete, held)
    outcomes: list[str | Planned] = []
    waiting: Counter[str] = Counter()  # sequences whose campaign does not load, by campaign
    for item in claimed:
        try:
            outcome = prepare(store, ws, campaigns, item, now, facts)
        except StoreError:
            raise  # the database is the problem, not this item: stop the pass
        except Exception as exc:  # one item's surprise never stops the others
            log.exception("dispatch_item_failed", enrollment_id=item.enrollment_id, error=str(exc))
            store.sending.release(item.enrollment_id, now + ITEM_ERROR_BACKOFF)
            outcome = "error"
        if outcome == "campaign_unavailable":
            waiting[item.campaign_id] += 1
        if not isinstance(outcome, Planned):
            metrics.SENDS.labels(result=outcome).inc()
        outcomes.append(outcome)
    for campaign_id, count in sorted(waiting.items()):
        log.warning(
            "enrollments_waiting",
            campaign_id=campaign_id,
            count=count,
            reason="campaign does not load; run reengage validate",
        )
    return facts, outcomes


def read_facts(
    store: Store,
    ws: Workspace,
    campaigns: dict[str, Campaign],
    claimed: list[Claimed],
    now: datetime,
    incomplete: bool,
    held: frozenset[str],
) -> BatchFacts:
    """What every send re-checks, read once for the whole batch rather than once per mail."""
    facts = BatchFacts(
        customers=store.customers.customers_by_ids([c.customer_id for c in claimed]),
        suppressed=store.sending.suppressed_among([c.email for c in claimed]),
        recent_sends=(
            store.sending.sent_since_many([c.customer_id for c in claimed], now - timedelta(days=7))
            if ws.max_emails_per_week
            else {}
        ),
        campaigns_incomplete=incomplete,
        campaigns_held=held,
    )
    conditional = [
        c.enrollment_id
        for c in claimed
        if (campaign := campaigns.get(c.campaign_id)) is not None
        and c.next_step_key is not None
        and (step := campaign.step(c.next_step_key)) is not None
        and step.condition is not None
    ]
    if conditional:
        facts.responses = store.responses.kinds_by_enrollment(conditional)
    facts.rep_names = store.customers.rep_names(
        {c.rep_external_id for c in facts.customers.values() if c.rep_external_id}
    )
    return facts


def prepare(
    store: Store,
    ws: Workspace,
    campaigns: dict[str, Campaign],
    item: Claimed,
    now: datetime,
    facts: BatchFacts,
) -> str | Planned:
    """Everything decided before a mail may go: the result, or the plan to send it."""
    campaign = campaigns.get(item.campaign_id)
    step = campaign.step(item.next_step_key) if campaign and item.next_step_key else None
    if (campaign is None and facts.campaigns_incomplete) or (
        item.campaign_id in facts.campaigns_held
    ):
        # Perhaps its file is only broken (a typo, a template error): the sequence waits
        # for the fix rather than ending for good or failing mail by mail.
        store.sending.release(item.enrollment_id, now + CAMPAIGN_WAIT)
        return "campaign_unavailable"  # logged once per campaign by decide_batch
    if campaign is None or step is None:
        # The campaign or its step was removed or renamed: end explicitly, say so.
        reason = "campaign_removed" if campaign is None else "step_removed"
        store.sending.end_enrollment(item.enrollment_id, reason, now)
        log.warning(
            "enrollment_ended",
            enrollment_id=item.enrollment_id,
            reason=reason,
            campaign_id=item.campaign_id,
            step=item.next_step_key,
        )
        return reason
    index = campaign.steps.index(step)
    if step.call is not None:
        store.sending.add_call_task(
            item,
            step.key,
            step.call.reason,
            step.call.priority,
            now,
            next_step(campaign, index, now),
        )
        return "call_listed"
    if not item.consent or item.status != CustomerStatus.ACTIVE.value:
        store.sending.end_enrollment(item.enrollment_id, "no_consent", now)
        return "no_consent"
    if item.email.lower() in facts.suppressed:
        store.sending.end_enrollment(item.enrollment_id, "suppressed", now)
        return "suppressed"
    customer = facts.customers.get(item.customer_id)
    if customer is not None and customer.paused_until and as_utc(customer.paused_until) > now:
        # Asked for a pause (the preferences page) since this sequence began: it ends, as
        # the pause ended every running one then, whatever held it meanwhile.
        store.sending.end_enrollment(item.enrollment_id, "paused", now)
        return "paused"
    if step.condition is not None and not condition_met(
        step.condition, campaign, index, facts.responses.get(item.enrollment_id, set())
    ):
        store.sending.skip_step(
            item,
            step.key,
            f"condition {step.condition} not met",
            now,
            next_step(campaign, index, now),
        )
        return "condition_skipped"
    zone = window_zone(campaign.send_window, item.timezone, ws.zone)
    window_open = next_send_time(campaign.send_window, zone, now)
    if window_open > now:
        store.sending.release(item.enrollment_id, window_open)
        return "outside_window"
    if ws.max_emails_per_week:
        recent = sorted(facts.recent_sends.get(item.customer_id, []))
        if len(recent) >= ws.max_emails_per_week:
            later = recent[-ws.max_emails_per_week] + timedelta(days=7)
            store.sending.release(
                item.enrollment_id, next_send_time(campaign.send_window, zone, later)
            )
            return "capped"
    if item.customer_id not in facts.customers:
        store.sending.end_enrollment(item.enrollment_id, "customer_gone", now)
        return "customer_gone"
    return Planned(item, campaign, step, index)
