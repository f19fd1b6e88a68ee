"""The inbound mailbox's settings: a URL a person writes is read as meant or refused with the
setting and the fix, a password never crosses a network in clear, and the recipients a
mailbox poller hands the classifier come from the mail's headers whatever they hold."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reengage.config import load_settings
from reengage.errors import ConfigError
from reengage.mailbox import MailboxOptions, is_loopback, parse_url
from reengage.mailbox_poll import poller_from_settings, recipients_of

SETTING = "REENGAGE_INBOUND_IMAP_URL"


def test_a_mailbox_url_is_read_as_meant() -> None:
    url = parse_url("imaps://bounces%40acme.example:p%3Ass%2Fw@mail.acme.example/Bounces", SETTING)
    assert (url.scheme, url.host, url.port) == ("imaps", "mail.acme.example", 993)
    assert (url.user, url.password, url.folder) == ("bounces@acme.example", "p:ss/w", "Bounces")
    assert "p:ss/w" not in str(url) and "p%3A" not in str(url)  # shown without the password
    pop = parse_url("pop3://u:p@127.0.0.1:1110", "REENGAGE_INBOUND_POP3_URL")
    assert (pop.protocol, pop.port, pop.folder) == ("pop3", 1110, "INBOX")


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("https://u:p@mail.example", "is not a mailbox"),
        ("mail.example", "is not a mailbox"),
        ("imaps://mail.example", "give the host, the user and the password"),
        ("imaps://u@mail.example", "give the host, the user and the password"),
        ("imaps://u:p@mail.example:99999", "port"),
        ("pop3s://u:p@mail.example/Archive", "POP3 has one mailbox"),
        ('imaps://u:p@mail.example/In"box', "folder"),
        ("imaps://u:p@mail.example/Eingang%C3%A4", "folder"),
    ],
)
def test_a_malformed_url_names_the_setting_and_the_fix(url: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says) as refused:
        parse_url(url, SETTING)
    assert str(refused.value).startswith(SETTING)
    assert ":p@" not in str(refused.value)


def test_plain_text_is_allowed_only_to_this_machine() -> None:
    plain = MailboxOptions(plaintext=True)
    for host in ("127.0.0.1", "127.3.4.5", "localhost", "[::1]"):
        plain.check(parse_url(f"imap://u:p@{host}:143", SETTING))
    with pytest.raises(ConfigError, match="REENGAGE_INBOUND_MAILBOX_PLAINTEXT") as refused:
        plain.check(parse_url("imap://u:p@mail.example:143", SETTING))
    assert "imaps://" in str(refused.value)
    plain.check(parse_url("imaps://u:p@mail.example", SETTING))  # TLS anyway: nothing to allow
    assert not is_loopback("10.0.0.1") and not is_loopback("mail.example")


def test_done_and_folder_options_are_checked() -> None:
    url = parse_url("imaps://u:p@mail.example", SETTING)
    with pytest.raises(ConfigError, match="move, flag or delete"):
        MailboxOptions(done="archive").check(url)
    with pytest.raises(ConfigError, match="NOT_OURS_FOLDER"):
        MailboxOptions(not_ours_folder='a"b').check(url)


def test_one_mailbox_at_a_time_and_none_without_a_url() -> None:
    def build(**settings: object) -> object:
        loaded = load_settings(env_file=None, secret_key="s" * 40, **settings)
        return poller_from_settings(loaded, None, lambda raw, rcpts: None, lambda: None)  # type: ignore[arg-type, return-value]

    assert build() is None
    assert build(inbound_imap_url="  ", inbound_pop3_url="") is None  # a blank line in .env
    with pytest.raises(ConfigError, match="both set"):
        build(inbound_imap_url="imaps://u:p@a.example", inbound_pop3_url="pop3s://u:p@a.example")
    with pytest.raises(ConfigError, match="REENGAGE_INBOUND_POP3_URL: imaps:// is not POP3"):
        build(inbound_pop3_url="imaps://u:p@a.example")
    with pytest.raises(ConfigError, match="PLAINTEXT"):
        build(inbound_imap_url="imap://u:p@mail.example", inbound_mailbox_plaintext=True)


def test_recipients_are_the_delivering_servers_trace_headers_else_the_addressed_ones() -> None:
    raw = (
        b"Return-Path: <>\r\n"
        b"X-Original-To: bounces+TOKEN@acme.example\r\n"
        b"Delivered-To: mailbox@acme.example\r\n"
        b"Received: from mx.example by mail.acme.example\r\n"
        b"To: Someone <someone@acme.example>, other@acme.example\r\n"
        b"Subject: x\r\n\r\nbody\r\n"
    )
    # What the server wrote on top (Postfix: the address as sent, then the mailbox).
    assert recipients_of(raw) == ["bounces+TOKEN@acme.example", "mailbox@acme.example"]
    addressed = b"To: Someone <someone@acme.example>\r\nCc: other@acme.example\r\n\r\nx"
    assert recipients_of(addressed) == ["someone@acme.example", "other@acme.example"]
    many = b"To: " + b", ".join(f"a{n}@x.example".encode() for n in range(100)) + b"\r\n\r\n"
    assert len(recipients_of(many)) == 20  # as many as the listener would take


def test_a_delivered_to_written_by_the_sender_below_the_servers_is_not_where_it_arrived() -> None:
    forged = (
        b"Delivered-To: mailbox@acme.example\r\n"
        b"Received: from evil.example by mail.acme.example\r\n"
        b"Delivered-To: bounces+KEY.SIG@acme.example\r\n"
        b"X-Original-To: bounces+KEY.SIG@acme.example\r\n"
        b"To: bounces+KEY.SIG@acme.example\r\n"
        b"Subject: Undelivered Mail Returned to Sender\r\n\r\nx"
    )
    assert recipients_of(forged) == ["mailbox@acme.example"]
    # Written right under the server's (a server that adds no Received line of its own).
    adjacent = forged.replace(b"Received: from evil.example by mail.acme.example\r\n", b"")
    assert recipients_of(adjacent) == ["mailbox@acme.example"]
    # A server that writes its header below its own Received line: the topmost counts.
    received = b"Received: from evil.example by mail.acme.example\r\n"
    below = forged.replace(b"Delivered-To: mailbox", b"X-Trace: 1", 1).replace(
        received, received + b"Delivered-To: mailbox@acme.example\r\n"
    )
    assert recipients_of(below) == ["mailbox@acme.example"]


@given(st.binary(max_size=2000))
def test_recipients_of_any_bytes_never_raise(raw: bytes) -> None:
    found = recipients_of(raw)
    assert all("@" in address for address in found) and len(found) <= 20
