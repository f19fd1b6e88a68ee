"""An outcome never re-enrols a do-not-contact customer, on both databases: recording one
reads the customer's status under a lock in its own transaction, so a follow-up (or a call
again) for someone marked do-not-contact — earlier, or by an outcome saved at the same
moment — starts nothing, and the rep is told so instead of "they will get the follow-up".
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

from reengage import authoring
from reengage.digest import CallContext, CallReport, record_outcome
from reengage.digest.outcomes import Acted
from reengage.models import CallTaskStatus, CustomerStatus, NextStep, Reached, StopReason, WorthIt
from reengage.store import Store
from reengage.store.outcomes import OutcomeActs, save_outcome
from reengage.web import create_app
from tests.integration import digest_world as w
from tests.integration.test_calls_web import Served, config
from tests.integration.web_server import client, running_app

NOW = w.NOW
TODAY = NOW.date()
FOLLOW = CallReport(
    Reached.DECISION_MAKER, WorthIt.YES, NextStep.FOLLOW_UP, reason=StopReason.PRICE
)
DNC = CallReport(Reached.NOBODY, WorthIt.NO, NextStep.DO_NOT_CONTACT)


def _context(store: Store, key: str | None = None) -> tuple[CallContext, int]:
    ws, _ = w.workspace(Path("."))
    library = authoring.CampaignLibrary(ws)
    library.reload()
    ana = store.customers.customer_ids(["bakery"])["bakery"]
    return CallContext(ana, "R1", dict(library.campaigns), "what-we-changed", "cli", key), ana


def _running(store: Store, customer_id: int) -> list[str]:
    rows = store.sending.enrollment_history([customer_id], NOW + timedelta(days=3650))
    return sorted(campaign for _, campaign, status, _ in rows if status == "active")


def _status(store: Store, customer_id: int) -> str:
    return store.customers.customers_by_ids([customer_id])[customer_id].status


def test_a_follow_up_for_a_customer_already_do_not_contact_starts_nothing(store: Store) -> None:
    w.fill(store)
    ctx, ana = _context(store)
    record_outcome(store, ctx, DNC, NOW, today=TODAY)
    later = NOW + timedelta(minutes=5)
    acted = record_outcome(store, ctx, FOLLOW, later, today=TODAY)
    lines = acted.summary()
    assert "They are do-not-contact: no follow-up." in lines
    assert not any("follow-up campaign" in line for line in lines), lines
    assert _running(store, ana) == []
    assert _status(store, ana) == CustomerStatus.DO_NOT_CONTACT
    again = CallReport(
        Reached.NOBODY, WorthIt.YES, NextStep.CALL_AGAIN, call_again_on=TODAY + timedelta(days=3)
    )
    told = record_outcome(store, ctx, again, later, today=TODAY).summary()
    assert "They are do-not-contact: no call again." in told
    assert not any("on your list again" in line for line in told), told
    assert store.calls.open_calls([ana]) == []


def test_a_follow_up_saved_while_a_do_not_contact_is_being_saved_waits_and_starts_nothing(
    store: Store,
) -> None:
    w.fill(store)
    ctx, ana = _context(store)
    dnc_acts = OutcomeActs(
        ana, close_calls_as=CallTaskStatus.CANCELLED, answer_replies=True, do_not_contact=True,
        end_reason="do_not_contact",
    )  # fmt: skip
    values = {
        "customer_id": ana, "rep_external_id": "R1", "called_at": NOW, "reached": "decision_maker",
        "worth": "no", "next_step": "do_not_contact", "source": "cli", "created_at": NOW,
    }  # fmt: skip
    result: list[Acted] = []
    with store.engine.begin() as conn:  # the do-not-contact, saved but not yet committed
        save_outcome(conn, values, dnc_acts, NOW)
        other = threading.Thread(
            target=lambda: result.append(record_outcome(store, ctx, FOLLOW, NOW, today=TODAY))
        )
        other.start()
        time.sleep(1.0)  # the follow-up has reached the customer's lock (or, before: finished)
    other.join(timeout=60)
    [acted] = result
    assert "They are do-not-contact: no follow-up." in acted.summary()
    assert acted.enrolled_in is None
    assert _status(store, ana) == CustomerStatus.DO_NOT_CONTACT
    assert _running(store, ana) == []


def test_the_form_of_a_customer_marked_do_not_contact_since_the_digest_says_so(
    store: Store,
) -> None:
    w.fill(store)
    clock = {"now": NOW}
    ctx, ana = _context(store)
    with running_app(create_app(store, config(clock))) as base:
        served = Served(store, base, clock)
        url = served.url("bakery")
        with client() as http:
            fresh = http.get(url)
            assert "marked do-not-contact" not in fresh.text
            record_outcome(store, ctx, DNC, NOW, today=TODAY)  # e.g. from the terminal
            shown = http.get(url)
            posted = http.post(
                url,
                data={
                    "reached": "decision_maker",
                    "reason": "price",
                    "worth": "yes",
                    "next_step": "follow_up",
                },
            )
    assert shown.status_code == 200
    assert "They have been marked do-not-contact since this list was made" in shown.text
    assert shown.text.index("marked do-not-contact since") < shown.text.index("<form")
    assert posted.status_code == 200
    assert "They are do-not-contact: no follow-up." in posted.text
    assert "They will get the follow-up campaign" not in posted.text
    assert _running(store, ana) == []
