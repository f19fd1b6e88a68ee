"""The rep's morning in a real browser: Debian's headless Chromium, driven by Playwright.

Dana's digest is sent through the real mailer to an SMTP server on loopback, opened in
Chromium and saved as a screenshot; each card's "Record the call outcome" link is
followed to the outcome form served by the app on loopback; the form is filled in and
saved like a rep would, and the store and later digests show what it did. Every request
the browser makes off loopback fails the test (see ``tab``).
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from reengage import authoring
from reengage.digest import (
    CallList,
    build_lists,
    compose_digest,
    send_digests,
)
from reengage.mailer import SmtpMailer
from reengage.models import CustomerStatus
from reengage.store import Store
from reengage.store.sending import NewEnrollment
from reengage.tokens import verify
from reengage.web import WebConfig, create_app
from tests.integration import digest_world as w
from tests.integration.mail_world import in_own_thread
from tests.integration.smtp_sink import running_sink
from tests.integration.test_pages_browser import Tab, tab
from tests.integration.web_server import local, running_app

BERLIN = ZoneInfo("Europe/Berlin")
TODAY = w.NOW.astimezone(BERLIN).date()  # Monday 23 November 2026, Dana's morning


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    """Where screenshots go: $REENGAGE_TEST_ARTIFACTS when set (CI keeps them), else tmp."""
    chosen = os.environ.get("REENGAGE_TEST_ARTIFACTS")
    folder = Path(chosen) if chosen else tmp_path / "artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass
class Morning:
    """Dana's clients in a real database, and the web app answering the digest's links."""

    store: Store
    base: str
    clock: dict[str, datetime]

    def cid(self, external_id: str) -> int:
        return self.store.customers.customer_ids([external_id])[external_id]

    def dana(self, now: datetime | None = None) -> CallList:
        """Dana's list as the digest run at ``now`` (her morning today) would make it."""
        return build_lists(self.store, now or w.NOW, w.policy(), reps=["R1"])[0]

    def listed_on(self, day: date) -> list[str]:
        """Who is on Dana's digest on ``day``, made that morning at 07:30 her time."""
        morning = datetime.combine(day, datetime.min.time(), BERLIN) + timedelta(hours=7.5)
        return [item.customer.external_id for item in self.dana(morning).items]

    def digest(self) -> EmailMessage:
        ws, cfg = w.workspace(Path("."))
        return compose_digest(ws, cfg, self.dana(), w.NOW, "test")

    def active(self, external_id: str) -> list[str]:
        """The campaigns the customer is running through now."""
        rows = self.store.sending.enrollment_history(
            [self.cid(external_id)], w.NOW + timedelta(days=3650)
        )
        return sorted(campaign for _, campaign, status, _ in rows if status == "active")

    def outcomes(self) -> int:
        return len(self.store.calls.outcomes_since(None))


@pytest.fixture
def morning(store: Store) -> Iterator[Morning]:
    w.fill(store)
    w.mailed_and_called(store)
    ws, _ = w.workspace(Path("."))
    library = authoring.CampaignLibrary(ws)
    library.reload()
    assert "what-we-changed" in library.campaigns
    clock = {"now": w.NOW}
    config = WebConfig.from_settings(
        w.settings(), clock=lambda: clock["now"], campaigns=lambda: library.campaigns
    )
    with running_app(create_app(store, config)) as base:
        yield Morning(store, base, clock)


def html_of(message: Any) -> str:
    return str(message.get_body(("html",)).get_content())


def text_of(message: Any) -> str:
    return str(message.get_body(("plain",)).get_content())


OUTCOME_LINK = re.compile("Record the call outcome|记录通话结果")


def card(page: Page, name: str) -> Locator:
    """The digest's card for the client called ``name``."""
    found = page.locator(".card").filter(has_text=name)
    expect(found).to_have_count(1)
    return found


