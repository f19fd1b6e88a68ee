"""The dashboard as a marketer reads it (issue 21), in headless Chromium at phone width (390
px) and desk width (1200 px), in English and in Chinese (the browser's Accept-Language):
no page that scrolls sideways, the verdict before any number and no estimate while there is
not enough data, legends in the colours of their series, the holdout apart from the treated,
money in the configured currency. Screenshots go to the dashboard tests' artifact folder.

This Chromium has no Chinese font, so Chinese shows as boxes in the screenshots: the
Chinese words are checked in the DOM.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from reengage import i18n, stats
from reengage.store import Store
from tests.conftest import ON_SQLITE_ONLY
from tests.integration.test_dashboard_browser import TOKEN, Site, artifact, site
from tests.integration.test_stats import NOW

__all__ = ["site"]  # the fixture, shared with the dashboard's other browser tests

# Every series of every visible chart: the colour of its legend's swatch, and the colours
# its marks are drawn in (bars and dots filled, lines stroked).
LEGEND_AND_SERIES = """
svg => {
  const legends = [...svg.querySelectorAll('g.legends rect')];
  return legends.map(rect => {
    const index = [...rect.classList].find(c => c.startsWith('color-')).slice(6);
    const marks = [...svg.querySelectorAll(`g.series.serie-${index} .dot, `
      + `g.series.serie-${index} .rect, g.series.serie-${index} .line`)];
    return {
      legend: getComputedStyle(rect).fill,
      series: [...new Set(marks.map(m => m.classList.contains('line')
        ? getComputedStyle(m).stroke : getComputedStyle(m).fill))],
    };
  });
}
"""


@contextmanager
def dashboard(
    browser: Browser, base: str, *, width: int, locale: str, query: str = ""
) -> Iterator[Page]:
    """The dashboard in a browser that speaks ``locale`` at ``width`` px, signed in with the
    bearer token (the sign-in form's own tests are in test_dashboard_browser)."""
    context = browser.new_context(
        java_script_enabled=True,
        locale=locale,
        viewport={"width": width, "height": 900},
        extra_http_headers={"Authorization": f"Bearer {TOKEN}"},
    )
    try:
        page = context.new_page()
        shown = page.goto(f"{base}/dashboard{query}")
        assert shown is not None and shown.status == 200
        yield page
    finally:
        context.close()


@ON_SQLITE_ONLY
@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
@pytest.mark.parametrize("width", [390, 1200])
def test_the_dashboard_reads_at_a_glance_on_a_phone_and_a_desk(
    browser: Browser, site: Site, store: Store, tmp_path: Path, width: int, locale: str
) -> None:
    t = i18n.texts(locale)
    _ = t.gettext
    with dashboard(browser, site.base, width=width, locale=locale) as page:
        assert page.locator("html").get_attribute("lang") == t.words
        expect(page.locator("h1")).to_have_text(_("Results"))
        page.screenshot(
            path=str(artifact(tmp_path, f"dashboard-{width}-{locale}.png")), full_page=True
        )

        for part in ("lift", "campaign-3", "calls"):  # close-ups, to look at
            page.locator(f"section#{part}").screenshot(
                path=str(artifact(tmp_path, f"dashboard-{width}-{locale}-{part}.png"))
            )

        # Nothing wider than the screen: tables stack or scroll inside a named region.
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page scrolls sideways by {overflow} px"
        for region in page.locator('div.scroll[role="region"]').all():
            assert region.get_attribute("aria-label")
        # The lift table is read whole: no cell reaches past the screen's edge, even inside
        # its scroll region (wider tables, like the funnel's steps, scroll inside theirs).
        edges = page.locator("table.lift td").evaluate_all(
            "cells => cells.map(c => c.getBoundingClientRect().right)"
        )
        assert edges and max(edges) <= width

        # The verdict comes first; a campaign without enough data shows no estimate at all.
        win_back = page.locator('section[data-campaign="win-back"]')
        expect(win_back.locator("p.verdict")).to_have_text(_("Not enough data yet"))
        assert win_back.locator(".estimate").count() == 0
        row = page.locator('table.lift tr[data-campaign="win-back"]')
        assert row.locator(".estimate").count() == 0
        habit = page.locator('section[data-campaign="habit-tips"]')
        expect(habit.locator("p.verdict")).to_have_text(
            _("Lift: more came back than in the holdout")
        )
        expect(habit.locator("p.estimate")).to_be_visible()
        verdict_box, estimate_box = (
            habit.locator(s).bounding_box() for s in ("p.verdict", "p.estimate")
        )
        assert verdict_box and estimate_box and verdict_box["y"] < estimate_box["y"]
        lift_label = page.locator('figure[data-chart="lift"] svg >> visible=true')
        assert "win-back" not in (lift_label.get_attribute("aria-label") or "")

        # Each legend swatch has the colour its series is drawn in.
        charts = page.locator("figure.chart svg >> visible=true")
        checked = 0
        for i in range(charts.count()):
            for entry in charts.nth(i).evaluate(LEGEND_AND_SERIES):
                assert entry["series"] in ([], [entry["legend"]]), entry
                checked += bool(entry["series"])
            box = charts.nth(i).bounding_box()
            assert box and box["width"] <= width
        assert checked >= 8  # lift (3 series), timelines (treated, holdout), causes

        # The two groups apart; a campaign without a holdout says so, and no holdout spends.
        results = stats.campaign_results(store, NOW + timedelta(days=5))  # the site's clock
        for c in results.campaigns:
            lines = page.locator(f'section[data-campaign="{c.campaign_id}"] ul.groups li')
            treated = t.number(c.enrolled - c.held_out)
            expect(lines.nth(0)).to_contain_text(treated)
            if c.held_out:
                expect(lines.nth(1)).to_contain_text(t.number(c.held_out))
                expect(lines.nth(3)).to_contain_text(t.money(c.held_out_revenue, "EUR"))
            else:
                expect(lines.nth(1)).to_have_text(
                    _("No holdout: every customer who entered was sent the mails")
                )
                assert lines.count() == 3

        # Both counts of customers who came back are named and explained.
        terms = page.locator("#definitions dt").all_inner_texts()
        assert terms == [f"{_('Came back')}:", f"{_('Reactivated')}:"]
        # Money in the configured currency, in the reader's format.
        spent = next(c for c in results.campaigns if c.campaign_id == "habit-tips").funnel.revenue
        assert spent > 0
        expect(habit.locator("tr.total td").last).to_have_text(t.money(spent, "EUR"))


@ON_SQLITE_ONLY
@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_without_any_verdict_the_lift_is_a_sentence_not_empty_axes(
    browser: Browser, site: Site, tmp_path: Path, locale: str
) -> None:
    _ = i18n.texts(locale).gettext
    query = "?campaign=win-back"  # the site's campaign with not enough data for a verdict
    with dashboard(browser, site.base, width=390, locale=locale, query=query) as page:
        page.locator("section#lift").screenshot(
            path=str(artifact(tmp_path, f"dashboard-390-{locale}-no-verdict.png"))
        )
        assert page.locator('figure[data-chart="lift"]').count() == 0
        expect(page.locator("#no-lift-chart")).to_have_text(
            _("No campaign has a verdict yet, so there is no lift to draw.")
        )
