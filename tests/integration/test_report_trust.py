"""A forged complaint or bounce suppresses nobody: our Message-ID is in every reply and
forward, so a report naming it proves nothing. A bounce acts only at its mail's signed
``bounces+KEY.SIGNATURE@`` address (the envelope sender), a complaint there too or, at any
address, when DKIM-signed by a feedback-loop provider the operator listed. Over real SMTP on
loopback, and through the mailbox poller's recipients (``recipients_of``)."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dkim
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from structlog.testing import capture_logs

from reengage.compose import UNSIGNED_BOUNCE_KEY_CHARS
from reengage.config import load_settings
from reengage.inbound import InboundHandler
from reengage.mailbox_poll import recipients_of
from reengage.store import Store
from tests.integration.dns_server import dnsmasq, silent
from tests.integration.test_inbound import World, inbound_world
from tests.integration.test_inbound_trust import arf, deliver, dsn, message_id_of, reply, token_of

PEOPLE = ("ana", "bob", "carl", "dan", "eve", "fay")
CUSTOMERS = "customer_id,email,first_name\n" + "".join(
    f"c{n},{p}@example.com,{p.title()}\n" for n, p in enumerate(PEOPLE)
)
ANA, BOB, CARL, DAN, EVE, FAY = (f"{p}@example.com" for p in PEOPLE)
EVERYONE = tuple(f"{p}@example.com" for p in PEOPLE)
REPORTER = "fbl.mailbox.example"  # the operator's listed feedback-loop provider


@dataclass(frozen=True)
class Keys:
    pem: bytes
    record: bytes  # the TXT record: v=DKIM1; k=rsa; p=...


def _keys() -> Keys:
    private = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return Keys(pem, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public))


KEYS = _keys()
ASKED: list[str] = []  # every DNS name the receiver looked up


def dns(name: bytes, timeout: int = 5) -> bytes | None:
    """dkimpy's DNS hook: every ``sel._domainkey.*`` name has the test key, so only the
    receiver's own rule (listed domains) decides whose signature counts."""
    ASKED.append(name.decode())
    return KEYS.record if b"._domainkey." in name else None


@pytest.fixture
def world(store: Store, tmp_path: Path) -> Iterator[World]:
    with inbound_world(
        store, tmp_path, CUSTOMERS, complaint_reporters=[REPORTER], dkim_dns=dns
    ) as made:
        yield made


def signed(raw: bytes, domain: str) -> bytes:
    """``raw`` with a DKIM signature of ``domain`` (selector s1) on top."""
    lines = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    head = dkim.sign(lines, b"s1", domain.encode(), KEYS.pem, include_headers=[b"from", b"to"])
    return head + lines


def forged_arf(victim: str, original_id: str) -> bytes:
    """The tester's complaint: from anyone, naming the victim and our Message-ID."""
    return arf(victim, original_id=original_id).replace(
        b"From: feedback@arf.mail.example", b"From: anyone@evil.example"
    )


def suppressed(world: World) -> set[str]:
    return world.store.sending.suppressed_among(EVERYONE)


def reasons(world: World) -> list[str]:
    return [r.reason for r in world.store.responses.unmatched(100)[0]]


def test_a_report_naming_our_message_id_at_any_other_address_suppresses_nobody(
    world: World,
) -> None:
    """The tester's cases: an ARF to abuse@ and a DSN to postmaster@ naming the mailed
    address and our Message-ID; and every address a forger can build from what replies
    show: reply+KEY@, bounces+KEY@ (the bare key of mail with a signed address),
    bounces+KEY.WRONG@."""
    key = message_id_of(world, ANA).strip("<>").partition("@")[0]
    assert not token_of(world, ANA).startswith(f"{key}@")
    generic = [
        "abuse@acme.example",
        "postmaster@acme.example",
        f"reply+{key}@acme.example",
        f"bounces+{key}@acme.example",
        f"bounces+{key}.{'a' * 26}@acme.example",
        f"bounces+{key}.@acme.example",
    ]
    for to in generic:
        deliver(world, forged_arf(ANA, message_id_of(world, ANA)), to)
        deliver(world, dsn([ANA], original_id=message_id_of(world, ANA)), to)
        deliver(world, dsn([ANA], status="4.2.2", original_id=message_id_of(world, ANA)), to)
    assert suppressed(world) == set()
    assert not {"bounce", "complaint", "soft_bounce"} & set(world.kinds())
    kept = reasons(world)
    assert len(kept) == 3 * len(generic)
    assert set(kept) == {"not_verp", "unverified_complaint", "bad_signature"}
    # A report arriving in the mailbox with a forged Delivered-To acts on nobody either.
    raw = b"Delivered-To: bounces+" + key.encode() + b"@acme.example\n"
    raw += dsn([ANA], original_id=message_id_of(world, ANA))
    assert world.handler.receive(raw, recipients_of(raw)).action == "unmatched"
    assert suppressed(world) == set()