def follow(t: Tab, m: Morning, message: EmailMessage, name: str) -> str:
    """Open the digest in the tab, take the card's outcome link, open it on the test app."""
    t.page.set_content(html_of(message))
    # In the rep's language: "Record the call outcome" or "记录通话结果".
    link = card(t.page, name).get_by_role("link", name=OUTCOME_LINK)
    href = link.get_attribute("href")
    assert href is not None and "/call/" in href
    url = local(href, m.base)
    shown = t.page.goto(url)
    assert shown is not None and shown.status == 200
    return url


def fill(
    page: Page,
    *,
    reached: str | None = None,
    contact: str | None = None,
    reason: str | None = None,
    in_their_words: str | None = None,
    scope: str | None = None,
    win_back: str | None = None,
    worth: str | None = None,
    next_step: str | None = None,
    call_again_on: date | None = None,
) -> None:
    """Fill the outcome form by its labels, as a rep reads them (opening "More" first when
    a folded field is asked for)."""
    folded = (contact, in_their_words, scope, win_back)
    more = page.locator("details#more")
    if any(f is not None for f in folded) and more.get_attribute("open") is None:
        more.locator("summary").click()
    for label in (reached, scope, worth, next_step):
        if label is not None:
            page.get_by_label(label, exact=True).check()
    if contact is not None:
        page.get_by_label("Their name").fill(contact)
    if reason is not None:
        page.get_by_label("Main reason").select_option(label=reason)
    if in_their_words is not None:
        page.get_by_label("In their words").fill(in_their_words)
    if win_back is not None:
        page.get_by_label("What would win them back?").fill(win_back)
    if call_again_on is not None:
        page.get_by_label("Day to call again").fill(call_again_on.isoformat())


def save(page: Page) -> int:
    """Press "Save the outcome"; the status the app answered with."""
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_role("button", name="Save the outcome").click()
    page.wait_for_load_state()
    return posted.value.status


# -- the digest ----------------------------------------------------------------------------------


def test_the_digest_in_chromium_shows_each_client_with_what_a_rep_needs(
    browser: Browser, morning: Morning, artifacts: Path
) -> None:
    m = morning
    with running_sink() as (sink, port):
        ws, cfg = w.workspace(Path("."), port)

        async def send() -> None:
            mailer = SmtpMailer.from_settings(w.settings(port))
            try:
                await send_digests(m.store, mailer, ws, cfg, w.NOW)
            finally:
                await mailer.close()

        in_own_thread(asyncio.run, send())
    assert [r["to"] for r in sink.received] == [["dana@acme.example"]]  # Sam: not his morning
    message = sink.received[0]["message"]
    text = text_of(message)
    listed = m.dana()
    assert [i.customer.external_id for i in listed.items] == [
        "replied",
        "wholesale",
        "bakery",
        "hostile",
    ]

    with tab(browser) as t:
        t.page.set_content(html_of(message))
        t.page.wait_for_load_state("load")  # an injected image would have errored by now
        shot = artifacts / "digest-dana.png"
        t.page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000

        expect(t.page.locator("h1")).to_contain_text("Good morning, Dana: 4 clients to call today")
        for item in listed.items:
            shown = t.page.locator(f"#client-{item.rank}")
            facts = [
                item.name,
                item.person.name,
                *item.why,
                f"€{item.value_at_risk:,.0f}",
                *(str(line) for line in item.history),
                item.last_call or "never called",
                *item.questions,
                *(str(d) for d in item.dates),
                *item.interests,
            ]
            facts += [f for f in (item.customer.company, item.person.phone) if f]
            for fact in facts:
                expect(shown).to_contain_text(fact)
                assert fact in text, f"{fact!r} is in the HTML but not the text part"
            assert item.questions[:2] == [
                "Why did you decide to stop?",
                "What could we do to win you back?",
            ]
            href = shown.get_by_role("link", name="Record the call outcome").get_attribute("href")
            assert href is not None and href in text
            token = href.rsplit("/call/", 1)[1]
            payload = verify(w.SECRET, "call", token)
            assert (payload["c"], payload["r"], payload["d"]) == (
                item.customer.id,
                "R1",
                TODAY.isoformat(),
            )

        # The cards a rep reads first carry the signals the fixture was built to show.
        bakery = card(t.page, "Ana Li")
        for fact in (
            "Ana's Bakery",
            "Maria Li (Owner) — decision maker",
            "Their phone: +49 170 555 0101",
            "Usually orders every 10 days; silent for 60 days",
            "habit-lapsed-tips · we-miss-you — opened 14 Nov, clicked 14 Nov",
            "spoke to Maria Li",
            "stopped over price, systemic",
            "Last time they mentioned price: be ready to explain what has changed since.",
            "They clicked https://shop.example/espresso",
            "contract anniversary (7 years): Sat 28 Nov, in 5 days",
            "espresso, pastry",
        ):
            expect(bakery).to_contain_text(fact)
        expect(card(t.page, "Bo Chen")).to_contain_text("Kim Chen (Purchasing Manager)")
        expect(card(t.page, "Bo Chen")).to_contain_text("70% smaller")
        expect(card(t.page, "Rita")).to_contain_text("lost your catalogue")

        # The hostile name and company are shown as text: nothing was created or run.
        hostile = card(t.page, "Zoë")
        expect(hostile.locator("h2")).to_have_text(f"4. {w.HOSTILE}")
        expect(hostile.locator(".company")).to_have_text(w.HOSTILE_COMPANY)
        assert t.page.locator("img, script").count() == 0
        assert t.dialogs == []
    assert w.HOSTILE in text


