"""Correcting a saved call outcome, on both databases: within the edit window the new answer
replaces the old one, each changed field is logged (who, when, old -> new), and what the old
answer did is undone (a mis-tapped do-not-contact, a call-again, a follow-up); after the
window nothing changes and the rep is told how to record a new call instead.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from reengage import authoring
from reengage.digest import CallContext, CallReport, OutcomeError, record_outcome
from reengage.digest.corrections import EDIT_WINDOW, correct_outcome
from reengage.models import CustomerStatus, NextStep, Reached, StopReason, WorthIt
from reengage.store import Store
from tests.integration import digest_world as w

NOW = w.NOW
TODAY = NOW.date()
NO_ANSWER = CallReport(Reached.NOBODY, WorthIt.YES, NextStep.NOTHING)


def _context(store: Store) -> tuple[CallContext, int]:
    w.fill(store)
    w.mailed_and_called(store)  # Ana is running through habit-lapsed-tips
    ws, _ = w.workspace(Path("."))
    library = authoring.CampaignLibrary(ws)
    library.reload()
    ana = store.customers.customer_ids(["bakery"])["bakery"]
    ctx = CallContext(ana, "R1", dict(library.campaigns), "what-we-changed", "web", "digest:t1")
    return ctx, ana


def _running(store: Store, customer_id: int) -> list[str]:
    rows = store.sending.enrollment_history([customer_id], NOW + timedelta(days=3650))
    return sorted(campaign for _, campaign, status, _ in rows if status == "active")


def _status(store: Store, customer_id: int) -> str:
    return store.customers.customers_by_ids([customer_id])[customer_id].status


def test_a_mis_tapped_do_not_contact_is_undone_and_the_change_logged(store: Store) -> None:
    ctx, ana = _context(store)
    assert _running(store, ana) == ["habit-lapsed-tips"]
    dnc = CallReport(Reached.NOBODY, WorthIt.YES, NextStep.DO_NOT_CONTACT)
    acted = record_outcome(store, ctx, dnc, NOW, today=TODAY)
    assert acted.outcome is not None and acted.outcome.id is not None
    assert _status(store, ana) == CustomerStatus.DO_NOT_CONTACT
    assert _running(store, ana) == []

    later = NOW + timedelta(hours=2)
    changes = correct_outcome(store, ctx, acted.outcome.id, NO_ANSWER, later, today=TODAY)

    assert [(c.field, c.old_value, c.new_value) for c in changes] == [
        ("next_step", "do_not_contact", "nothing")
    ]
    assert store.calls.outcome_changes(acted.outcome.id) == changes
    assert (changes[0].changed_by, changes[0].changed_at) == ("R1", later)
    assert _status(store, ana) == CustomerStatus.ACTIVE
    assert _running(store, ana) == ["habit-lapsed-tips"]  # the sequence resumes
    saved = store.calls.outcome_by_id(acted.outcome.id)
    assert saved is not None and saved.next_step == "nothing"


def test_after_the_window_a_correction_is_refused_and_nothing_changes(store: Store) -> None:
    ctx, ana = _context(store)
    dnc = CallReport(Reached.NOBODY, WorthIt.YES, NextStep.DO_NOT_CONTACT)
    acted = record_outcome(store, ctx, dnc, NOW, today=TODAY)
    assert acted.outcome is not None and acted.outcome.id is not None

    too_late = NOW + EDIT_WINDOW + timedelta(minutes=1)
    with pytest.raises(OutcomeError) as refused:
        correct_outcome(store, ctx, acted.outcome.id, NO_ANSWER, too_late, today=TODAY)

    assert "within 24 hours" in refused.value.problems["form"]
    assert "reengage calls log" in refused.value.problems["form"]
    assert store.calls.outcome_changes(acted.outcome.id) == []
    assert _status(store, ana) == CustomerStatus.DO_NOT_CONTACT


def test_a_corrected_call_again_leaves_the_list_and_a_follow_up_stops(store: Store) -> None:
    ctx, ana = _context(store)
    again = CallReport(
        Reached.DECISION_MAKER,
        WorthIt.YES,
        NextStep.CALL_AGAIN,
        reason=StopReason.PRICE,
        call_again_on=TODAY + timedelta(days=5),
    )
    acted = record_outcome(store, ctx, again, NOW, today=TODAY)
    assert acted.outcome is not None and acted.outcome.id is not None
    assert next(c.reason for c in store.calls.open_calls([ana])).startswith("call-again:")

    follow = CallReport(
        Reached.DECISION_MAKER, WorthIt.YES, NextStep.FOLLOW_UP, reason=StopReason.PRICE
    )
    first = NOW + timedelta(hours=1)
    made = correct_outcome(store, ctx, acted.outcome.id, follow, first, today=TODAY)
    assert {c.field for c in made} == {"next_step", "call_again_on"}
    assert store.calls.open_calls([ana]) == []  # the call they set is off the list
    assert _running(store, ana) == ["what-we-changed"]

    # A second correction undoes the first one's effects, not the original's.
    second = NOW + timedelta(hours=3)
    quiet = CallReport(
        Reached.DECISION_MAKER, WorthIt.NO, NextStep.NOTHING, reason=StopReason.PRICE
    )
    correct_outcome(store, ctx, acted.outcome.id, quiet, second, today=TODAY)
    assert "what-we-changed" not in _running(store, ana)
    log = store.calls.outcome_changes(acted.outcome.id)
    assert [(c.field, c.old_value, c.new_value) for c in log][-2:] == [
        ("worth", "yes", "no"),
        ("next_step", "follow_up", "nothing"),
    ]


def test_a_correction_that_changes_nothing_logs_nothing(store: Store) -> None:
    ctx, _ = _context(store)
    acted = record_outcome(store, ctx, NO_ANSWER, NOW, today=TODAY)
    assert acted.outcome is not None and acted.outcome.id is not None
    at = datetime(2026, 11, 23, 12, tzinfo=NOW.tzinfo)
    assert correct_outcome(store, ctx, acted.outcome.id, NO_ANSWER, at, today=TODAY) == []
    assert store.calls.outcome_changes(acted.outcome.id) == []