def test_the_bounce_address_is_not_in_what_replies_and_forwards_show(world: World) -> None:
    """Message-ID, Reply-To and List-Unsubscribe carry the key; only the envelope sender
    (Return-Path) carries the signature that makes a bounce act."""
    sent = next(m for m in world.sink.received if m["to"] == [BOB])
    envelope = token_of(world, BOB)
    key, dot, signature = envelope.partition(".")
    assert dot and len(signature) == 26 and len(key) != UNSIGNED_BOUNCE_KEY_CHARS
    message = sent["message"]
    for name in ("Message-ID", "Reply-To", "List-Unsubscribe", "References", "In-Reply-To"):
        assert signature not in str(message.get(name, "")), name
    assert key in str(message["Message-ID"])
    text = sent["raw"].decode("utf-8", "replace")
    body = text.partition("\r\n\r\n")[2] or text.partition("\n\n")[2]
    assert signature not in body


def test_a_genuine_bounce_or_complaint_at_the_signed_bounce_address_suppresses(
    world: World,
) -> None:
    deliver(world, dsn([ANA]), f"bounces+{token_of(world, ANA)}@acme.example")
    # An MTA may lower-case the address: the signature is over the folded key.
    deliver(world, dsn([BOB]), f"bounces+{token_of(world, BOB).lower()}@acme.example")
    deliver(world, arf(CARL), f"bounces+{token_of(world, CARL)}@acme.example")
    # A reply from the customer still ends her sequence and waits for the rep.
    deliver(world, reply(DAN, message_id_of(world, DAN)), "reply@acme.example")
    assert suppressed(world) == {ANA, BOB, CARL}
    assert sorted(world.kinds()) == ["bounce", "bounce", "complaint", "reply"]
    assert [r["sender"] for r in world.store.responses.replies()] == [DAN]
    assert reasons(world) == []


def test_mail_sent_with_the_old_unsigned_bounce_address_still_bounces(world: World) -> None:
    """Mail already sent carries ``bounces+KEY@`` with a 24-character key: its bounces act."""
    old_key = "O" * UNSIGNED_BOUNCE_KEY_CHARS
    with world.store.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE messages SET token = :old WHERE recipient = :who"),
            {"old": old_key, "who": EVE},
        )
    deliver(world, dsn([EVE]), f"bounces+{old_key}@acme.example")
    deliver(world, dsn([FAY]), f"bounces+{'P' * UNSIGNED_BOUNCE_KEY_CHARS}@acme.example")
    assert suppressed(world) == {EVE}
    assert reasons(world) == ["no_message"]


