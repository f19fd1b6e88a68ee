"""Composing and serializing a mail: hostile data stays in its header, bytes match `email`."""

from __future__ import annotations

import email
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from email import policy
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from reengage.message import (
    Envelope,
    compose,
    compose_wire,
    one_line,
    provider_headers,
    raw_header,
    wire,
)

HOSTILE = [
    ("Ana", "Hello Ana", "Hi Ana\n"),
    ('Nöé "Li"\r\nBcc: evil@x.example', "Hellö\r\nBcc: evil@x.example", "ünï\n  trailing  \n"),
    ("", "", ""),
    ("O'Brien, Jr. <x>", "A" * 200, "x" * 300 + "\n. dot\rcr\r\nline\n"),
    # Text shaped like an encoded word reads as written, never decoded into other words.
    ("=?utf-8?q?The_Boss?=", "=?utf-8?q?Hacked?= - your offer", "hi\n"),
    ("Zoë", "Ünï =?utf-8?b?SGk=?= " + "word " * 30, "hi\n"),
]


def envelope(name: str) -> Envelope:
    return Envelope(
        sender="Acme Ünï <hello@acme.example>",
        to_name=name,
        to_address="ana@example.com",
        message_id="tok123@acme.example",
        date=datetime(2026, 11, 24, 10, 0, tzinfo=UTC),
        reply_to="Replies <reply+tok123@in.acme.example>",
        list_id="win-back.acme.example",
        unsubscribe_url="https://acme.example/u/" + "t" * 120,
        unsubscribe_mailto="unsubscribe+tok123@acme.example",
        return_path="bounces+tok123@acme.example",
    )


@pytest.mark.parametrize(("name", "subject", "text"), HOSTILE)
def test_wire_is_what_the_email_package_writes(name: str, subject: str, text: str) -> None:
    msg = compose(subject, text, f"<p>Hi {name}</p>\n<p>{'long ' * 50}</p>", envelope(name))
    assert wire(msg) == msg.as_bytes()


def same_boundary(data: bytes, like: bytes) -> bytes:
    """``data`` with its random MIME boundary replaced by the one in ``like``."""
    mine = re.search(rb'boundary="([^"]+)"', data)
    theirs = re.search(rb'boundary="([^"]+)"', like)
    assert mine is not None and theirs is not None
    return data.replace(mine.group(1), theirs.group(1))


# The daemon writes each mail's bytes straight from its parts; preview shows compose()'s.
BODIES = [
    "",
    "plain\n",
    "no final newline",
    "two\n\n",
    "cr\rlone\r\ncrlf\n",
    "ünï\n",
    "x" * 300,
    "<p>" + "é" * 500 + "</p>",
    "line\n" * 40 + "y" * 79,
]


@pytest.mark.parametrize(("name", "subject", "text"), HOSTILE)
@pytest.mark.parametrize("html", BODIES)
def test_the_bytes_written_straight_are_the_composed_message(
    name: str, subject: str, text: str, html: str
) -> None:
    env = envelope(name)
    data, message_id = compose_wire(subject, text, html, env)
    msg = compose(subject, text, html, env)
    assert same_boundary(data, wire(msg)) == wire(msg)
    assert message_id == raw_header(msg, "Message-ID") == "<tok123@acme.example>"


@pytest.mark.parametrize(
    "to", ["ana@example.com", "ünï@exämple.com", "o'brien+tag@mail.example.org"]
)
@pytest.mark.parametrize(
    "when",
    [
        datetime(2026, 11, 24, 10, 0, tzinfo=UTC),
        datetime(2026, 11, 24, 11, 0, tzinfo=timezone(timedelta(hours=1))),
        datetime(2026, 11, 24, 10, 0),
    ],
)
def test_any_address_and_moment_is_written_as_composed(to: str, when: datetime) -> None:
    # The same instant in another offset is written with that offset, never the one
    # formatted first (the Date header is formatted once per moment).
    env = Envelope(**{**envelope("Zoë").__dict__, "to_address": to, "date": when})
    data, _ = compose_wire("Hi", "hi\n", "<p>hi</p>", env)
    msg = compose("Hi", "hi\n", "<p>hi</p>", env)
    assert same_boundary(data, wire(msg)) == wire(msg) == msg.as_bytes()


def test_the_same_instant_in_another_offset_is_dated_in_that_offset() -> None:
    # The Date header is formatted once per moment: never with the offset formatted first.
    utc = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    for when in (utc, utc.astimezone(timezone(timedelta(hours=1))), utc):
        env = Envelope(**{**envelope("Ana").__dict__, "date": when})
        data, _ = compose_wire("Hi", "hi\n", "<p>hi</p>", env)
        assert f"\r\nDate: {format_datetime(when)}\r\n".encode() in data
        assert raw_header(compose("Hi", "hi\n", "<p>hi</p>", env), "Date") == format_datetime(when)


