"""What a person decides about mails of uncertain fate, and how each enrollment moves on.

A mail is ``unknown`` when the line to the mail server was lost after it went out (it may
have arrived), and ``failed`` when its template could not be made for that customer. Neither
is ever sent again by itself; its enrollment waits. A person settles each one:

- ``sent``: the customer got it (the provider's log says so): recorded as sent when it was
  attempted, and the sequence goes on from there;
- ``resend``: it did not arrive, or the template is fixed: sent once more at the next pass;
- ``skip``: never to be sent; the sequence goes on with its next step.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

from reengage.campaigns import Campaign
from reengage.logs import get_logger
from reengage.models import MessageStatus
from reengage.sendtimes import next_step
from reengage.store import Store

log = get_logger(__name__)
HELD = (MessageStatus.UNKNOWN.value, MessageStatus.FAILED.value)


class Decision(StrEnum):
    """What became of a held mail, as a person decided."""

    SENT = "sent"
    RESEND = "resend"
    SKIP = "skip"


def settle(
    store: Store,
    campaigns: dict[str, Campaign],
    decision: Decision,
    now: datetime,
    *,
    message_ids: Sequence[int] | None = None,
    campaign_id: str | None = None,
    status: str | None = None,
) -> Counter[str]:
    """Settle held mails (these ids, or every one — of a campaign, of a status) as decided.

    Returns what was done, by outcome. A mail whose campaign or step is gone ends its
    enrollment (there is no next step to move on to).
    """
    statuses = [status] if status else list(HELD)
    held = store.sending.held_for_settling(
        statuses, message_ids=message_ids, campaign_id=campaign_id
    )
    done: Counter[str] = Counter()
    if decision is Decision.RESEND:
        again, ended = store.sending.resend_held(held, now)
        done["queued to be sent again"] = again
        if ended:
            done["skipped: their sequence had ended (paused, replied, unsubscribed)"] = ended
    else:
        for message in held:
            campaign = campaigns.get(message.campaign_id)
            step = campaign.step(message.step_key) if campaign else None
            if campaign is None or step is None:
                store.sending.end_enrollment(message.enrollment_id, "campaign_removed", now)
                done["ended: campaign or step removed"] += 1
                continue
            index = campaign.steps.index(step)
            moment = message.created_at if decision is Decision.SENT else now
            store.sending.settle_held(
                message,
                MessageStatus.SENT if decision is Decision.SENT else MessageStatus.SKIPPED,
                note=f"settled by a person: {decision.value}",
                now=now,
                next_step=next_step(campaign, index, moment),
            )
            done["marked sent" if decision is Decision.SENT else "skipped"] += 1
    if done:
        log.info("held_mails_settled", decision=decision.value, **dict(done))
    return done