def test_a_complaint_signed_by_a_listed_feedback_loop_suppresses_anywhere(world: World) -> None:
    ASKED.clear()
    genuine = signed(arf(ANA, original_id=message_id_of(world, ANA)), REPORTER)
    deliver(world, genuine, "abuse@acme.example")
    # A subdomain of a listed provider signs for it too.
    deliver(
        world,
        signed(arf(BOB, original_id=message_id_of(world, BOB)), f"mx.{REPORTER}"),
        "fbl@acme.example",
    )
    assert suppressed(world) == {ANA, BOB}
    # Signed by a domain nobody listed (its key is served all the same): acts on nobody.
    deliver(
        world,
        signed(arf(CARL, original_id=message_id_of(world, CARL)), "evil.example"),
        "abuse@acme.example",
    )
    # A look-alike of the listed domain is not it.
    deliver(
        world,
        signed(arf(CARL, original_id=message_id_of(world, CARL)), f"x{REPORTER}"),
        "abuse@acme.example",
    )
    # A listed provider's signature over a report changed afterwards does not verify.
    tampered = signed(arf(DAN, original_id=message_id_of(world, DAN)), REPORTER)
    deliver(world, tampered.replace(b"A complaint.", b"A complaint!"), "abuse@acme.example")
    # Signed by the listed provider but naming another address: not about our recipient.
    deliver(
        world,
        signed(arf("mallory@evil.example", original_id=message_id_of(world, EVE)), REPORTER),
        "abuse@acme.example",
    )
    # A malformed signature claiming the listed domain, and six stacked ones: nobody.
    junk = b"DKIM-Signature: v=1; a=rsa-sha256; d=" + REPORTER.encode() + b"; s=s1; b=!!\n"
    deliver(world, junk + arf(DAN, original_id=message_id_of(world, DAN)), "abuse@acme.example")
    deliver(world, junk * 6 + arf(DAN, original_id=message_id_of(world, DAN)), "fbl@acme.example")
    # A listed provider's signature makes a complaint count, never a bounce.
    deliver(
        world,
        signed(dsn([FAY], original_id=message_id_of(world, FAY)), REPORTER),
        "postmaster@acme.example",
    )
    assert suppressed(world) == {ANA, BOB}
    assert sorted(reasons(world)) == sorted(
        ["unverified_complaint"] * 5 + ["other_address", "not_verp"]
    )
    # Keys were looked up only under the listed domain, never where a report pointed.
    assert ASKED and all(
        re.search(rf"\._domainkey\.(.+\.)?{re.escape(REPORTER)}\.?$", n) for n in ASKED
    )


def configured(world: World, dns_server: str, timeout: float = 5.0) -> InboundHandler:
    """The handler the daemon builds from its settings: ``REENGAGE_DNS_SERVER`` set."""
    settings = load_settings(
        env_file=None,
        secret_key=world.service.ws.secret,
        complaint_reporters=LOOPBACK_REPORTER,
        dns_server=dns_server,
        dns_timeout_seconds=timeout,
    )
    clock = world.service.clock_state  # type: ignore[attr-defined]
    policy = world.service.response_policy()
    return InboundHandler.from_settings(world.store, lambda: clock["now"], policy, settings)


LOOPBACK_REPORTER = "fbl.mailbox.test"  # published only by the loopback DNS server


@pytest.fixture
def plain_world(store: Store, tmp_path: Path) -> Iterator[World]:
    with inbound_world(store, tmp_path, CUSTOMERS) as made:
        yield made


def test_a_reports_dkim_key_is_looked_up_with_the_configured_dns_server(
    plain_world: World, tmp_path: Path
) -> None:
    """The listed provider's key is published only by the server REENGAGE_DNS_SERVER names
    (dnsmasq on loopback): its signed complaint suppresses. The lookup used to go to the
    system's resolver, which knows no such key: the complaint was kept for review."""
    world = plain_world
    zone = [f'txt-record=s1._domainkey.{LOOPBACK_REPORTER},"{KEYS.record.decode()}"']
    with dnsmasq(zone, tmp_path) as address:
        handler = configured(world, address)
        genuine = signed(arf(ANA, original_id=message_id_of(world, ANA)), LOOPBACK_REPORTER)
        assert handler.receive(genuine, ["abuse@acme.example"]).action == "suppressed"
    assert suppressed(world) == {ANA}


def test_a_dns_server_that_does_not_answer_acts_on_nobody_within_its_timeout(
    plain_world: World,
) -> None:
    """The configured server is down: the complaint is kept for review, after the
    configured timeout (not the system resolver's), and the log names the server."""
    world = plain_world
    with silent() as address, capture_logs() as logs:
        handler = configured(world, address, timeout=0.5)
        report = signed(arf(BOB, original_id=message_id_of(world, BOB)), LOOPBACK_REPORTER)
        started = time.monotonic()
        outcome = handler.receive(report, ["abuse@acme.example"])
        took = time.monotonic() - started
    assert outcome.action == "unmatched" and took < 3, took
    assert suppressed(world) == set() and reasons(world) == ["unverified_complaint"]
    failed = [e for e in logs if e["event"] == "report_key_lookup_failed"]
    assert failed and address in failed[0]["error"], logs
