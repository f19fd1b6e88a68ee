"""Locale names: however a system or a marketer spells one, reengage reads one locale."""

from __future__ import annotations

import pytest

from reengage.locales import fallbacks, normalise_locale


@pytest.mark.parametrize(
    ("written", "meant"),
    [
        ("zh_CN", "zh-CN"),
        ("zh-cn", "zh-CN"),
        ("ZH-cn", "zh-CN"),
        (" en ", "en"),
        ("EN_us", "en-US"),
        ("zh_hant_tw", "zh-Hant-TW"),
        ("es-419", "es-419"),
        ("zh_CN.UTF-8", "zh-CN"),
        ("de-DE-1996", "de-DE-1996"),
    ],
)
def test_every_spelling_of_a_locale_is_read_as_one(written: str, meant: str) -> None:
    assert normalise_locale(written) == meant


@pytest.mark.parametrize(
    "written", ["", "c", "chinese", "zh-CN-x-private", "12", "zh--CN", "en US"]
)
def test_what_is_not_a_locale_is_refused_with_an_example(written: str) -> None:
    with pytest.raises(ValueError, match="is not a locale like en, zh-CN or zh-Hant-TW"):
        normalise_locale(written)


def test_a_customer_looks_for_their_locale_then_their_language() -> None:
    assert fallbacks("zh_cn") == ("zh-CN", "zh")
    assert fallbacks("zh-Hant-TW") == ("zh-Hant-TW", "zh")
    assert fallbacks("en") == ("en",)
    assert fallbacks("not a locale") == ()
