"""What a plan tells the marketer beside its days: the assumptions it makes, in words, and a
rendered sample of each mail step, with every failure named."""

from __future__ import annotations

from datetime import datetime

from reengage.campaigns import Campaign
from reengage.compose import Workspace, render_for
from reengage.detect import assess
from reengage.scoring import prior_for
from reengage.sendtimes import condition_met
from reengage.simulate.plan import PlannedMail, Simulation
from reengage.store import Store
from reengage.workdays import WorkingDays

SAMPLE = 50  # customers rendered per mail step: ~2 ms each


def assumptions(
    ws: Workspace,
    campaigns: list[Campaign],
    sample: int,
    days: WorkingDays | None = None,
    now: datetime | None = None,
) -> list[str]:
    """What the plan takes for granted, in words for the marketer reading it."""
    lines = [
        "Nobody buys, opens, clicks, replies, unsubscribes or bounces, and no rep records a "
        "call outcome: every enrollment runs to its last step.",
        "Customers are judged as they stand now, one day more silent each day; each enters on "
        "the first day they meet a campaign's audience (checked every 24 hours from the "
        "plan's start), higher-priority campaigns choosing first.",
        "Enrollments already running carry on from their next step and their mail is in the "
        "plan; their customers enter no other campaign (unless it runs in parallel) until they "
        "finish. An enrollment held for a person (a send whose outcome is unknown) keeps its "
        "customer for the whole plan and sends nothing.",
        "Nobody enters a campaign within its not_enrolled_within_days of their last "
        "enrollment in it (before or during the plan); paused customers enter nothing before "
        "their pause ends; customers without consent, marked do-not-contact or suppressed "
        "never enter.",
    ]
    # What the daemon's rule says of each condition when nobody has responded to anything.
    judged = {
        s.condition: condition_met(s.condition, c, i, set())
        for c in campaigns
        for i, s in enumerate(c.steps)
        if s.condition is not None
    }
    if judged:
        holds = ", ".join(sorted(str(k) for k, met in judged.items() if met))
        fails = ", ".join(sorted(str(k) for k, met in judged.items() if not met))
        said = [f"{holds} holds (the step is sent)"] if holds else []
        said += [f"{fails} does not (the step is skipped)"] if fails else []
        lines.append(
            f"Step conditions: as nobody opens, clicks or replies, {'; '.join(said)}. A running "
            "enrollment's condition is judged on what its customer really did."
        )
    if no_audience := sorted(c.id for c in campaigns if c.audience is None):
        lines.append(
            f"{', '.join(no_audience)}: entered only from a rep's call outcome, so nobody new "
            "enters it here; enrollments already in it still send."
        )
    if disabled := sorted(c.id for c in campaigns if not c.enabled and c.audience is not None):
        lines.append(
            f"{', '.join(disabled)}: disabled, so nobody new enters it; enrollments already "
            "in it still send."
        )
    cap = (
        f"the frequency cap of {ws.max_emails_per_week} mails a customer in any 7 days (mail "
        "sent in the last 7 days counts)"
        if ws.max_emails_per_week
        else "no frequency cap (none is set)"
    )
    lines.append(
        f"Mail goes at the first moment its send window is open (in the recipient's zone "
        f"unless the campaign names one), under {cap}. Dates are calendar days in {ws.zone}."
    )
    if any(s.call is not None for c in campaigns for s in c.steps):
        working = (days or WorkingDays()).describe(now.date() if now else None)
        lines.append(
            "A campaign's call is counted on the day its rep's list shows it: the rep's own "
            f"date, or after a day off the next working day ({working}: REENGAGE_DIGEST_DAYS, "
            "REENGAGE_DIGEST_SKIP_DATES)."
        )
    if sample:
        lines.append(
            f"Each mail step was rendered for up to {sample} of its planned customers, spread "
            "across them and every language among them included; the rest were not rendered."
        )
    return lines


def render_sample(
    ws: Workspace,
    store: Store,
    plan: Simulation,
    campaigns: dict[str, Campaign],
    locales: dict[int, str | None],
    sample: int,
) -> None:
    """Render each mail step for a bounded, deterministic sample of its planned customers,
    as the daemon would at the send moment (their rhythm as of then: nobody bought)."""
    if sample <= 0:
        return
    firsts: dict[tuple[str, str], dict[int, PlannedMail]] = {}
    for mail in plan.mails:
        firsts.setdefault((mail.campaign_id, mail.step_key), {}).setdefault(mail.customer_id, mail)
    chosen = {
        key: _spread(sorted(mails.values(), key=lambda m: m.customer_id), locales, sample)
        for key, mails in sorted(firsts.items())
    }
    customers = store.customers.customers_by_ids(
        m.customer_id for ms in chosen.values() for m in ms
    )
    reps = store.customers.rep_names(
        c.rep_external_id for c in customers.values() if c.rep_external_id
    )
    profiles = {p.customer_id: p for p in store.detection.profiles(customer_ids=sorted(customers))}
    population, model = prior_for(store)
    for (campaign_id, step_key), mails in chosen.items():
        for mail in mails:
            customer = customers.get(mail.customer_id)
            if customer is None:
                continue
            profile = profiles.get(mail.customer_id)
            plan.rendered += 1
            try:
                render_for(
                    ws,
                    campaigns[campaign_id],
                    step_key,
                    customer,
                    assess(profile, population, mail.at, model) if profile else None,
                    message_key="simulate",
                    now=mail.at,
                    rep_name=reps.get(customer.rep_external_id or ""),
                )
            except Exception as exc:  # any failure at all is what the marketer must see
                reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
                plan.render_failures.append(
                    f"would fail for {mail.customer} ({campaign_id}/{step_key}): {reason}"
                )


def _spread(mails: list[PlannedMail], locales: dict[int, str | None], n: int) -> list[PlannedMail]:
    """Up to ``n`` of ``mails``: one of each language first, then evenly across the list."""
    picked: dict[int, PlannedMail] = {}
    seen: set[str | None] = set()
    for mail in mails:
        locale = locales.get(mail.customer_id)
        if locale not in seen:
            seen.add(locale)
            picked.setdefault(mail.customer_id, mail)
    for i in range(min(n, len(mails))):
        mail = mails[i * len(mails) // min(n, len(mails))]
        picked.setdefault(mail.customer_id, mail)
    return list(picked.values())[:n]
