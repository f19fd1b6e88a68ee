"""The results dashboard in a real browser (Debian's headless Chromium, driven by Playwright)
against the web app on loopback, over a store filled through the real code paths.

The page must show every chart as inline SVG, run no script (the strict CSP would block
one and say so in the console), escape whatever it is given, keep its token through its
filter form, and refuse anyone without the token. A screenshot is kept: under
$REENGAGE_TEST_ARTIFACTS when set, else in the test's tmp_path.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, expect

from reengage.store import Store
from reengage.store.sending import NewEnrollment
from reengage.web import WebConfig, create_app
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
    store.enroll([NewEnrollment(i, MARKUP, False, "hello", T0) for i in odd.values()], T0)
    later = NOW + timedelta(days=5)  # after the last generated order
    config = WebConfig(secret="s" * 40, dashboard_token=TOKEN, clock=lambda: later)
    with running_app(create_app(store, config)) as base:
        yield Site(base, sorted(["follow-up", "habit-tips", "win-back", MARKUP]))


def artifact(tmp_path: Path, name: str) -> Path:
    folder = Path(os.environ.get("REENGAGE_TEST_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_the_dashboard_shows_every_chart_and_runs_no_script(
    browser: Browser, site: Site, tmp_path: Path, javascript: bool, request: pytest.FixtureRequest
) -> None:
    console: list[str] = []
    with tab(browser, javascript=javascript) as t:
        t.page.on("console", lambda message: console.append(_said(message)))
        t.page.set_viewport_size({"width": 1280, "height": 900})
        shown = t.page.goto(f"{site.base}/dashboard?token={TOKEN}")
        assert shown is not None and shown.status == 200
        page = t.page

        expect(page.locator("h1")).to_have_text("Results")
        sections = page.locator("section.campaign")
        assert sorted(sections.evaluate_all("s => s.map(e => e.dataset.campaign)")) == (
            site.campaigns
        )
        # every chart: one lift chart, a funnel and a timeline per campaign, the causes
        for kind, count in (("lift", 1), ("funnel", 4), ("timeline", 4), ("causes", 1)):
            charts = page.locator(f'figure[data-chart="{kind}"] svg')
            assert charts.count() == count, kind
            for i in range(count):
                box = charts.nth(i).bounding_box()
                assert box is not None and box.get("width", 0) > 300 and box["height"] > 150
        assert page.locator("script").count() == 0

        lift = page.locator('figure[data-chart="lift"] svg')
        assert "habit-tips: lift of " in (lift.get_attribute("aria-label") or "")
        expect(page.locator('section[data-campaign="habit-tips"] p.verdict')).to_contain_text(
            "Lift of "
        )
        expect(page.locator('section[data-campaign="win-back"] p.verdict')).to_contain_text(
            "Not enough data yet"
        )
        expect(page.locator('section[data-campaign="follow-up"] p.verdict')).to_have_text(
            "No holdout group: lift cannot be measured"
        )
        causes = page.locator('figure[data-chart="causes"] svg')
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


def test_the_filter_form_narrows_to_one_campaign_and_keeps_the_token(
    browser: Browser, site: Site
) -> None:
    with tab(browser, javascript=False) as t:
        t.page.goto(f"{site.base}/dashboard?token={TOKEN}")
        t.page.select_option("select[name=campaign]", "win-back")
        with t.page.expect_navigation():
            t.page.click("form.filter button")
        assert "campaign=win-back" in t.page.url
        sections = t.page.locator("section.campaign")
        assert sections.evaluate_all("s => s.map(e => e.dataset.campaign)") == ["win-back"]
        assert t.page.locator('figure[data-chart="funnel"] svg').count() == 1


def test_without_the_token_the_dashboard_is_refused(browser: Browser, site: Site) -> None:
    with tab(browser) as t:
        for address in ("/dashboard", "/dashboard?token=guess", f"/dashboard?token={TOKEN}x"):
            shown = t.page.goto(site.base + address)
            assert shown is not None and shown.status == 401, address
            expect(t.page.locator("h1")).to_have_text("The dashboard needs its token")
            assert t.page.locator("svg").count() == 0
            assert "win-back" not in t.page.content()

    with client() as http:
        bearer = http.get(f"{site.base}/dashboard", headers={"Authorization": f"Bearer {TOKEN}"})
        assert bearer.status_code == 200 and "Lift against the holdout" in bearer.text
        wrong = http.get(f"{site.base}/dashboard", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"] == "Bearer"
        bad = http.get(f"{site.base}/dashboard", params={"token": TOKEN, "since": "yesterday"})
        assert bad.status_code == 400 and "like 2026-01-31" in bad.text


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
