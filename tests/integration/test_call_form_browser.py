"""The outcome form on a phone and a desk, in English and Chinese, in headless Chromium.

At 390 px and 1200 px wide, for a rep whose locale is ``en`` and one whose locale is
``zh-CN``: "nobody answered" is saved in one tap after the link opens; every tap target is
at least 44 px high; nothing scrolls sideways at 390 px; a form sent incomplete comes back
with its error summary on top, holding the focus; the confirmation repeats what was saved,
leads to the next client and lets the rep correct a mis-tapped "do not contact", which is
undone. Screenshots go to the ``artifacts`` folder (this Chromium has no Chinese font, so
Chinese words are checked in the DOM, not on the pictures).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from reengage.models import CustomerStatus
from reengage.models.calls import DigestStatus
from reengage.store.tables import REPS
from tests.conftest import ON_SQLITE_ONLY
from tests.integration.test_calls_browser import (
    TODAY,
    Morning,
    artifacts,
    fill,
    follow,
    morning,
    save,
)
from tests.integration.test_pages_browser import tab

__all__ = ["artifacts", "morning"]  # fixtures, used by name

WIDTHS = [390, 1200]
WORDS = {
    "en": {
        "no_answer": "No answer",
        "recorded": "The call is recorded",
        "nobody": "Nobody (no answer, voicemail)",
        "missing": "choose whom you spoke to",
        "nothing_saved": "Nothing is saved yet.",
        "required": "required",
    },
    "zh-CN": {
        "no_answer": "无人接听",
        "recorded": "通话已记录",
        "nobody": "没人（无人接听、语音信箱）",
        "missing": "请选择你和谁通了话",
        "nothing_saved": "尚未保存任何内容。",
        "required": "必填",
    },
}
# What a rep taps: each must be at least 44 px high (the touch-target guideline).
TARGETS = (
    "label.option, button, select, summary, input[type=date], input[type=text], textarea, "
    "a.tel, .actions a, .errors a"
)


def speaks(m: Morning, locale: str) -> None:
    """Dana, the rep, reads reengage in ``locale``."""
    with m.store.engine.begin() as conn:
        conn.execute(REPS.update().where(REPS.c.external_id == "R1").values(locale=locale))


def sized(page: Page, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 844 if width < 600 else 900})


def small_targets(page: Page) -> list[str]:
    """Visible tap targets under 44 px high, named by their text."""
    found: list[Any] = page.evaluate(
        """(selector) => [...document.querySelectorAll(selector)]
            .filter(e => e.getClientRects().length > 0)
            .map(e => [e.getBoundingClientRect().height, e.textContent.trim().slice(0, 40)])
            .filter(([h]) => h < 44)
            .map(([h, text]) => `${text} (${h.toFixed(1)} px)`)""",
        TARGETS,
    )
    return [str(f) for f in found]


def scrolls_sideways(page: Page) -> bool:
    return bool(
        page.evaluate("document.documentElement.scrollWidth > document.documentElement.clientWidth")
    )


@ON_SQLITE_ONLY
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_nobody_answered_is_one_tap_with_big_targets_and_no_sideways_scroll(
    browser: Browser, morning: Morning, artifacts: Path, width: int, locale: str
) -> None:
    m, said = morning, WORDS[locale]
    speaks(m, locale)
    before = m.outcomes()
    with tab(browser, javascript=False) as t:
        sized(t.page, width)
        follow(t, m, m.digest(), "Ana Li")
        expect(t.page.locator("html")).to_have_attribute("lang", locale)
        assert small_targets(t.page) == []
        if width == 390:
            assert not scrolls_sideways(t.page)
        # Whom they reached and what happens next are marked required, to eyes and readers.
        reached = t.page.locator("#field-reached")
        expect(reached.locator("legend")).to_contain_text(said["required"])
        expect(reached).to_have_attribute("aria-required", "true")
        expect(t.page.locator("#reached-nobody")).to_have_attribute("required", "")
        t.page.screenshot(path=str(artifacts / f"call-form-{locale}-{width}.png"), full_page=True)

        button = t.page.locator("#save-no-answer")
        expect(button).to_have_text(said["no_answer"])
        assert button.bounding_box() is not None  # on the first screen, no scrolling
        box = button.bounding_box() or {"y": 10_000, "height": 0}
        assert box["y"] + box["height"] <= t.page.viewport_size["height"]  # type: ignore[index]
        with t.page.expect_response(lambda r: r.request.method == "POST") as posted:
            button.click()  # the one tap
        assert posted.value.status == 200
        expect(t.page.locator("#result")).to_have_text(said["recorded"])
        expect(t.page.locator("#saved")).to_contain_text(said["nobody"])
        assert small_targets(t.page) == []
        if width == 390:
            assert not scrolls_sideways(t.page)
        t.page.screenshot(path=str(artifacts / f"call-done-{locale}-{width}.png"), full_page=True)
    assert m.outcomes() == before + 1
    ana = m.cid("bakery")
    assert m.store.calls.last_calls([ana])[ana].reached == "nobody"


@ON_SQLITE_ONLY
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_an_incomplete_form_comes_back_with_the_summary_on_top_and_focused(
    browser: Browser, morning: Morning, artifacts: Path, width: int, locale: str
) -> None:
    m, said = morning, WORDS[locale]
    speaks(m, locale)
    with tab(browser, javascript=False) as t:
        sized(t.page, width)
        follow(t, m, m.digest(), "Ana Li")
        with t.page.expect_response(lambda r: r.request.method == "POST") as posted:
            t.page.locator("#save").click()
        t.page.wait_for_load_state()
        assert posted.value.status == 422
        summary = t.page.locator("#errors")
        expect(summary).to_contain_text(said["nothing_saved"])
        expect(summary).to_contain_text(said["missing"])
        expect(t.page.locator("#field-reached .error")).to_have_text(said["missing"])
        expect(summary).to_be_focused()
        top = t.page.evaluate("document.getElementById('errors').getBoundingClientRect().top")
        assert 0 <= top < 400  # in view, near the top of the screen
        assert small_targets(t.page) == []
        if width == 390:
            assert not scrolls_sideways(t.page)
        t.page.screenshot(path=str(artifacts / f"call-errors-{locale}-{width}.png"))


def test_the_date_is_labelled_in_the_reps_format(browser: Browser, morning: Morning) -> None:
    m = morning
    speaks(m, "zh-CN")
    with tab(browser, javascript=False) as t:
        follow(t, m, m.digest(), "Ana Li")
        label = t.page.locator("label[for=call_again_on]")
        example = TODAY + timedelta(days=7)
        expect(label).to_contain_text(f"{example.year}/{example.month}/{example.day}")
        expect(t.page.locator("p.muted").first).to_contain_text(f"{TODAY.year}年")


def test_a_mis_tapped_do_not_contact_is_corrected_from_the_confirmation(
    browser: Browser, morning: Morning, artifacts: Path
) -> None:
    m = morning
    listed = m.dana()
    ids = [item.customer.id for item in listed.items if item.customer.id is not None]
    m.store.calls.start_digest(
        "R1",
        listed.day,
        token="digest-token",
        customer_ids=ids,
        more=0,
        status=DigestStatus.SENT,
        now=m.clock["now"],
        lease=timedelta(minutes=5),
    )
    ana = m.cid("bakery")
    after_ana = listed.items[ids.index(ana) + 1].customer
    with tab(browser, javascript=False) as t:
        sized(t.page, 390)
        follow(t, m, m.digest(), "Ana Li")
        fill(t.page, reached="Someone else", reason="Price", worth="Yes")
        fill(t.page, next_step="Do not contact them again (no mail, no calls)")
        assert save(t.page) == 200
        assert m.store.customers.customers_by_ids([ana])[ana].status == "do_not_contact"
        expect(t.page.locator("#saved")).to_contain_text("Do not contact them again")
        expect(t.page.locator("#next")).to_contain_text(f"Next client: {after_ana.first_name}")
        expect(t.page.locator("#until")).to_contain_text("You can correct it until")
        t.page.screenshot(path=str(artifacts / "call-done-dnc-390.png"), full_page=True)

        m.clock["now"] += timedelta(hours=1)
        t.page.locator("#correct").click()
        expect(t.page.locator("#correcting")).to_be_visible()
        expect(t.page.get_by_label("Someone else", exact=True)).to_be_checked()
        fill(t.page, next_step="Nothing for now")
        with t.page.expect_response(lambda r: r.request.method == "POST"):
            t.page.get_by_role("button", name="Save the correction").click()
        expect(t.page.locator("#result")).to_have_text("Your correction is saved")
        expect(t.page.locator("#acted")).to_contain_text("What the earlier answer did is undone")
        t.page.screenshot(path=str(artifacts / "call-corrected-390.png"), full_page=True)

        t.page.locator("#next").click()
        expect(t.page.locator("h1")).to_contain_text(after_ana.first_name or "")

        m.clock["now"] += timedelta(hours=24)  # past the window: the link says so
        t.page.go_back()
        t.page.go_back()
        t.page.reload()
        expect(t.page.locator("#result")).to_have_text("Already recorded")
        expect(t.page.locator("#correct")).to_have_count(0)
    assert m.store.customers.customers_by_ids([ana])[ana].status == CustomerStatus.ACTIVE
    changes = m.store.calls.outcome_changes(m.store.calls.outcomes_since(None)[-1].id or 0)
    assert [(c.field, c.old_value, c.new_value, c.changed_by) for c in changes] == [
        ("next_step", "do_not_contact", "nothing", "R1")
    ]
