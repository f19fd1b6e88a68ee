"""Record validation shared by CSV import and the ingest API: pure functions, no I/O."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import hypothesis
import pytest
from hypothesis import strategies as st

from reengage.errors import RowError
from reengage.ingest import Kind, activity_key, parse_activity, parse_customer, parse_rep

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


def test_a_rep_row_without_a_name_leaves_the_name_to_the_store() -> None:
    assert "name" not in parse_rep({"rep_id": "r1", "email": "kim@sales.example.com"})
    assert "name" not in parse_rep({"rep_id": "r1", "email": "kim@x.example", "name": " "})
    assert parse_rep({"rep_id": "r1", "email": "kim@x.example", "name": "Kim"})["name"] == "Kim"


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
    low = "0" if column == "amount" else "-1,000,000,000,000"  # an amount is never negative
    assert f"between {low} and 1,000,000,000,000;" in info.value.problem


def test_amounts_up_to_the_bound_and_a_sale_at_a_loss_are_kept() -> None:
    row = {"customer_id": "c1", "occurred_at": "2026-07-01", "amount": "1e12", "margin": "-25.5"}
    record = parse_activity(row, BERLIN)
    assert (record.amount, record.margin) == (1e12, -25.5)
    row |= {"amount": "999999999999.99", "margin": "-1000000000000"}
    assert (parse_activity(row, BERLIN).amount, parse_activity(row, BERLIN).margin) == (
        999999999999.99,
        -1e12,
    )


@pytest.mark.parametrize(
    "raw", ["1000000000000.0000001", "1000000000000.00001e0", "100000000000000000000000000001e-17"]
)
def test_an_amount_just_beyond_the_bound_is_refused_though_it_reads_as_the_bound(
    raw: str,
) -> None:
    """As a float these are exactly 1e12; the import says "beyond ±1,000,000,000,000"."""
    for column in ("amount", "margin"):
        row = {"customer_id": "c1", "occurred_at": "2026-07-01", column: raw}
        with pytest.raises(RowError, match="is out of range"):
            parse_activity(row, BERLIN)


@pytest.mark.parametrize("raw", ["-500", "-0.01", "-1e12", " -20 "])
def test_a_negative_amount_a_refund_is_refused_with_what_to_do(raw: str) -> None:
    """A refund is not a purchase: counted as an order it would make a lapsed customer look
    as if they came back, and turn up as negative revenue of the campaign credited."""
    row = {"customer_id": "c1", "occurred_at": "2026-07-01", "amount": raw, "margin": "-5"}
    with pytest.raises(RowError) as info:
        parse_activity(row, BERLIN)
    assert info.value.field == "amount"
    assert info.value.problem.startswith(f"{raw.strip()!r} is negative: ")
    assert "leave refunds out of the file" in info.value.problem


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


# -- amounts: plain ASCII decimal notation, nothing float() would also take ------------------

PLAIN_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")


def _amount(raw: str) -> float | None:
    row = {"customer_id": "c1", "occurred_at": "2026-07-01", "amount": raw}
    return parse_activity(row, BERLIN).amount


@pytest.mark.parametrize(
    ("raw", "fix"),
    [
        ("1_000", "write 1000 ("),
        ("1_000.50", "write 1000.50 ("),
        ("１２", "write 12 ("),
        ("-１２．５", "write -12.5 ("),
        ("٣٤", "write 34 ("),
        ("12\xa0", "write 12 ("),
    ],
)
def test_an_amount_float_would_bend_into_shape_is_refused_with_the_plain_spelling(
    raw: str, fix: str
) -> None:
    with pytest.raises(RowError) as info:
        _amount(raw)
    assert info.value.field == "amount"
    assert fix in info.value.problem


@pytest.mark.parametrize("raw", ["-1e-320", "1e-320", "5e-324", "1e-400", "0.001", "-0.0099"])
def test_a_non_zero_amount_smaller_than_a_cent_is_refused(raw: str) -> None:
    with pytest.raises(RowError) as info:
        _amount(raw)
    assert info.value.field == "amount"
    assert "smaller than a cent" in info.value.problem
    assert "write 0" in info.value.problem


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (" 12.5 ", 12.5),
        ("\t20\r", 20.0),
        ("+3", 3.0),
        (".5", 0.5),
        ("5.", 5.0),
        ("1e3", 1000.0),
        ("1.5E+2", 150.0),
        ("0", 0.0),
        ("0e-999", 0.0),
        ("0.00", 0.0),
        ("0.01", 0.01),
        ("-0", 0.0),
        ("12.345", 12.345),  # stored as given: ingest rounds no amount
    ],
)
def test_plain_amounts_are_kept(raw: str, value: float) -> None:
    assert _amount(raw) == value


@hypothesis.given(st.text(max_size=30))
def test_any_text_is_an_amount_only_if_it_is_plain_ascii_notation(raw: str) -> None:
    try:
        value = _amount(raw)
    except RowError as exc:
        problem = exc  # refused: fine, as long as the problem is the amount's
        value = None
    else:
        problem = None
    if problem is not None:
        assert problem.field == "amount"
        return
    if value is None:
        assert not raw.strip()
        return
    assert PLAIN_NUMBER.fullmatch(raw.strip(" \t\r\n\f\v"))
    assert math.isfinite(value) and abs(value) <= 1e12
    assert value == 0 or abs(value) >= 0.01


@hypothesis.given(
    st.decimals(min_value=-(10**12), max_value=10**12, places=2, allow_nan=False),
    st.sampled_from(["", " ", "\t"]),
)
def test_every_amount_to_the_cent_within_the_bound_is_read_exactly(
    amount: Decimal, pad: str
) -> None:
    if amount >= 0:
        assert _amount(f"{pad}{amount}{pad}") == float(amount)
    row = {"customer_id": "c1", "occurred_at": "2026-07-01", "margin": f"{pad}{amount}{pad}"}
    assert parse_activity(row, BERLIN).margin == float(amount)  # a margin may be negative
    # The same amount written with a digit group separator or in other digits is refused.
    spelled = f"{amount:,f}".replace(",", "_")
    if "_" in spelled:
        with pytest.raises(RowError, match="not a plain number"):
            _amount(spelled)
    wide = str(amount).translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    with pytest.raises(RowError, match=f"write {re.escape(str(amount))} \\("):
        _amount(wide)


def test_a_json_amount_is_held_to_the_same_rule() -> None:
    from reengage.ingest import flatten_item

    for amount, problem in [(1e-320, "smaller than a cent"), ("1_000", "write 1000 ")]:
        row = flatten_item(
            Kind.ACTIVITIES, {"customer_id": "c1", "occurred_at": "2026-07-01", "amount": amount}
        )
        with pytest.raises(RowError, match=problem):
            parse_activity(row, BERLIN)
    row = flatten_item(
        Kind.ACTIVITIES, {"customer_id": "c1", "occurred_at": "2026-07-01", "margin": 1e16 / 1e6}
    )
    assert parse_activity(row, BERLIN).margin == 1e10


@pytest.mark.parametrize("spelt", ["(no segment)", " (no segment) "])
def test_a_segment_spelt_like_the_customers_without_one_is_refused(spelt: str) -> None:
    """`stats` shows the customers without a segment as "(no segment)": a segment of that
    name would be a second row of the same name, and min_uplift would judge the two as one."""
    with pytest.raises(RowError) as found:
        parse_customer({"customer_id": "c1", "email": "a@example.com", "segment": spelt})
    assert found.value.field == "segment"
    assert "leave it empty" in found.value.problem
    kept = parse_customer({"customer_id": "c1", "email": "a@example.com", "segment": "(none)"})
    assert kept["segment"] == "(none)"