@pytest.mark.parametrize(("name", "subject", "text"), HOSTILE)
def test_customer_data_never_adds_a_header_and_survives_the_trip(
    name: str, subject: str, text: str
) -> None:
    msg = compose(subject, text, f"<p>Hi {name}</p>", envelope(name))
    parsed = email.message_from_bytes(wire(msg), policy=SMTP)
    assert isinstance(parsed, EmailMessage)
    assert "Bcc" not in parsed
    assert parsed["To"].addresses[0].addr_spec == "ana@example.com"
    assert parsed["To"].addresses[0].display_name == " ".join(name.split())
    assert parsed["Subject"] == " ".join(subject.split())[:300].strip()
    plain = parsed.get_body(preferencelist=("plain",))
    assert plain is not None
    assert plain.get_content().replace("\r\n", "\n").replace("\r", "\n") == (
        text.replace("\r\n", "\n").replace("\r", "\n") or "\n"
    )


def test_every_line_is_short_ascii_and_the_unsubscribe_url_is_whole() -> None:
    msg = compose("Hellö", "ünï " * 100, "<p>" + "é" * 500 + "</p>", envelope("Nöé"))
    data = wire(msg)
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    assert data.isascii()
    assert b"<https://acme.example/u/" + b"t" * 120 + b">" in data


# Names as customer records hold them: any text, heavy on what means something in an
# address list (quotes, colons, angle brackets, commas, semicolons, at signs, backslashes,
# encoded-word marks), and long enough to be folded.
_SPECIALS = st.sampled_from([*list('"<>:;,@\\()[].=?'), "=?", "?=", " ", "  ", "é", "名"])
NAMES = st.one_of(
    st.text(alphabet='"<>:;,@\\(). abcdefgé', min_size=20, max_size=160),
    st.lists(st.one_of(_SPECIALS, st.text(min_size=1, max_size=12)), min_size=0, max_size=40).map(
        "".join
    ),
)
ADDRESSES = st.sampled_from(
    ["ana@example.com", "o'brien+tag@mail.example.org", "x@" + "d" * 60 + ".example"]
)


@settings(max_examples=400, deadline=None)
@given(name=NAMES, to=ADDRESSES, sender_name=NAMES)
# Each of these once made the email package fold the name into a second address.
@example(
    name='Accounts payable team of the Northwind trading company "Ana": Ops <boss@evil.example>,',
    to="ana@example.com",
    sender_name="Acme",
)
@example(
    name='Ana Lima (head of purchasing at Northwind Traders) "x" attn: <boss@evil.example>',
    to="ana@example.com",
    sender_name='Acme "win-back" team: the people who miss you <boss@evil.example>',
)
def test_no_name_of_any_length_or_content_changes_an_address_list(
    name: str, to: str, sender_name: str
) -> None:
    """Re-parsing the delivered headers finds exactly the one recipient and the one sender
    we meant, each with its name as written (line breaks and runs of spaces aside)."""
    base = envelope(name)
    sender_name = sender_name.replace("\\", "").replace('"', "")  # a campaign's own From
    env = Envelope(
        **{
            **base.__dict__,
            "to_address": to,
            "sender": f'"{sender_name}" <hello@acme.example>',
        }
    )
    data = wire(compose("Hi", "hi\n", "<p>hi</p>", env))
    parsed = email.message_from_bytes(data, policy=policy.default)
    recipients = parsed["To"].addresses
    assert [a.addr_spec for a in recipients] == [to]
    # Compared without spaces: Python's parser puts one between adjacent encoded words,
    # which RFC 2047 (6.2) and mail programs drop.
    assert "".join(recipients[0].display_name.split()) == "".join(one_line(name).split())
    senders = parsed["From"].addresses
    assert [a.addr_spec for a in senders] == ["hello@acme.example"]
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))


@pytest.mark.parametrize(
    ("provider", "header", "read"),
    [
        ("sendgrid", "X-SMTPAPI", lambda v: json.loads(v)["unique_args"]["reengage_message_id"]),
        ("mailgun", "X-Mailgun-Variables", lambda v: json.loads(v)["reengage_message_id"]),
        ("postmark", "X-PM-Metadata-reengage_message_id", lambda v: v),
    ],
)
def test_a_mail_names_itself_in_its_providers_metadata_header(
    provider: str, header: str, read: Callable[[str], str]
) -> None:
    env = Envelope(
        **{
            **envelope("Ana").__dict__,
            "provider_headers": provider_headers(provider, "<tok123@acme.example>"),
        }
    )
    data, _ = compose_wire("Hi", "hi\n", "<p>hi</p>", env)
    parsed = email.message_from_bytes(data, policy=policy.SMTP)
    assert read(str(parsed[header])) == "<tok123@acme.example>"
    composed = wire(compose("Hi", "hi\n", "<p>hi</p>", env))
    assert same_boundary(data, composed) == composed
    assert provider_headers("ses", "<tok123@acme.example>") == ()
