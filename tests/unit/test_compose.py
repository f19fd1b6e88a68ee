"""What templates see of a customer: dates are dates, a missing value is never "None"."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reengage.compose import (
    bounce_address,
    mailto_signature,
    signed_unsubscribe_key,
    unsubscribe_mailto,
)
from reengage.errors import TemplateFailure
from reengage.models import Customer
from reengage.render import Renderer, Sender
from reengage.render.values import Yearly
from reengage.template_context import customer_context, rhythm_context


def renderer(tmp_path: Path, body: str) -> Renderer:
    (tmp_path / "t.html.j2").write_text(body, encoding="utf-8")
    return Renderer(tmp_path, Sender("Acme", "1 Example Street"))


def render(tmp_path: Path, body: str, customer: Customer, today: date) -> str:
    context = {
        "customer": customer_context(customer, today=today),
        "rhythm": rhythm_context(None),
    }
    rendered = renderer(tmp_path, body).render(
        subject="Hi",
        template="t.html.j2",
        text_template=None,
        context=context,
        locale="en",
        unsubscribe_url="https://x.example/u",
        pause_url="https://x.example/p",
    )
    return rendered.text.split("\n-- \n")[0].strip()


def customer(**fields: object) -> Customer:
    return Customer.model_validate({"id": 1, "external_id": "c1", "email": "a@b.example", **fields})


def test_important_dates_are_dates_and_a_birthday_never_shows_its_year(tmp_path: Path) -> None:
    ana = customer(
        important_dates=[
            {"label": "birthday", "date": "1980-04-12"},
            {"label": "founded", "date": "2012-09-01"},
            {"label": "anniversary", "date": "2000-02-29"},  # year unknown
        ]
    )
    body = (
        "{% for d in customer.important_dates %}<p>{{ d.label }}: {{ d.date | date }}; "
        "next {{ d.next | date('%d %b %Y') }}</p>{% endfor %}"
        "<p>Birthday {{ customer.birthday | date('%d %B %Y') }}</p>"
    )
    text = render(tmp_path, body, ana, today=date(2027, 3, 1))
    assert "birthday: 12 April 2027; next 12 Apr 2027" not in text
    assert "birthday: 12 April;" in text
    assert "1980" not in text
    assert "founded: 01 September 2012; next 01 Sep 2027" in text
    # 29 February of an unknown year: no year shown; next falls on 28 Feb in a common year.
    assert "anniversary: 29 February; next 28 Feb 2028" not in text
    assert "anniversary: 29 February; next 29 Feb 2028" in text
    assert "Birthday 12 April" in text


def test_a_next_occurrence_in_a_common_year_falls_on_28_february(tmp_path: Path) -> None:
    leap = customer(important_dates=[{"label": "anniversary", "date": "2000-02-29"}])
    text = render(
        tmp_path,
        "{% for d in customer.important_dates %}<p>{{ d.next | date('%d %b %Y') }}</p>{% endfor %}",
        leap,
        today=date(2026, 2, 1),
    )
    assert "28 Feb 2026" in text


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ("<p>{{ customer.company }}</p>", "customer.company"),
        ("<p>{{ customer.birthday | date }}</p>", "customer.birthday"),
        ("<p>{{ rhythm.days_silent }}</p>", "rhythm.days_silent"),
        ("<p>{{ rhythm.expected_gap_days | round }}</p>", "rhythm.expected_gap_days"),
        ("<p>{{ rhythm.lapse_ratio * 2 }}</p>", "rhythm.lapse_ratio"),
        ("<p>{{ customer.last_product | upper }}</p>", "customer.last_product"),
    ],
)
def test_printing_a_value_the_customer_lacks_is_an_error_naming_it(
    tmp_path: Path, body: str, names: str
) -> None:
    with pytest.raises(TemplateFailure) as caught:
        render(tmp_path, body, customer(), today=date(2026, 5, 1))
    assert names in caught.value.problem
    assert caught.value.line == 1


@pytest.mark.parametrize(
    "body",
    [
        "<p>{{ customer.company or 'your team' }}</p>",
        "<p>{% if customer.company %}{{ customer.company }}{% else %}your team{% endif %}</p>",
        "<p>{{ customer.company | default('your team') }}</p>",
        "<p>{% if customer.company is none %}your team{% endif %}</p>",
        "<p>{% if customer.company is not defined %}your team{% endif %}</p>",
        "<p>{% for i in customer.interests %}{{ i }}{% else %}your team{% endfor %}</p>",
    ],
)
def test_the_usual_guards_turn_a_missing_value_into_the_fallback(tmp_path: Path, body: str) -> None:
    assert render(tmp_path, body, customer(), today=date(2026, 5, 1)) == "your team"


def test_none_from_anywhere_is_never_text_in_a_mail(tmp_path: Path) -> None:
    with pytest.raises(TemplateFailure) as caught:
        render(tmp_path, "<p>{{ customer.get('fax') }}</p>", customer(), today=date(2026, 5, 1))
    assert "empty (None)" in caught.value.problem


def test_a_tracked_address_built_from_customer_data_leads_exactly_there() -> None:
    """track() of an address joined from customer data (spaces, quotes, tags) signs one
    percent-encoded address, so the click leads where the mail pointed and nowhere else."""
    from reengage.compose import Workspace
    from reengage.config import load_settings
    from reengage.tokens import verify

    ws = Workspace.from_settings(
        load_settings(env_file=None, campaigns_dir=Path("."), secret_key="k" * 40)
    )
    track = ws.links("msg1")["track"]
    link = track('https://shop.example/p/Blue shoes "42" <b>x</b>?size=9%20EU#top')
    payload = verify("k" * 40, "click", link.rpartition("/")[2])
    assert payload["u"] == (
        "https://shop.example/p/Blue%20shoes%20%2242%22%20%3Cb%3Ex%3C/b%3E?size=9%20EU#top"
    )


@settings(max_examples=300, deadline=None)
@given(
    fmt=st.lists(
        st.sampled_from(
            [
                *("%d", "%-d", "%m", "%B", "%b", "%Y", "%y", "%EY", "%Ey", "%Oy", "%-y", "%%"),
                *("%%Y", " ", "/", ".", ", ", "-", "of", "Y", "2000"),
            ]
        ),
        min_size=1,
        max_size=6,
    ).map("".join),
    month_day=st.sampled_from([(1, 1), (2, 29), (4, 12), (12, 31)]),
)
def test_no_format_prints_the_year_a_birthday_does_not_have(
    fmt: str, month_day: tuple[int, int]
) -> None:
    """Whatever strftime form a template uses on a yearly date (with glibc's %E, %O and %-
    forms too), the year it stands in for never shows; what is not a year prints as it
    would on a real date."""
    yearly = Yearly(*month_day)
    printed = yearly.strftime(fmt)
    real = date(1999, *month_day) if month_day != (2, 29) else date(1996, 2, 29)
    literal_years = fmt.replace("%%", "").count("2000")
    assert printed.count("2000") <= literal_years and "00" not in printed.replace("2000", "")
    if "%" not in fmt.replace("%%", ""):  # nothing to format: the text as a date prints it
        assert printed == (real.strftime(fmt).strip(" ,./-") or yearly.strftime("%d %B"))


def test_the_mailto_signature_of_a_mail_already_sent_stays_what_it_was() -> None:
    # Mail in inboxes carries these: the signature is computed the same way for good
    # (HMAC-SHA256 of "mailto-unsubscribe:" and the lower-cased key, 128 bits, base32).
    assert mailto_signature("Ab-_x", "s" * 40) == "jm7venmyspbbyprvy54jpxfwya"
    assert mailto_signature("ab-_X", "s" * 40) == "jm7venmyspbbyprvy54jpxfwya"


@settings(max_examples=60, deadline=None)
@given(
    key=st.text(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-", min_size=22, max_size=24
    )
)
def test_a_bounce_address_is_signed_for_bounces_only_and_fits_a_local_part(key: str) -> None:
    """The key is public (our Message-ID); the signature is not made from it without the
    secret key, a mailto unsubscribe signature does not pass for a bounce's (nor the other
    way), a lower-cased address still verifies, and an older key still verifies."""
    old, new = "o" * 40, "n" * 40
    address = bounce_address(key, "in.acme.example", old)
    local = address.partition("@")[0]
    assert len(local) <= 64 and local.startswith(f"bounces+{key}.")
    token = local.removeprefix("bounces+")
    assert signed_unsubscribe_key(token, [new, old], "bounce") == key
    assert signed_unsubscribe_key(token.lower(), [new, old], "bounce") == key.lower()
    assert signed_unsubscribe_key(token, [new], "bounce") is None
    assert signed_unsubscribe_key(token, [old]) is None  # not an unsubscribe
    mailto = unsubscribe_mailto(key, "in.acme.example", old).partition("@")[0]
    assert signed_unsubscribe_key(mailto.removeprefix("unsubscribe+"), [old], "bounce") is None
    assert signed_unsubscribe_key(f"{key}.", [old], "bounce") is None
    assert signed_unsubscribe_key(key, [old], "bounce") is None
