"""The reps' language (issue 21): a rep's locale picks the words, the dates and the money of
what reengage writes to them; unknown or oddly spelt locales never fail a digest."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reengage import i18n
from reengage.ingest.records import RowError, parse_rep


def test_chinese_reps_get_chinese_words_dates_and_money() -> None:
    zh = i18n.texts("zh_CN")
    assert zh.locale == "zh-CN" and zh.words == "zh-CN"
    assert zh.gettext("Call list") == "致电名单"
    assert zh.date(date(2026, 12, 1)) == "2026年12月1日"
    assert zh.money(2607.4, "EUR") == "€2,607"


def test_english_and_other_locales_keep_their_own_formats() -> None:
    assert i18n.texts("en").date(datetime(2026, 12, 1, 23, 0)) == "Dec 1, 2026"
    assert i18n.texts(None).money(542.8199999999999, "EUR", cents=True) == "€542.82"
    german = i18n.texts("de-DE")
    assert german.words == "en"  # no German catalogue: English words
    assert german.money(2607, "EUR") == "2.607\xa0€"  # but German money


def test_a_region_without_a_catalogue_gets_its_languages_words() -> None:
    assert i18n.texts("zh-SG").words == "zh-CN"
    assert i18n.closest("fr") == "en"


@given(st.text(max_size=40))
def test_any_locale_text_gives_words_and_never_fails(text: str) -> None:
    texts = i18n.texts(text)
    assert texts.words in i18n.shipped()
    assert texts.gettext("Call list") in {"Call list", "致电名单"}
    assert texts.date(date(2026, 2, 28))


@pytest.mark.parametrize(
    ("header", "locale"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"),
        ("en-GB,zh;q=0.5", "en"),
        ("fr-FR, de;q=0.9", "en"),
        ("de;q=0.9, zh;q=0.95", "zh-CN"),
        ("zh;q=abc, *", "en"),
        (None, "en"),
    ],
)
def test_a_browser_gets_the_language_it_prefers_among_the_shipped(
    header: str | None, locale: str
) -> None:
    assert i18n.negotiate(header) == locale


def test_a_reps_locale_is_imported_spelt_one_way_and_a_bad_one_is_named() -> None:
    row = {"rep_id": "r1", "email": "ann@example.com", "locale": "zh_cn"}
    assert parse_rep(row)["locale"] == "zh-CN"
    assert "locale" not in parse_rep({"rep_id": "r1", "email": "ann@example.com"})
    with pytest.raises(RowError) as caught:
        parse_rep({**row, "locale": "chinese please"})
    assert caught.value.field == "locale"


def test_one_day_and_one_hour_read_as_such_in_each_language() -> None:
    assert [i18n.days(n) for n in (1, 1.4, 2, 0)] == ["1 day", "1 day", "2 days", "0 days"]
    assert [i18n.hours(n) for n in (1, 12, 24)] == ["1 hour", "12 hours", "24 hours"]
    assert i18n.days(1, i18n.texts("zh-CN")) == "1 天"
