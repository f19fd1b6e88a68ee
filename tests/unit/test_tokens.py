"""Tokens in links: opaque, bound to their purpose, verifiable under earlier keys, and any
string at all that is not one is a BadToken (never another error, never a 500 page)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from reengage.tokens import BadToken, sign, stamp, verify

SECRET = "current-secret-" + "k" * 30
OLD = "previous-secret-" + "p" * 30
NOW = datetime(2026, 11, 23, 6, 30, tzinfo=UTC)
CALL = {"c": 4242, "r": "REP-7", "d": "2026-11-23", "t": stamp(NOW)}


def decoded(token: str) -> bytes:
    """What anyone holding the link can read from it by base64 alone."""
    text = token.replace(".", "")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def legacy(secret: str, purpose: str, payload: dict[str, Any]) -> str:
    """A token of the first format (readable JSON, HMAC), as mail already sent carries."""
    body = base64.urlsafe_b64encode(
        json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    )
    text = body.rstrip(b"=").decode()
    mac = hmac.new(secret.encode(), f"{purpose}\x1f{text}".encode(), hashlib.sha256)
    return f"{text}.{base64.urlsafe_b64encode(mac.digest()[:20]).rstrip(b'=').decode()}"


def test_a_token_reveals_no_id_rep_date_or_destination() -> None:
    call = sign(SECRET, "call", CALL)
    click = sign(SECRET, "click", {"m": "msg-key-81f3", "t": 1, "u": "https://shop.example/x"})
    for token, secrets in (
        (call, [b"4242", b"REP-7", b"2026-11-23", b'"c"', b'"r"', b'"d"']),
        (click, [b"msg-key-81f3", b"shop.example", b'"u"', b'"m"']),
    ):
        raw = decoded(token)
        for secret in secrets:
            assert secret not in raw and secret.decode() not in token
    assert len(call) < 120 and "." not in call  # URL-safe, short, one piece
    assert verify(SECRET, "call", call) == CALL


def test_a_link_made_with_a_previous_key_still_works_an_unknown_key_does_not() -> None:
    made_before = sign(OLD, "unsubscribe", {"m": "k1", "t": stamp(NOW)})
    assert verify(SECRET, "unsubscribe", made_before, previous=(OLD,))["m"] == "k1"
    with pytest.raises(BadToken):
        verify(SECRET, "unsubscribe", made_before)
    stranger = sign("a-key-nobody-configured-" + "x" * 20, "unsubscribe", {"m": "k1"})
    with pytest.raises(BadToken):
        verify(SECRET, "unsubscribe", stranger, previous=(OLD,))


def test_a_first_format_link_keeps_working_under_current_and_previous_keys() -> None:
    old_mail = legacy(OLD, "unsubscribe", {"m": "k1", "t": stamp(NOW)})
    found = verify(
        SECRET, "unsubscribe", old_mail, previous=(OLD,), now=NOW, max_age=timedelta(days=730)
    )
    assert found["m"] == "k1"
    assert verify(SECRET, "open", legacy(SECRET, "open", {"m": "k2"}), previous=(OLD,))
    for refused in (
        legacy("a-key-nobody-configured-" + "x" * 20, "unsubscribe", {"m": "k1"}),
        legacy(OLD, "click", {"m": "k1"}),  # another purpose
    ):
        with pytest.raises(BadToken):
            verify(SECRET, "unsubscribe", refused, previous=(OLD,))
    with pytest.raises(BadToken, match="expired"):  # old links age out as before
        verify(
            SECRET,
            "unsubscribe",
            old_mail,
            previous=(OLD,),
            now=NOW + timedelta(days=800),
            max_age=timedelta(days=730),
        )


def test_a_token_is_new_each_time_bound_to_its_purpose_and_cannot_be_spliced() -> None:
    token = sign(SECRET, "call", CALL)
    assert token != sign(SECRET, "call", CALL)  # equal payloads do not show as equal
    with pytest.raises(BadToken):
        verify(SECRET, "unsubscribe", token)
    other = sign(SECRET, "call", {**CALL, "c": 1})
    for spliced in (token[:40] + other[40:], token[:-1], token + "A", "A" + token[1:]):
        if spliced != token:
            with pytest.raises(BadToken):
                verify(SECRET, "call", spliced)


@given(st.text(max_size=300) | st.builds(lambda a, b: f"{a}.{b}", st.text(), st.text()))
@example("abc.\u00e9t\u00e9")  # a non-ASCII signature: compare_digest raised TypeError
@example("\u00e9")
@example("A" * 9000)
@example("AA")
def test_any_string_that_is_not_a_token_is_a_bad_token(text: str) -> None:
    genuine = sign(SECRET, "unsubscribe", {"m": "k1"})
    for candidate in (text, genuine[:10] + text, genuine + text):
        if candidate == genuine:
            continue
        with pytest.raises(BadToken):
            verify(SECRET, "unsubscribe", candidate, previous=(OLD,))


# SpamAssassin 4.0.1's __BITCOIN_ID (72_active.cf), as it reads a mail's words: PDS_BTC_ID,
# +1.0 on a mail whose link token holds one.
SPAMASSASSIN_BITCOIN_ID = re.compile(
    r"\b(?<!=)(?:[13](?:(?:[-_=\s][a-km-zA-HJ-NP-Z1-9]){29,34}|[a-km-zA-HJ-NP-Z1-9]{29,34})"
    r"|bc1[acdefghjklmnpqrstuvwxyz234567890]{30,90}"
    r"|b[-_=\s]c[-_=\s]1(?:[-_=\s][acdefghjklmnpqrstuvwxyz234567890]){30,90})\b"
)


def test_no_link_token_reads_to_spamassassin_as_a_bitcoin_address() -> None:
    """About one token in 3,000 used to (a random nonce), costing its mail a point."""
    payload = {"m": "a1b2c3", "t": 493_000}
    tokens = [sign("k" * 40, "unsubscribe", payload) for _ in range(40_000)]
    assert [t for t in tokens if SPAMASSASSIN_BITCOIN_ID.search(t)] == []
    assert verify("k" * 40, "unsubscribe", tokens[-1]) == payload