# -- recording outcomes --------------------------------------------------------------------------


def test_do_not_contact_ends_every_enrollment_and_keeps_them_off_later_digests(
    browser: Browser, morning: Morning, artifacts: Path
) -> None:
    m = morning
    ana = m.cid("bakery")
    m.store.sending.enroll(
        [NewEnrollment(ana, "declining-check-in", False, "check-in", w.NOW)], w.NOW
    )
    assert m.active("bakery") == ["declining-check-in", "habit-lapsed-tips"]
    later = [TODAY + timedelta(days=n) for n in (1, 15, 60)]
    assert all("bakery" in m.listed_on(day) for day in later[1:]), "without the call: listed"

    with tab(browser) as t:
        follow(t, m, m.digest(), "Ana Li")
        expect(t.page.locator("h1")).to_have_text("Ana Li")
        expect(t.page.locator("#company")).to_have_text("Ana's Bakery")
        expect(t.page.locator("#ask-for")).to_contain_text("Maria Li (Owner), decision maker")
        expect(t.page.locator("#ask-for")).to_contain_text("Phone +49 170 555 0101")
        expect(t.page.locator("#why")).to_contain_text("Usually orders every 10 days")
        # The card's tailored prompts follow the two questions every call asks.
        asked = t.page.locator("#questions li")
        expect(asked.nth(0)).to_have_text("Why did you decide to stop?")
        expect(asked.nth(1)).to_have_text("What could we do to win you back?")
        expect(t.page.locator("#questions")).to_contain_text(
            "They clicked https://shop.example/espresso"
        )
        t.page.screenshot(path=str(artifacts / "outcome-form.png"), full_page=True)
        fill(
            t.page,
            reached="The decision maker",
            contact="Maria Li",
            reason="Service",
            in_their_words="Three late deliveries and nobody called back",
            scope="Systemic: other clients are likely hit too",
            worth="Yes",
            next_step="Do not contact them again (no mail, no calls)",
        )
        assert save(t.page) == 200
        expect(t.page.locator("#result")).to_have_text("The call is recorded")
        expect(t.page.locator("#acted")).to_contain_text("marked do-not-contact")
        expect(t.page.locator("#acted")).to_contain_text("2 running email sequence(s) stopped")

    assert m.active("bakery") == []
    assert m.store.customers.customers_by_ids([ana])[ana].status == CustomerStatus.DO_NOT_CONTACT
    assert m.store.customers.contactable([ana], w.NOW) == {}
    for day in later:
        assert "bakery" not in m.listed_on(day), day
    saved = m.store.calls.last_calls([ana])[ana]
    assert (saved.reason, saved.scope, saved.contact_name) == ("service", "systemic", "Maria Li")
    assert saved.reason_text == "Three late deliveries and nobody called back"


