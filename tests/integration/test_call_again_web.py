"""A call again on the outcome form, over real HTTP on both databases: correcting the day to a
day off confirms the working day it is on the list, as the first save does; the form's hint
shows the day in the rep's short form, and a day typed so is read.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest

from reengage.store import Store
from reengage.web import create_app
from reengage.web.call_form import typed_day
from tests.integration import digest_world as w
from tests.integration.test_calls_web import SAVE, Served, config
from tests.integration.web_server import client, running_app


@pytest.fixture
def served(store: Store) -> Iterator[Served]:
    w.fill(store)
    clock = {"now": w.NOW}  # Monday 23 November 2026
    with running_app(create_app(store, config(clock))) as base:
        yield Served(store, base, clock)


def test_a_call_again_corrected_to_a_saturday_says_it_is_on_mondays_list(served: Served) -> None:
    again = {**SAVE, "next_step": "call_again", "call_again_on": "2026-11-26"}
    url = served.url("bakery")
    with client() as http:
        first = http.post(url, data=again)
        assert first.status_code == 200
        assert "They are on your list again on Thursday, November 26, 2026." in first.text
        corrected = http.post(url, data={**again, "call_again_on": "2026-11-28", "correct": "1"})
    assert corrected.status_code == 200, corrected.text
    assert "Your correction is saved" in corrected.text
    assert "They are on your list again on Monday, November 30, 2026." in corrected.text
    assert "(Saturday, November 28, 2026 is not a working day.)" in corrected.text


def test_a_day_typed_as_the_hint_shows_it_is_read(served: Served) -> None:
    with client() as http:
        form = http.get(served.url("bakery"))
        hinted = http.post(
            served.url("bakery"),
            data={**SAVE, "next_step": "call_again", "call_again_on": "11/30/26"},
        )
    assert "for example 11/30/26" in form.text  # a week from the rep's today
    assert hinted.status_code == 200
    assert "They are on your list again on Monday, November 30, 2026." in hinted.text


def test_each_locale_reads_its_own_short_form_and_refuses_half_a_day() -> None:
    assert typed_day("2026/12/18", "zh-CN") == typed_day("12/18/26", "en") == date(2026, 12, 18)
    assert typed_day(" 2026-12-18 ", "zh-CN") == date(2026, 12, 18)
    for bad in ("12/18", "soon", "", "99/99/99"):
        with pytest.raises(ValueError, match="is not a day"):
            typed_day(bad, "en")
