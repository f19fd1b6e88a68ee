"""The shipped mail in a real browser (Debian's headless Chromium) as a phone shows it.

Each shipped mail step, in English and Chinese, is opened at 390 px wide (and at a
desktop's 1024): the footer — why they get the mail, the pause and unsubscribe links, the
postal address — sits inside the layout's centred card, on the card's left edge like the
words above it, never flush against the screen's edge below the card. The mail makes no
request of its own when shown (the browser is refused every one).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Route

from reengage import authoring, compose
from reengage.config import load_settings
from reengage.models import Customer
from reengage.samples import SAMPLE_MOMENT

ROOT = Path(__file__).resolve().parents[2]


def shipped_mail() -> list[tuple[str, str]]:
    """(label, HTML) of every shipped mail step, for an English and a Chinese customer."""
    settings = load_settings(
        env_file=None,
        templates_dir=ROOT / "templates",
        campaigns_dir=ROOT / "campaigns",
        secret_key="k" * 40,
        base_url="https://mail.acme.example",
    )
    ws = compose.Workspace.from_settings(settings)
    campaigns = authoring.validate(ws, [ROOT / "campaigns"], root=ROOT).campaigns
    made = []
    for locale, name in (("en", "Ana"), ("zh-CN", "伟")):
        customer = Customer.model_validate(
            {"id": 0, "external_id": "c", "email": "c@example.com", "first_name": name}
            | {"locale": locale, "company": "Ana's Bakery"}
        )
        for campaign in campaigns.values():
            for step in (s for s in campaign.steps if not s.is_call):
                _, rendered = compose.render_for(
                    ws,
                    campaign,
                    step.key,
                    customer,
                    None,
                    message_key="k",
                    now=SAMPLE_MOMENT,
                    rep_name=None,
                )
                made.append((f"{campaign.id}.{step.key}.{locale}", rendered.html))
    return made


MAIL = shipped_mail()


@pytest.mark.parametrize("width", [390, 1024])
def test_the_footer_sits_inside_the_centred_card(
    browser: Browser, width: int, tmp_path: Path
) -> None:
    context = browser.new_context(viewport={"width": width, "height": 900})
    requested: list[str] = []

    def refuse(route: Route) -> None:
        requested.append(route.request.url)
        route.abort()

    context.route("**/*", refuse)
    page = context.new_page()
    try:
        for label, html in MAIL:
            page.set_content(html)
            card = page.locator("div.wrap").bounding_box()
            footer = page.locator("div.reengage-footer").bounding_box()
            heading = page.locator("h1").bounding_box()
            assert card and footer and heading, label
            # Inside the card, side to side and top to bottom.
            assert card["x"] <= footer["x"] and footer["x"] + footer["width"] <= (
                card["x"] + card["width"] + 0.5
            ), label
            assert card["y"] < footer["y"]
            assert footer["y"] + footer["height"] <= card["y"] + card["height"] + 0.5, label
            # On the card's inner edge, where its words start: not flush with the screen.
            assert abs(footer["x"] - heading["x"]) < 1, label
            assert footer["x"] >= 20, label
            # Centred: as much room on either side of the card.
            left, right = card["x"], width - card["x"] - card["width"]
            assert abs(left - right) < 1.5, label
            text = page.locator("div.reengage-footer").inner_text()
            assert ("Unsubscribe" in text) or ("退订" in text), label
            assert "1 Example Street" in text or "Acme Supplies," in text, label
            # The card's typeface, not a second one of its own.
            card_font = page.locator("div.wrap").evaluate("e => getComputedStyle(e).fontFamily")
            footer_font = page.locator("div.reengage-footer").evaluate(
                "e => getComputedStyle(e).fontFamily"
            )
            assert footer_font == card_font, label
            if label == "habit-lapsed-tips.we-miss-you.en":
                page.screenshot(path=str(tmp_path / f"mail-{width}.png"), full_page=True)
    finally:
        context.close()
    # The pixel of the campaign that counts opens is a background: only it is asked for.
    assert all("/o/" in url for url in requested), requested
    print(f"screenshots in {tmp_path}")
