"""Composing and serializing a mail: hostile data stays in its header, bytes match `email`."""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP

import pytest

from reengage.message import Envelope, compose, wire

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
