"""Record validation shared by CSV import and the ingest API: pure functions, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from reengage.errors import RowError
from reengage.ingest import activity_key, parse_activity, parse_customer, parse_rep

BERLIN = ZoneInfo("Europe/Berlin")


def test_minimal_customer_gets_only_the_columns_supplied() -> None:
    assert parse_customer({"customer_id": " c1 ", "email": "Ana@Example.com"}) == {
        "external_id": "c1",
        "email": "ana@example.com",
    }


def test_hostile_name_is_kept_on_one_line() -> None:
    record = parse_customer(
        {"customer_id": "c1", "email": "a@example.com", "first_name": "Eve\r\nBcc: x@evil"}
    )
    assert record["first_name"] == "Eve Bcc: x@evil"


@pytest.mark.parametrize(
    ("row", "field", "problem"),
    [
        ({"customer_id": "", "email": "a@example.com"}, "customer_id", "is empty"),
        ({"customer_id": "c", "email": "a@b"}, "email", "not an email address"),
        ({"customer_id": "c", "email": "a@example.com\nBcc: b@x.io"}, "email", "not an email"),
        ({"customer_id": "c", "email": "a@example.com", "locale": "english"}, "locale", "zh-CN"),
        ({"customer_id": "c", "email": "a@example.com", "timezone": "CEST"}, "timezone", "IANA"),
        ({"customer_id": "c", "email": "a@example.com", "consent": "maybe"}, "consent", "yes or"),
        ({"customer_id": "c", "email": "a@example.com", "status": "gone"}, "status", "active"),
        (
            {"customer_id": "c", "email": "a@example.com", "important_dates": "birthday"},
            "important_dates",
            "label=YYYY-MM-DD",
        ),
        ({"customer_id": "c", "email": "a@example.com", "birthday": "12/04"}, "birthday", "04-12"),
    ],
)
def test_bad_customer_field_is_named(row: dict[str, str], field: str, problem: str) -> None:
    with pytest.raises(RowError) as info:
        parse_customer(row)
    assert info.value.field == field
    assert problem in info.value.problem


def test_status_typo_suggests_the_right_word() -> None:
    with pytest.raises(RowError, match="did you mean 'do_not_contact'"):
        parse_customer({"customer_id": "c", "email": "a@example.com", "status": "do not contct"})


def test_birthday_and_important_dates_combine() -> None:
    record = parse_customer(
        {
            "customer_id": "c",
            "email": "a@example.com",
            "important_dates": "contract=2019-09-01; shop anniversary=05-20",
            "birthday": "1975-04-12",
        }
    )
    assert record["important_dates"] == [
        {"label": "contract", "date": "2019-09-01"},
        {"label": "shop anniversary", "date": "2000-05-20"},
        {"label": "birthday", "date": "1975-04-12"},
    ]


def test_rep_name_defaults_to_the_mailbox() -> None:
    assert parse_rep({"rep_id": "r1", "email": "kim@sales.example.com"})["name"] == "kim"


def test_naive_activity_time_is_read_in_the_business_zone() -> None:
    record = parse_activity({"customer_id": "c1", "occurred_at": "2026-07-01 12:00"}, BERLIN)
    assert record.occurred_at == datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
    assert record.kind == "order"


def test_activity_kind_typo_is_rejected_with_a_suggestion() -> None:
    with pytest.raises(RowError, match="did you mean 'order'"):
        parse_activity({"customer_id": "c1", "occurred_at": "2026-07-01", "kind": "ordr"}, BERLIN)


@pytest.mark.parametrize("amount", ["nan", "inf", "1,5", "€5"])
def test_amount_must_be_a_plain_finite_number(amount: str) -> None:
    with pytest.raises(RowError) as info:
        parse_activity({"customer_id": "c1", "occurred_at": "2026-07-01", "amount": amount}, BERLIN)
    assert info.value.field == "amount"


def test_content_key_is_stable_and_sensitive_to_content() -> None:
    when = datetime(2026, 1, 1, tzinfo=UTC)
    assert activity_key("c1", "order", when, 10.0, None) == activity_key(
        "c1", "order", when, 10.0, None
    )
    assert activity_key("c1", "order", when, 10.0, None) != activity_key(
        "c1", "order", when, 11.0, None
    )
    row = {"customer_id": "c1", "occurred_at": "2026-01-01", "amount": "10"}
    assert parse_activity(row, ZoneInfo("UTC")).activity_id.startswith("auto:")


@pytest.mark.parametrize("column", ["amount", "margin"])
@pytest.mark.parametrize("raw", ["1e308", "-1e20", "inf", "-Infinity", "1000000000000.01"])
def test_money_beyond_a_trillion_is_refused_naming_the_column_and_the_bound(
    column: str, raw: str
) -> None:
    row = {"customer_id": "c1", "occurred_at": "2026-07-01", column: raw}
    with pytest.raises(RowError) as info:
        parse_activity(row, BERLIN)
    assert info.value.field == column
    assert info.value.problem.startswith(f"{raw!r} is out of range: {column} must be between ")
    assert "-1,000,000,000,000 and 1,000,000,000,000" in info.value.problem


def test_refunds_and_amounts_up_to_the_bound_are_kept() -> None:
    row = {"customer_id": "c1", "occurred_at": "2026-07-01", "amount": "1e12", "margin": "-25.5"}
    record = parse_activity(row, BERLIN)
    assert (record.amount, record.margin) == (1e12, -25.5)
    row |= {"amount": "-1000000000000"}
    assert parse_activity(row, BERLIN).amount == -1e12


def test_first_lines_answers_the_first_line_of_a_repeated_key_however_many_keys() -> None:
    from reengage.ingest.seen import FirstLines

    seen = FirstLines()  # starts at 1,024 slots: 20,000 keys make it grow five times
    keys = [f"c{i}" for i in range(20_000)]
    assert [seen.first(key, line) for line, key in enumerate(keys, start=2)] == [None] * 20_000
    assert [seen.first(key, 99_999) for key in keys] == list(range(2, 20_002))
    assert seen.first("c20000", 7) is None


@pytest.mark.parametrize("raw", ["0001-01-01", "1899-12-31", "9999-12-31", "2100-01-01T00:00Z"])
def test_placeholder_dates_are_refused_as_activity_dates(raw: str) -> None:
    row = {"customer_id": "c1", "occurred_at": raw, "amount": "10"}
    with pytest.raises(RowError) as info:
        parse_activity(row, ZoneInfo("UTC"))
    assert info.value.field == "occurred_at"
    assert "between 1900 and 2099" in info.value.problem


@pytest.mark.parametrize("raw", ["1900-01-01", "1999-12-31", "2099-12-31"])
def test_old_and_distant_but_real_dates_are_kept(raw: str) -> None:
    row = {"customer_id": "c1", "occurred_at": raw}
    assert parse_activity(row, ZoneInfo("UTC")).occurred_at.year == int(raw[:4])
    assert parse_activity(row, BERLIN).occurred_at.astimezone(BERLIN).year == int(raw[:4])