def test_follow_up_enrolls_them_in_the_follow_up_campaign(
    browser: Browser, morning: Morning
) -> None:
    m = morning
    bo = m.cid("wholesale")
    m.store.sending.enroll(
        [NewEnrollment(bo, "habit-lapsed-tips", False, "we-miss-you", w.NOW)], w.NOW
    )
    with tab(browser) as t:
        follow(t, m, m.digest(), "Bo Chen")
        expect(t.page.locator("#ask-for")).to_contain_text("Kim Chen (Purchasing Manager)")
        fill(
            t.page,
            reached="Someone else",
            contact="Lee Park",
            reason="Delivery",
            scope="Systemic: other clients are likely hit too",
            win_back="Next-day delivery, which we have since April",
            worth="Yes",
            next_step="Send the “here is what we changed” follow-up",
        )
        assert save(t.page) == 200
        expect(t.page.locator("#acted")).to_contain_text(
            "They will get the follow-up campaign what-we-changed."
        )
        expect(t.page.locator("#acted")).to_contain_text("1 running email sequence(s) stopped")
    assert m.active("wholesale") == ["what-we-changed"]


def test_call_again_on_a_day_puts_them_on_that_days_digest_and_not_before(
    browser: Browser, morning: Morning
) -> None:
    m = morning
    again = TODAY + timedelta(days=4)  # inside the 14-day cooldown: only the rep's date counts
    with tab(browser, javascript=False) as t:  # the form needs no script
        follow(t, m, m.digest(), "Rita")
        expect(t.page.locator("#why")).to_contain_text("Replied on 22 Nov")
        fill(
            t.page,
            reached="The decision maker",
            reason="Habit lapsed / just forgot",
            worth="Yes",
            next_step="Call again on",
            call_again_on=again,
            win_back="Send the new catalogue first",
        )
        assert save(t.page) == 200
        expect(t.page.locator("#acted")).to_contain_text(
            "They are on your list again on Friday, November 27, 2026."
        )
    for n in range(1, 4):
        assert "replied" not in m.listed_on(TODAY + timedelta(days=n)), n
    assert m.listed_on(again)[0] == "replied"  # a call the rep set comes first
    that_morning = datetime.combine(again, datetime.min.time(), BERLIN) + timedelta(hours=7.5)
    ws, cfg = w.workspace(Path("."))
    digest = compose_digest(ws, cfg, m.dana(that_morning), that_morning, "later")
    assert "You asked to call again today." in text_of(digest)
    assert "Send the new catalogue first" in text_of(digest)


# -- the form's checks -----------------------------------------------------------------------------


