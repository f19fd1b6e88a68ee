"""The results dashboard in a real browser (Debian's headless Chromium, driven by Playwright)
against the web app on loopback, over a store filled through the real code paths.

The page must show every chart as inline SVG, run no script (the strict CSP would block
one and say so in the console), escape whatever it is given, and refuse anyone who has not
signed in. Signing in is a form, once: it sets an HttpOnly, SameSite=Strict cookie, and the
token never rides in an address (a ``?token=`` link signs in once and is redirected away).
Screenshots are kept: under $REENGAGE_TEST_ARTIFACTS when set, else in the test's tmp_path.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from reengage.store import Store
from reengage.store.sending import NewEnrollment
from reengage.web import WebConfig, create_app
from tests.conftest import ON_SQLITE_ONLY
from tests.integration.test_pages_browser import tab
from tests.integration.test_stats import NOW, T0, _customers, fill, generated
from tests.integration.web_server import client, running_app

TOKEN = "dashboard-token-for-tests-0123456789"
MARKUP = "<img src=x onerror=alert(1)>"


@dataclass
class Site:
    base: str
    campaigns: list[str]


@pytest.fixture
def site(store: Store) -> Iterator[Site]:
    """Four campaigns: two from real sends and responses (one without a holdout), one with
    a true lift of 10 points on 1,200 customers, and one whose id is made of markup."""
    fill(store)
    generated(store, {"habit-tips": (0.20, 0.10)}, 1200)
    odd = _customers(store, ["m1", "m2"])
    store.sending.enroll([NewEnrollment(i, MARKUP, False, "hello", T0) for i in odd.values()], T0)
    later = NOW + timedelta(days=5)  # after the last generated order
    config = WebConfig(secret="s" * 40, dashboard_token=TOKEN, clock=lambda: later)
    with running_app(create_app(store, config)) as base:
        yield Site(base, sorted(["follow-up", "habit-tips", "win-back", MARKUP]))


def artifact(tmp_path: Path, name: str) -> Path:
    folder = Path(os.environ.get("REENGAGE_TEST_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


@ON_SQLITE_ONLY
@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_the_dashboard_shows_every_chart_and_runs_no_script(
    browser: Browser, site: Site, tmp_path: Path, javascript: bool, request: pytest.FixtureRequest
) -> None:
    console: list[str] = []
    with tab(browser, javascript=javascript) as t:
        t.page.on("console", lambda message: console.append(_said(message)))
        t.page.set_viewport_size({"width": 1280, "height": 900})
        sign_in(t.page, site.base)
        page = t.page

        expect(page.locator("h1")).to_have_text("Results")
        sections = page.locator("section.campaign")
        assert sorted(sections.evaluate_all("s => s.map(e => e.dataset.campaign)")) == (
            site.campaigns
        )
        # every chart: one lift chart, a funnel and a timeline per campaign, the causes (the
        # lift and causes charts come at two widths; one shows)
        for kind, count in (("lift", 1), ("funnel", 4), ("timeline", 4), ("causes", 1)):
            charts = page.locator(f'figure[data-chart="{kind}"] svg >> visible=true')
            assert charts.count() == count, kind
            for i in range(count):
                box = charts.nth(i).bounding_box()
                assert box is not None and box.get("width", 0) > 300 and box["height"] > 150
        assert page.locator("script").count() == 0

        lift = page.locator('figure[data-chart="lift"] svg').first
        assert "habit-tips: Lift: " in (lift.get_attribute("aria-label") or "")
        expect(page.locator('section[data-campaign="habit-tips"] p.verdict')).to_contain_text(
            "Lift: more came back than in the holdout"
        )
        expect(page.locator('section[data-campaign="win-back"] p.verdict')).to_contain_text(
            "Not enough data yet"
        )
        expect(page.locator('section[data-campaign="follow-up"] p.verdict')).to_have_text(
            "No holdout group: lift cannot be measured"
        )
        causes = page.locator('figure[data-chart="causes"] svg >> visible=true')
        expect(causes).to_contain_text("delivery")
        expect(causes).to_contain_text("systemic")
        # a campaign id made of markup is shown as text, in the page and in its charts
        odd = page.locator("section.campaign").filter(has_text=MARKUP).first
        expect(odd.locator("h2")).to_have_text(MARKUP)
        assert page.locator("img").count() == 0
        assert t.dialogs == []

        name = request.node.name.replace("[", "-").rstrip("]")
        saved = artifact(tmp_path, f"{name}.png")
        page.screenshot(path=str(saved), full_page=True)
        assert saved.stat().st_size > 50_000
    blocked = [line for line in console if "Content Security Policy" in line]
    assert blocked == [], "the page tried to run or load something the CSP refuses"


def sign_in(page: Page, base: str) -> None:
    """Open the dashboard and sign in on its form, as a marketer does once."""
    shown = page.goto(f"{base}/dashboard")
    assert shown is not None and shown.status == 401
    expect(page.locator("h1")).to_have_text("Sign in to the dashboard")
    page.fill("input[name=token]", TOKEN)
    with page.expect_navigation():
        page.click("form button[type=submit]")
    assert page.url == f"{base}/dashboard"
    expect(page.locator("h1")).to_have_text("Results")


def test_signing_in_sets_an_http_only_strict_cookie_and_keeps_the_token_out_of_addresses(
    browser: Browser, site: Site, tmp_path: Path
) -> None:
    with tab(browser, javascript=False) as t:
        addresses: list[str] = []
        t.page.on("request", lambda r: addresses.append(r.url))
        t.page.set_viewport_size({"width": 1000, "height": 700})
        t.page.goto(f"{site.base}/dashboard")
        t.page.screenshot(path=str(artifact(tmp_path, "dashboard-sign-in.png")))
        sign_in(t.page, site.base)
        cookies = t.page.context.cookies()
        assert len(cookies) == 1
        cookie = cookies[0]
        assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
        assert cookie["path"] == "/dashboard"
        assert TOKEN not in cookie["value"]  # the cookie is a sealed session, not the token
        assert all(TOKEN not in address for address in addresses)
        saved = artifact(tmp_path, "dashboard-signed-in.png")
        t.page.screenshot(path=str(saved), full_page=False)
        # Signed in: the dashboard opens again without anything in its address.
        again = t.page.goto(f"{site.base}/dashboard?campaign=win-back")
        assert again is not None and again.status == 200
        expect(t.page.locator("h1")).to_have_text("Results")
        # Signing out ends it.
        with t.page.expect_navigation():
            t.page.click("form[action='/dashboard/sign-out'] button")
        expect(t.page.locator("h1")).to_have_text("Sign in to the dashboard")
        assert t.page.context.cookies() == []


def test_a_token_link_signs_in_once_and_leaves_the_address(browser: Browser, site: Site) -> None:
    with tab(browser, javascript=False) as t:
        shown = t.page.goto(f"{site.base}/dashboard?token={TOKEN}&campaign=win-back")
        assert shown is not None and shown.status == 200
        assert t.page.url == f"{site.base}/dashboard?campaign=win-back"
        expect(t.page.locator("h1")).to_have_text("Results")
        assert t.page.context.cookies()[0]["httpOnly"] is True


def test_the_sign_in_form_refuses_a_post_from_another_site(site: Site) -> None:
    with client() as http:
        answer = http.post(
            f"{site.base}/dashboard/sign-in",
            data={"token": TOKEN},
            headers={"Origin": "https://evil.example"},
        )
    assert answer.status_code == 403 and "set-cookie" not in answer.headers


def test_the_filter_form_narrows_to_one_campaign(browser: Browser, site: Site) -> None:
    with tab(browser, javascript=False) as t:
        sign_in(t.page, site.base)
        t.page.select_option("select[name=campaign]", "win-back")
        with t.page.expect_navigation():
            t.page.click("form.filter button")
        assert "campaign=win-back" in t.page.url and "token" not in t.page.url
        sections = t.page.locator("section.campaign")
        assert sections.evaluate_all("s => s.map(e => e.dataset.campaign)") == ["win-back"]
        assert t.page.locator('figure[data-chart="funnel"] svg').count() == 1


def test_without_the_token_the_dashboard_is_refused(browser: Browser, site: Site) -> None:
    with tab(browser) as t:
        for address in ("/dashboard", "/dashboard?token=guess", f"/dashboard?token={TOKEN}x"):
            shown = t.page.goto(site.base + address)
            assert shown is not None and shown.status == 401, address
            expect(t.page.locator("h1")).to_have_text("Sign in to the dashboard")
            assert t.page.locator("svg").count() == 0
            assert "win-back" not in t.page.content()
        t.page.fill("input[name=token]", "guess-guess-guess")
        with t.page.expect_navigation():
            t.page.click("form button[type=submit]")
        expect(t.page.locator("p.error")).to_have_text("That is not the dashboard's token.")
        assert t.page.context.cookies() == []

    with client() as http:
        bearer = http.get(f"{site.base}/dashboard", headers={"Authorization": f"Bearer {TOKEN}"})
        assert bearer.status_code == 200 and "Lift against the holdout" in bearer.text
        wrong = http.get(f"{site.base}/dashboard", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"] == "Bearer"
        bad = http.get(
            f"{site.base}/dashboard",
            params={"since": "yesterday"},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert bad.status_code == 400 and "like 2026-01-31" in bad.text
    with httpx.Client(cookies={"reengage_dashboard": TOKEN}) as forging:
        forged = forging.get(f"{site.base}/dashboard")
        assert forged.status_code == 401  # the cookie is a sealed session, not the token


def test_without_a_configured_token_there_is_no_dashboard(store: Store) -> None:
    with running_app(create_app(store, WebConfig(secret="s" * 40))) as base, client() as http:
        answer = http.get(f"{base}/dashboard", params={"token": ""})
        assert answer.status_code == 404
        assert "REENGAGE_DASHBOARD_TOKEN" in answer.text


def _said(message: ConsoleMessage) -> str:
    return f"{message.type}: {message.text}"


def test_a_short_dashboard_token_stops_start_up_naming_the_setting() -> None:
    from reengage.config import load_settings
    from reengage.errors import ConfigError

    with pytest.raises(ConfigError, match="REENGAGE_DASHBOARD_TOKEN: is too short"):
        load_settings(env_file=None, dashboard_token="letmein")
    settings = load_settings(env_file=None, secret_key="s" * 40, dashboard_token=TOKEN)
    assert WebConfig.from_settings(settings).dashboard_token == TOKEN
