"""The preferences page in a real browser: Debian's headless Chromium, driven by Playwright.

A real mail is sent through the daemon; its unsubscribe and pause links are opened in
Chromium against the app on loopback, the buttons are clicked, and the store and the
daemon's later sends show the effect. Every request the browser makes off loopback is
refused and fails the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Dialog, Page, Route, expect

from reengage.store import Store
from tests.integration.mail_world import EMAIL, World, mail_world, pause_url, unsubscribe_url

EVIL_NAME = "<img src=x onerror=alert(1)>"
JAVASCRIPT = pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])


@dataclass
class Tab:
    page: Page
    dialogs: list[str] = field(default_factory=list)
    off_loopback: list[str] = field(default_factory=list)


@contextmanager
def tab(browser: Browser, *, javascript: bool = True) -> Iterator[Tab]:
    """A fresh browser context and page that may only talk to 127.0.0.1."""
    context = browser.new_context(java_script_enabled=javascript)
    opened = Tab(context.new_page())

    def loopback_only(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            opened.off_loopback.append(route.request.url)
            route.abort()

    def record_dialog(dialog: Dialog) -> None:
        opened.dialogs.append(dialog.message)
        dialog.dismiss()

    context.route("**/*", loopback_only)
    opened.page.on("dialog", record_dialog)
    try:
        yield opened
    finally:
        context.close()
    assert opened.off_loopback == []


@pytest.fixture
def world(store: Store, tmp_path: Path) -> Iterator[World]:
    with mail_world(store, tmp_path) as w:
        yield w


@pytest.fixture
def evil_world(store: Store, tmp_path: Path) -> Iterator[World]:
    with mail_world(store, tmp_path, first_name=EVIL_NAME) as w:
        yield w


def first_choice(page: Page) -> str | None:
    """The id of the button in the first (highlighted) form on the page."""
    return page.locator("form.choice").first.locator("button").get_attribute("id")


@JAVASCRIPT
def test_unsubscribing_by_clicking_suppresses_and_stops_all_mail(
    browser: Browser, world: World, javascript: bool
) -> None:
    w = world
    with tab(browser, javascript=javascript) as t:
        shown = t.page.goto(unsubscribe_url(w))
        assert shown is not None and shown.status == 200
        expect(t.page.locator("h1")).to_have_text("Email preferences")
        expect(t.page.locator("#name")).to_have_text("Ana")
        assert first_choice(t.page) == "unsubscribe"
        assert not w.store.sending.is_suppressed(EMAIL), "looking at the page changes nothing"

        with t.page.expect_response(lambda r: r.request.method == "POST") as posted:
            t.page.click("#unsubscribe")
        assert posted.value.status == 200
        expect(t.page.locator("#result")).to_have_text("You are unsubscribed")
        expect(t.page.locator("body")).to_contain_text(EMAIL)

    assert w.store.sending.is_suppressed(EMAIL)
    assert w.kinds() == ["unsubscribe"]
    w.days(20)  # the second step and the rep's call would have come by now
    assert len(w.sink.received) == 1


def test_a_name_made_of_markup_is_shown_as_text(browser: Browser, evil_world: World) -> None:
    w = evil_world
    with tab(browser) as t:
        t.page.goto(unsubscribe_url(w))
        t.page.wait_for_load_state("load")  # an injected image would have errored by now
        expect(t.page.locator("#name")).to_have_text(EVIL_NAME)
        assert EVIL_NAME in t.page.inner_text("body")
        assert t.page.locator("img").count() == 0
        assert t.dialogs == []


@JAVASCRIPT
def test_pausing_stops_mail_for_90_days_without_suppressing(
    browser: Browser, world: World, javascript: bool
) -> None:
    w = world
    clicked_at = w.clock["now"]
    with tab(browser, javascript=javascript) as t:
        t.page.goto(pause_url(w))
        assert first_choice(t.page) == "pause", "the pause link offers pausing first"
        expect(t.page.locator("#pause")).to_have_text("Pause for 90 days")

        t.page.click("#pause")
        until = clicked_at + timedelta(days=90)
        expect(t.page.locator("#result")).to_have_text(f"Paused until {until:%d %B %Y}")

    assert not w.store.sending.is_suppressed(EMAIL)
    assert w.kinds() == ["pause"]
    w.days(20)  # well inside the pause; the second step would have come by now
    assert len(w.sink.received) == 1