def test_a_missing_answer_is_shown_beside_its_field_and_the_input_is_kept(
    browser: Browser, morning: Morning
) -> None:
    m = morning
    note = "</textarea><script>alert('note')</script> lost the catalogue"
    with tab(browser) as t:
        follow(t, m, m.digest(), "Ana Li")
        fill(
            t.page,
            contact="Maria Li",
            reason="Went to a competitor",
            in_their_words=note,
            worth="Later, not now",
            next_step="Call again on",
        )
        assert save(t.page) == 422
        expect(t.page.locator("#errors")).to_contain_text("Nothing is saved yet")
        expect(t.page.locator("#field-reached .error")).to_have_text("choose whom you spoke to")
        expect(t.page.locator("#field-next_step .error")).to_have_text(
            "choose the day to call again"
        )
        expect(t.page.locator("#field-worth .error")).to_have_count(0)
        # What the rep typed and chose is still there.
        expect(t.page.get_by_label("Their name")).to_have_value("Maria Li")
        expect(t.page.get_by_label("Main reason")).to_have_value("competitor")
        expect(t.page.get_by_label("In their words")).to_have_value(note)
        expect(t.page.get_by_label("Later, not now", exact=True)).to_be_checked()
        expect(t.page.get_by_label("Call again on", exact=True)).to_be_checked()
        assert t.page.locator("script").count() == 0 and t.dialogs == []
        assert m.outcomes() == 1  # only the call from 20 days ago

        fill(t.page, reached="The decision maker", call_again_on=TODAY + timedelta(days=90))
        assert save(t.page) == 200
        expect(t.page.locator("#result")).to_have_text("The call is recorded")
    assert m.outcomes() == 2
    saved = m.store.calls.last_calls([m.cid("bakery")])[m.cid("bakery")]
    assert (saved.worth, saved.reason_text) == ("later", note)


def test_submitting_twice_records_the_call_once(browser: Browser, morning: Morning) -> None:
    m = morning
    message = m.digest()
    with tab(browser) as first, tab(browser) as second:
        url = follow(first, m, message, "Bo Chen")
        follow(second, m, message, "Bo Chen")  # the same link open twice, say on two devices
        fill(first.page, reached="Someone else", reason="Price", worth="Yes")
        fill(first.page, next_step="Send the “here is what we changed” follow-up")
        assert save(first.page) == 200
        expect(first.page.locator("#result")).to_have_text("The call is recorded")

        fill(second.page, reached="The decision maker", reason="Quality", worth="No")
        fill(second.page, next_step="Do not contact them again (no mail, no calls)")
        assert save(second.page) == 200
        expect(second.page.locator("#result")).to_have_text("Already recorded")
        expect(second.page.locator("#acted")).to_contain_text("nothing was changed")

        first.page.goto(url)  # the link again, later: says so rather than offering the form
        expect(first.page.locator("#result")).to_have_text("Already recorded")
        expect(first.page.locator("form")).to_have_count(0)
    bo = m.cid("wholesale")
    assert m.outcomes() == 2  # the call from the fixture, and this one
    assert m.store.calls.last_calls([bo])[bo].reason == "price"
    assert m.store.customers.customers_by_ids([bo])[bo].status == CustomerStatus.ACTIVE
    assert m.active("wholesale") == ["what-we-changed"]


def test_a_tampered_link_shows_a_plain_problem_and_records_nothing(
    browser: Browser, morning: Morning
) -> None:
    m = morning
    with tab(browser) as t:
        url = follow(t, m, m.digest(), "Ana Li")
        head, token = url.rsplit("/call/", 1)
        # The token is sealed: nothing in it can be read or edited, so one changed
        # character (in the sealed payload, past the nonce) is all a forger can do.
        middle = len(token) // 2
        forged = f"{token[:middle]}{'A' if token[middle] != 'A' else 'B'}{token[middle + 1 :]}"
        shown = t.page.goto(f"{head}/call/{forged}")
        assert shown is not None and shown.status == 400
        expect(t.page.locator("h1")).to_have_text("This link does not work")
        expect(t.page.locator("body")).to_contain_text("Nothing was recorded")
        expect(t.page.locator("form")).to_have_count(0)
    assert m.outcomes() == 1


def test_a_hostile_name_on_the_form_is_shown_as_text(browser: Browser, morning: Morning) -> None:
    m = morning
    with tab(browser) as t:
        follow(t, m, m.digest(), "Zoë")
        t.page.wait_for_load_state("load")
        expect(t.page.locator("h1")).to_have_text(w.HOSTILE)
        expect(t.page.locator("#company")).to_have_text(w.HOSTILE_COMPANY)
        assert w.HOSTILE in t.page.title()
        assert t.page.locator("img, script").count() == 0
        assert t.dialogs == []
