"""A customer finds the translation written for them, however its file spells the locale."""

from __future__ import annotations

from pathlib import Path

import pytest

from reengage.render import Renderer, Sender


@pytest.fixture
def renderer(tmp_path: Path) -> Renderer:
    tips = tmp_path / "tips"
    tips.mkdir()
    for name, body in (
        ("tip.html.j2", "<p>English</p>"),
        ("tip.zh_CN.html.j2", "<p>简体中文</p>"),
        ("tip.pt.html.j2", "<p>Português</p>"),
        ("tip.backup-2.html.j2", "<p>{% broken</p>"),
        ("news.de-at.html.j2", "<p>Österreich</p>"),
        ("news.html.j2", "<p>English</p>"),
    ):
        (tips / name).write_text(body, encoding="utf-8")
    return Renderer(tmp_path, Sender("Acme", "1 Example Street"))


@pytest.mark.parametrize(
    ("template", "locale", "chosen"),
    [
        ("tips/tip.html.j2", "zh-CN", "tips/tip.zh_CN.html.j2"),
        ("tips/tip.html.j2", "zh_cn", "tips/tip.zh_CN.html.j2"),
        ("tips/tip.html.j2", "ZH-cn", "tips/tip.zh_CN.html.j2"),
        ("tips/tip.html.j2", "zh-TW", "tips/tip.html.j2"),
        ("tips/tip.html.j2", "pt-BR", "tips/tip.pt.html.j2"),
        ("tips/tip.html.j2", "fr", "tips/tip.html.j2"),
        ("tips/tip.html.j2", "", "tips/tip.html.j2"),
        ("tips/news.html.j2", "de-AT", "tips/news.de-at.html.j2"),
        ("tips/news.html.j2", "de", "tips/news.html.j2"),
    ],
)
def test_the_variant_for_a_customers_locale_is_found_however_it_is_spelt(
    renderer: Renderer, template: str, locale: str, chosen: str
) -> None:
    assert renderer.resolve(template, locale) == chosen


def test_a_zh_cn_customer_gets_the_zh_cn_file_and_a_backup_is_never_a_variant(
    renderer: Renderer,
) -> None:
    rendered = renderer.render(
        subject="Hi",
        template="tips/tip.html.j2",
        text_template=None,
        context={},
        locale="zh-CN",
        unsubscribe_url="https://acme.example/u",
        pause_url="https://acme.example/p",
    )
    assert rendered.template == "tips/tip.zh_CN.html.j2"
    assert "简体中文" in rendered.html
    assert renderer.variants("tips/tip.html.j2") == [
        "tips/tip.pt.html.j2",
        "tips/tip.zh_CN.html.j2",
    ]
