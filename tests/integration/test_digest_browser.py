"""The digest on a phone (390 px) and a desk (1200 px), in English and in Chinese.

Dana's digest is composed from her clients in a real database and opened in Debian's
headless Chromium. A rep first reads the compact list (name, company, one-line reason, a
``tel:`` link, the value), taps a name to jump to its card, and reads nothing wider than
the phone. A rep whose locale is zh-CN gets every word of it in Chinese (this Chromium has
no Chinese font: the screenshots show boxes, so the words are checked in the DOM).
"""

from __future__ import annotations

import re
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Page, expect

from reengage.ingest import Kind, import_items
from tests.conftest import ON_SQLITE_ONLY
from tests.integration import digest_world as w
from tests.integration.test_calls_browser import (  # the fixtures, reused
    Morning,
    artifacts,
    html_of,
    morning,
    text_of,
)
from tests.integration.test_pages_browser import tab

__all__ = ["artifacts", "morning"]  # fixtures pytest finds by name

DIALLABLE = re.compile(r"tel:\+?[0-9]+")
LABELS = {  # a label of the card in each language, and words only the other has
    "en": ("Why now", "What to ask", "Good morning, Dana: 4 clients to call today"),
    "zh-CN": ("为什么是现在", "要问什么", "早上好，Dana：今天要致电 4 位客户"),
}


def digest_for(m: Morning, locale: str) -> EmailMessage:
    """Dana's digest after her locale was imported as ``locale`` (the real importer)."""
    rep = {**w.REPS[0], "locale": locale}
    assert import_items(m.store, Kind.REPS, [rep], now=w.NOW, zone=ZoneInfo("UTC")).ok
    return m.digest()


def open_at(page: Page, message: EmailMessage, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 844})
    page.set_content(html_of(message))
    page.wait_for_load_state("load")


@ON_SQLITE_ONLY
@pytest.mark.parametrize("locale", ["en", "zh-CN"])
@pytest.mark.parametrize("width", [390, 1200])
def test_the_compact_list_comes_first_dials_and_fits_the_screen(
    browser: Browser, morning: Morning, artifacts: Path, locale: str, width: int
) -> None:
    message = digest_for(morning, locale)
    listed = morning.dana()
    with tab(browser) as t:
        open_at(t.page, message, width)
        t.page.screenshot(path=str(artifacts / f"digest-{locale}-{width}.png"), full_page=True)
        t.page.screenshot(path=str(artifacts / f"digest-{locale}-{width}-first-screen.png"))
        wide, view = t.page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert wide <= view, f"the digest scrolls sideways at {width} px ({wide} > {view})"

        rows = t.page.locator("#list > li")
        expect(rows).to_have_count(len(listed.items))
        first_card = t.page.locator(".card").first.bounding_box()
        compact = t.page.locator("#list").bounding_box()
        assert first_card is not None and compact is not None
        assert compact["y"] + compact["height"] <= first_card["y"]  # the list above the cards

        for item, row in zip(listed.items, rows.all(), strict=True):
            expect(row).to_contain_text(item.name)
            expect(row).to_contain_text(item.headline)
            expect(row).to_contain_text(f"€{item.value_at_risk:,.0f}")
            dial = row.locator("a[href^='tel:']")
            phone = item.person.phone or item.customer.phone
            if phone:
                href = dial.get_attribute("href") or ""
                assert DIALLABLE.fullmatch(href), href
                assert href[4:].lstrip("+") in re.sub(r"\D", "", phone)
            else:
                expect(dial).to_have_count(0)

        # A name in the list is a link to its card.
        last = listed.items[-1]
        rows.last.locator(f"a[href='#client-{last.rank}']").click()
        expect(t.page.locator(f"#client-{last.rank}")).to_be_in_viewport()

        label, question, greeting = LABELS[locale]
        expect(t.page.locator("h1")).to_have_text(greeting)
        expect(t.page.locator(".card").first).to_contain_text(label)
        expect(t.page.locator(".card").first).to_contain_text(question)
        assert t.page.locator("html").get_attribute("lang") == locale
        for other, words in LABELS.items():
            if other != locale:
                expect(t.page.locator("body")).not_to_contain_text(words[0])


