"""A customer's locale is stored one way, however the file that brought it spelt it."""

from __future__ import annotations

import pytest

from reengage.errors import RowError
from reengage.ingest import parse_customer


def customer(locale: str) -> dict[str, str]:
    return {"customer_id": "c1", "email": "a@example.com", "locale": locale}


@pytest.mark.parametrize("written", ["zh_CN", "zh-cn", "ZH-cn", " zh-CN ", "zh_CN.UTF-8"])
def test_every_spelling_of_zh_cn_is_stored_as_zh_cn(written: str) -> None:
    assert parse_customer(customer(written))["locale"] == "zh-CN"


def test_an_empty_locale_is_english() -> None:
    assert parse_customer(customer(""))["locale"] == "en"


def test_a_locale_that_is_not_one_names_the_column_and_the_form() -> None:
    with pytest.raises(RowError) as refused:
        parse_customer(customer("english"))
    assert refused.value.field == "locale"
    assert refused.value.problem == (
        "'english' is not a locale like en, zh-CN or zh-Hant-TW (it starts with a two- or "
        "three-letter language code)"
    )