def test_a_chinese_rep_gets_subject_text_dates_money_and_prompts_in_chinese(
    browser: Browser, morning: Morning, artifacts: Path
) -> None:
    message = digest_for(morning, "zh-CN")
    assert message["Subject"] == "今天要致电 4 位客户，11月23日周一"
    assert message["Content-Language"] == "zh-CN"
    text = text_of(message)
    for words in (
        "早上好，Dana：今天要致电 4 位客户 (2026年11月23日星期一)",
        "为什么是现在",
        "您为什么决定停止购买？",  # the two fixed questions
        "我们可以做些什么来重新赢得您的信任？",
        "最近 3 笔订单比之前少了 70%",  # the wholesaler's decline
        "合同周年（7 周年）：11月28日周六，5 天后",  # an anniversary, the locale's date
        "面临流失的价值",
    ):
        assert words in text, words
    with tab(browser) as t:
        open_at(t.page, message, 390)
        bakery = t.page.locator(".card").filter(has_text="Ana's Bakery")
        expect(bakery).to_contain_text("找谁")
        expect(bakery).to_contain_text("决策人")
        expect(bakery).to_contain_text("客户公司的联系方式")
        expect(bakery.locator(".value")).to_contain_text("每年 €")


def test_whom_to_ask_for_is_apart_from_the_accounts_own_contacts(
    browser: Browser, morning: Morning, artifacts: Path
) -> None:
    message = digest_for(morning, "en")
    with tab(browser) as t:
        open_at(t.page, message, 390)
        bakery = t.page.locator(".card").filter(has_text="Ana's Bakery")
        bakery.screenshot(path=str(artifacts / "digest-en-390-bakery.png"))
        who = bakery.locator(".who")
        expect(who).to_contain_text("Maria Li (Owner) — decision maker")
        expect(who).to_contain_text("Their phone: +49 170 555 0101")
        expect(who).not_to_contain_text("ana@bakery.example")  # not hers: the account's
        account = bakery.locator(".account")
        expect(account).to_contain_text("Phone: +49 30 1234567")
        expect(account).to_contain_text("Email: ana@bakery.example")
        expect(account.locator("a[href='tel:+49301234567']")).to_have_count(1)
        # Rita has nobody else on file: she is the one to ask for, and it says so.
        rita = t.page.locator(".card").filter(has_text="Rita")
        expect(rita.locator(".who")).to_contain_text("Rita — the customer")
        expect(rita.locator(".account")).to_contain_text("rita@replied.example")


def test_each_card_asks_at_most_five_and_leads_a_decline_with_the_decline(
    browser: Browser, morning: Morning
) -> None:
    message = digest_for(morning, "en")
    with tab(browser) as t:
        open_at(t.page, message, 1200)
        for shown in t.page.locator(".card").all():
            asks = shown.locator(".ask li")
            assert 2 <= asks.count() <= 5
            expect(asks.nth(0)).to_have_text("Why did you decide to stop?")
            expect(asks.nth(1)).to_have_text("What could we do to win you back?")
        # Bo Chen still buys weekly, but smaller orders: the decline leads, and the
        # silence that follows says he is on rhythm instead of "silent for 5 days (0.7×)".
        bo = t.page.locator(".card").filter(has_text="Chen Wholesale")
        why = bo.locator("ul").first.locator("li")
        expect(why.first).to_contain_text("70% smaller")
        expect(bo).not_to_contain_text("silent for")
        expect(bo).to_contain_text("on rhythm")
        row = t.page.locator("#list > li").filter(has_text="Bo Chen")
        expect(row).to_contain_text("orders 70% smaller")
        # The value at risk in one phrase, never one number twice.
        expect(bo.locator(".value")).to_have_text(re.compile(r"€[\d,]+ (of their €[\d,]+ )?a year"))
