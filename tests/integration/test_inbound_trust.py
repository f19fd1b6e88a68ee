"""Inbound mail from anyone is believed only as far as it is about our mail: forged bounces,
complaints and replies over real SMTP act on nobody and wait as unmatched; genuine ones act
on the address our message went to, and only on it; a flood is refused or bounded."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import aiosmtplib
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reengage.compose import signed_unsubscribe_key, unsubscribe_mailto
from reengage.inbound import Limits
from reengage.responses import ProviderEvent, record_provider_event
from reengage.store import Store
from tests.integration import inprocess
from tests.integration.test_inbound import World, inbound_world

CUSTOMERS = (
    "customer_id,email,first_name\n"
    "c1,ana@example.com,Ana\n"
    "c2,bob@example.com,Bob\n"
    "c3,carl@xn--bcher-kva.example,Carl\n"
)
ANA, BOB, CARL = "ana@example.com", "bob@example.com", "carl@xn--bcher-kva.example"
EVERYONE = (ANA, BOB, CARL)
# hypothesis runs its examples against one running listener; what each asserts holds
# however many examples came before it.
ONE_WORLD = settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def world(store: Store, tmp_path: Path) -> Iterator[World]:
    with inbound_world(store, tmp_path, CUSTOMERS) as made:
        yield made


def token_of(world: World, address: str) -> str:
    sent = next(m for m in world.sink.received if m["to"] == [address])
    return str(sent["from"]).split("+", 1)[1].split("@", 1)[0]


def message_id_of(world: World, address: str) -> str:
    sent = next(m for m in world.sink.received if m["to"] == [address])
    return str(sent["message"]["Message-ID"])


async def send(port: int, raw: bytes, to: str, wait: float = 30) -> None:
    """One mail with the null sender (as bounces come), over SMTP on loopback."""
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=wait) as smtp:
        await smtp.sendmail("", [to], raw)


def deliver(world: World, raw: bytes, to: str) -> None:
    """One mail over SMTP on loopback, as any server on the internet could send it."""
    asyncio.run(send(world.port, raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"), to))


def dsn(named: list[str], *, status: str = "5.1.1", original_id: str | None = None) -> bytes:
    """A delivery status notification (RFC 3464) naming ``named``, quoting our headers."""
    blocks = "".join(
        f"Final-Recipient: rfc822; {a}\nAction: {'failed' if status[0] == '5' else 'delayed'}\n"
        f"Status: {status}\nDiagnostic-Code: smtp; {status[0]}50 {status} mailbox trouble\n\n"
        for a in named
    )
    quoted = (
        f"--B\nContent-Type: text/rfc822-headers\n\nMessage-ID: {original_id}\n"
        "From: Acme <hello@acme.example>\nSubject: Hello\n\n"
        if original_id
        else ""
    )
    return (
        "From: MAILER-DAEMON@mx.example\nTo: postmaster@acme.example\n"
        "Subject: Undelivered Mail Returned to Sender\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
        "--B\nContent-Type: text/plain\n\nYour mail could not be delivered.\n\n"
        "--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example\n\n"
        f"{blocks}{quoted}--B--\n"
    ).encode()


def arf(named: str, *, original_id: str | None = None) -> bytes:
    """A feedback-loop complaint (RFC 5965) about a mail to ``named``."""
    quoted = f"Message-ID: {original_id}\n" if original_id else ""
    return (
        "From: feedback@arf.mail.example\nTo: fbl@acme.example\nSubject: complaint\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="B"\n\n'
        "--B\nContent-Type: text/plain\n\nA complaint.\n\n"
        "--B\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\n"
        f"User-Agent: fbl/1.0\nVersion: 1\nOriginal-Rcpt-To: {named}\n\n"
        f"--B\nContent-Type: text/rfc822-headers\n\n{quoted}From: hello@acme.example\n"
        f"To: {named}\nSubject: Hello\n\n--B--\n"
    ).encode()


def reply(sender: str, in_reply_to: str | None) -> bytes:
    thread = f"In-Reply-To: {in_reply_to}\n" if in_reply_to else ""
    return (
        f"From: {sender}\nTo: reply@acme.example\nSubject: Re: Hello\n{thread}"
        "Content-Type: text/plain\n\nPlease call me back today, I want to order again.\n"
    ).encode()


def unmatched(world: World) -> int:
    return world.store.responses.unmatched(1)[1]


def suppressed(world: World) -> set[str]:
    return world.store.sending.suppressed_among(EVERYONE)


# -- forged reports act on nobody -----------------------------------------------------------


@ONE_WORLD
@given(
    report=st.sampled_from(["dsn", "arf", "three soft bounces"]),
    reference=st.sampled_from(["none", "foreign token", "foreign Message-ID"]),
    victim=st.sampled_from(EVERYONE),
)
def test_a_forged_bounce_or_complaint_suppresses_nobody_and_is_kept_as_unmatched(
    world: World, report: str, reference: str, victim: str
) -> None:
    foreign = secrets.token_urlsafe(18)
    to = (
        f"bounces+{foreign}@acme.example"
        if reference == "foreign token"
        else "postmaster@acme.example"
    )
    original = f"<{foreign}@acme.example>" if reference == "foreign Message-ID" else None
    before = unmatched(world)
    mails = {
        "dsn": [dsn([victim], original_id=original)],
        "arf": [arf(victim.upper(), original_id=original)],
        "three soft bounces": [dsn([victim], status="4.2.2", original_id=original)] * 3,
    }[report]
    for raw in mails:
        deliver(world, raw, to)
    assert suppressed(world) == set()
    assert unmatched(world) == before + len(mails)
    assert not {"bounce", "complaint", "soft_bounce"} & set(world.kinds())


def test_a_report_naming_20000_addresses_acts_on_ours_at_most_and_never_blocks(
    world: World,
) -> None:
    crowd = [f"victim{i}@example.org" for i in range(20_000)]
    forged = dsn([*crowd, ANA, BOB])
    genuine = dsn([*crowd, ANA, BOB], original_id=message_id_of(world, ANA))
    assert len(forged) > 1_500_000

    async def probe() -> float:
        await asyncio.sleep(0.2)  # while the report is being read and recorded
        started = time.monotonic()
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=world.port, timeout=10) as smtp:
            await smtp.noop()
        return time.monotonic() - started

    async def both(raw: bytes, to: str = "postmaster@acme.example") -> float:
        crlf = raw.replace(b"\n", b"\r\n")
        _, waited = await asyncio.gather(send(world.port, crlf, to, 120), probe())
        return waited

    assert asyncio.run(both(forged)) < 2.0
    assert suppressed(world) == set()
    # Our Message-ID at a generic address proves nothing (replies show it): still nobody.
    assert asyncio.run(both(genuine)) < 2.0
    assert suppressed(world) == set()
    assert asyncio.run(both(genuine, f"bounces+{token_of(world, ANA)}@acme.example")) < 2.0
    assert suppressed(world) == {ANA}
    assert world.store.sending.suppressed_among(crowd[:50] + crowd[-50:]) == set()


# -- genuine reports act on our recipient, and only on it -----------------------------------


def test_a_bounce_with_our_verp_token_suppresses_its_recipient_only(world: World) -> None:
    deliver(
        world,
        dsn([ANA, BOB, "stranger@example.org"]),
        f"bounces+{token_of(world, ANA)}@acme.example",
    )
    assert suppressed(world) == {ANA}
    assert world.kinds() == ["bounce"]
    assert world.store.sending.message_counts().get("bounced") == 1


def test_a_bounce_at_its_bounce_address_quoting_our_message_id_suppresses_its_recipient_only(
    world: World,
) -> None:
    deliver(
        world,
        dsn([BOB.upper(), CARL], original_id=message_id_of(world, BOB)),
        f"bounces+{token_of(world, BOB)}@acme.example",
    )
    assert suppressed(world) == {BOB}


def test_a_report_about_our_mail_naming_another_address_suppresses_nobody(world: World) -> None:
    """Our decision: a DSN names who failed; if that is not the address we mailed, it says
    nothing about our recipient, so nobody is suppressed and a person reviews it."""
    bounces = f"bounces+{token_of(world, ANA)}@acme.example"
    deliver(world, dsn([BOB]), bounces)
    for _ in range(3):
        deliver(world, dsn([CARL], status="4.2.2"), bounces)
    assert suppressed(world) == set()
    rows, total = world.store.responses.unmatched(10)
    assert total == 4 and {r.reason for r in rows} == {"other_address"}


def test_a_complaint_about_our_mail_naming_another_address_plainly_suppresses_nobody(
    world: World,
) -> None:
    """Knowing one of our Message-IDs (a forwarded mail shows it) is not enough to silence
    its recipient with a complaint about someone else; a feedback loop that redacts the
    complainer's address still acts on the address our message went to."""
    deliver(
        world,
        arf("mallory@evil.example", original_id=message_id_of(world, ANA)),
        f"bounces+{token_of(world, ANA)}@acme.example",
    )
    deliver(world, arf("mallory@evil.example"), f"bounces+{token_of(world, BOB)}@acme.example")
    assert suppressed(world) == set()
    rows, total = world.store.responses.unmatched(10)
    assert total == 2 and {r.reason for r in rows} == {"other_address"}
    deliver(
        world,
        arf("redacted@example.net", original_id=message_id_of(world, CARL)),
        f"bounces+{token_of(world, CARL)}@acme.example",
    )
    deliver(world, arf("xxxxxxxx@example.com"), f"bounces+{token_of(world, BOB)}@acme.example")
    assert suppressed(world) == {CARL, BOB}
    assert unmatched(world) == 2


def test_a_mail_that_cannot_be_read_is_kept_not_dropped(world: World) -> None:
    """Answered "250 recorded", so recorded: a mail nested too deep to parse is kept for
    review, and the listener goes on."""
    nested = "".join(
        f"--b{i}\nContent-Type: multipart/mixed; boundary=b{i + 1}\n\n" for i in range(2000)
    )
    deep = "From: x@example.org\nSubject: deep\nMIME-Version: 1.0\n"
    deep += f"Content-Type: multipart/mixed; boundary=b0\n\n{nested}"
    deliver(world, deep.encode(), "postmaster@acme.example")
    rows, total = world.store.responses.unmatched(5)
    assert total == 1 and rows[0].reason == "unreadable"
    assert suppressed(world) == set()


def test_three_soft_bounces_of_our_mail_suppress_its_recipient(world: World) -> None:
    bounces = f"bounces+{token_of(world, CARL)}@acme.example"
    for _ in range(3):
        deliver(world, dsn([CARL, ANA], status="4.2.2"), bounces)
    assert suppressed(world) == {CARL}


# -- replies ----------------------------------------------------------------------------------


@ONE_WORLD
@given(
    forgery=st.sampled_from(["random thread", "random reply token", "another's mail", "no thread"]),
    victim=st.sampled_from([ANA, BOB]),
)
def test_a_forged_reply_never_reaches_a_call_list_as_the_customers_reply(
    world: World, forgery: str, victim: str
) -> None:
    other = BOB if victim == ANA else ANA
    foreign = secrets.token_urlsafe(18)
    to, thread = {
        "random thread": ("reply@acme.example", f"<{foreign}@acme.example>"),
        "random reply token": (f"reply+{foreign}@acme.example", None),
        "another's mail": (f"reply+{token_of(world, other)}@acme.example", None),
        "no thread": (f"reply+{foreign}@acme.example", f"<{foreign}@elsewhere.example>"),
    }[forgery]
    deliver(world, reply(victim.title(), thread), to)
    since = world.service.clock() - timedelta(days=30)
    assert world.store.calls.waiting_replies(since) == []
    assert world.store.responses.replies() == []  # nothing new for a rep
    assert "reply" not in world.kinds()


def test_a_reply_from_our_customer_reaches_the_rep_and_a_forward_from_a_colleague_does_not(
    world: World,
) -> None:
    deliver(
        world, reply("colleague@example.com", None), f"reply+{token_of(world, ANA)}@acme.example"
    )
    since = world.service.clock() - timedelta(days=30)
    assert world.store.calls.waiting_replies(since) == []
    assert [r["sender"] for r in world.store.responses.replies("unverified")] == [
        "colleague@example.com"
    ]
    deliver(world, reply("Ana <ANA@example.com>", message_id_of(world, ANA)), "reply@acme.example")
    assert len(world.store.calls.waiting_replies(since)) == 1


# -- limits -----------------------------------------------------------------------------------


def test_recipients_beyond_the_limit_are_refused_with_452(world: World) -> None:
    crowd = [f"bounces+x{i}@acme.example" for i in range(20_000)]

    async def go() -> dict[str, aiosmtplib.SMTPResponse]:
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=world.port, timeout=60) as smtp:
            errors, _ = await smtp.sendmail("", crowd, b"Subject: hi\r\n\r\nhi\r\n")
            return errors

    errors = asyncio.run(go())
    assert len(errors) == 20_000 - Limits().max_recipients
    assert {e.code for e in errors.values()} == {452}


def test_connections_and_size_beyond_the_limits_are_refused(store: Store, tmp_path: Path) -> None:
    limits = Limits(max_bytes=64 * 1024, max_connections=2)
    with inbound_world(store, tmp_path, CUSTOMERS, limits) as world:

        async def go() -> None:
            first = aiosmtplib.SMTP(hostname="127.0.0.1", port=world.port, timeout=10)
            second = aiosmtplib.SMTP(hostname="127.0.0.1", port=world.port, timeout=10)
            await first.connect()
            await second.connect()
            third = aiosmtplib.SMTP(hostname="127.0.0.1", port=world.port, timeout=10)
            with pytest.raises(aiosmtplib.SMTPConnectResponseError) as refused:
                await third.connect()
            assert refused.value.code == 421
            third.close()
            await first.quit()
            await asyncio.sleep(0.1)
            third = aiosmtplib.SMTP(hostname="127.0.0.1", port=world.port, timeout=10)
            await third.connect()  # a place came free
            big = b"Subject: big\r\n\r\n" + b"x" * 100 + b"\r\n" * 1000 * 2
            big += (b"y" * 998 + b"\r\n") * 100
            with pytest.raises(aiosmtplib.SMTPResponseException) as too_big:
                await third.sendmail("", ["postmaster@acme.example"], big)
            assert too_big.value.code == 552
            third.close()
            await second.quit()

        asyncio.run(go())
        assert unmatched(world) == 0


def test_one_sender_cannot_take_every_place_from_the_others(store: Store, tmp_path: Path) -> None:
    """Connections from one address stop at the per-client limit (421); another address
    still gets in, and a place freed is usable again."""
    limits = Limits(max_connections=10, max_per_client=2)
    with inbound_world(store, tmp_path, CUSTOMERS, limits) as world:

        def smtp(source: str) -> aiosmtplib.SMTP:
            return aiosmtplib.SMTP(
                hostname="127.0.0.1", port=world.port, timeout=10, source_address=(source, 0)
            )

        async def go() -> None:
            hog = [smtp("127.0.0.2"), smtp("127.0.0.2")]
            for one in hog:
                await one.connect()
            third = smtp("127.0.0.2")
            with pytest.raises(aiosmtplib.SMTPConnectResponseError) as refused:
                await third.connect()
            assert refused.value.code == 421
            third.close()
            other = smtp("127.0.0.3")
            await other.connect()  # the hog holds its two places, not everyone's
            errors, _ = await other.sendmail(
                "", ["postmaster@acme.example"], b"Subject: hi\r\n\r\nhi\r\n"
            )
            assert errors == {}
            await other.quit()
            await hog[0].quit()
            await asyncio.sleep(0.1)
            again = smtp("127.0.0.2")
            await again.connect()  # a place of its own came free
            await again.quit()
            await hog[1].quit()

        asyncio.run(go())


# -- the webhook --------------------------------------------------------------------------------


@ONE_WORLD
@given(
    before=st.sampled_from(["", " ", "\t", "\n"]),
    after=st.sampled_from(["", " ", "\n", "\r\n", " \n"]),
    who=st.sampled_from([("ana", "example.com"), ("carl", "bücher.example")]),
    upper=st.booleans(),
    event=st.integers(min_value=0, max_value=10**9),
)
def test_webhook_recipients_are_normalised_before_they_are_compared_or_stored(
    world: World, before: str, after: str, who: tuple[str, str], upper: bool, event: int
) -> None:
    local, domain = who
    address = f"{local}@{domain}".upper() if upper else f"{local}@{domain}"
    mailed = ANA if local == "ana" else CARL
    found = record_provider_event(
        world.store,
        ProviderEvent(
            id=f"evt-{event}-{local}",
            type="bounce",
            message=message_id_of(world, mailed),
            recipient=f"{before}{address}{after}",
        ),
        world.service.clock(),
    )
    assert found.action in ("suppressed", "duplicate")
    assert world.store.sending.is_suppressed(mailed)
    assert suppressed(world) <= {ANA, CARL}


def test_a_webhook_bounce_for_another_recipient_or_an_unknown_message_is_unmatched(
    world: World,
) -> None:
    now = world.service.clock()
    for event in (
        ProviderEvent(id="e1", type="bounce", message=token_of(world, ANA), recipient=BOB),
        ProviderEvent(id="e2", type="complaint", message="<nope@acme.example>", recipient=ANA),
        ProviderEvent(id="e3", type="soft_bounce", recipient=ANA),
    ):
        assert record_provider_event(world.store, event, now).action == "unmatched"
        assert record_provider_event(world.store, event, now).action == "duplicate"  # a retry
    assert suppressed(world) == set()
    assert unmatched(world) == 3
    # The same event id again, now naming a genuine message and its address: still the
    # event already kept, never acted on as new.
    again = ProviderEvent(id="e1", type="bounce", message=token_of(world, ANA), recipient=ANA)
    assert record_provider_event(world.store, again, now).action == "duplicate"
    assert suppressed(world) == set()


# -- the List-Unsubscribe mailto ------------------------------------------------------------------


def test_the_unsigned_mailto_unsubscribes_nobody_and_the_signed_one_does_even_lower_cased(
    world: World,
) -> None:
    deliver(
        world,
        reply("someone@example.org", None),
        f"unsubscribe+{token_of(world, ANA)}@acme.example",
    )
    assert suppressed(world) == set()
    assert world.store.responses.unmatched(1)[0][0].reason == "bad_signature"
    sent = next(m for m in world.sink.received if m["to"] == [ANA])
    mailto = str(sent["message"]["List-Unsubscribe"]).split("<mailto:", 1)[1].split(">", 1)[0]
    assert len(mailto.split("@", 1)[0]) <= 64
    deliver(world, reply("someone@example.org", None), mailto.lower())
    assert suppressed(world) == {ANA}
    assert world.kinds() == ["unsubscribe"]


@given(
    key=st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
        min_size=24,
        max_size=24,
    ),
    current=st.text(min_size=32, max_size=64),
    previous=st.text(min_size=32, max_size=64),
)
def test_the_mailto_signature_survives_lower_casing_and_key_rotation_but_not_tampering(
    key: str, current: str, previous: str
) -> None:
    address = unsubscribe_mailto(key, "acme.example", previous)
    local = address.split("@", 1)[0]
    assert len(local) <= 64
    signed = local.split("+", 1)[1]
    assert signed_unsubscribe_key(signed, [current, previous]) == key
    assert signed_unsubscribe_key(signed.lower(), [current, previous]) == key.lower()
    assert signed_unsubscribe_key(key, [current, previous]) is None
    if current != previous:
        assert signed_unsubscribe_key(signed, [current]) is None
    tampered = signed[:-1] + ("a" if signed[-1] != "a" else "b")
    assert signed_unsubscribe_key(tampered, [previous]) is None


# -- the operator's list --------------------------------------------------------------------------


def test_reengage_inbound_unmatched_lists_them_newest_first_within_80_columns(
    world: World, database_url: str, tmp_path: Path
) -> None:
    deliver(world, arf(BOB), "fbl@acme.example")
    deliver(
        world,
        dsn(["someone.with.a.very.long.address.indeed@subdomain.example.org"]),
        "postmaster@acme.example",
    )
    env = {"REENGAGE_DATABASE_URL": database_url, "COLUMNS": "80"}
    done = inprocess.cli("inbound", "unmatched", "--limit", "1", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert "the newest 1 of 2" in done.stdout
    assert "someone.with.a.very.long" in done.stdout and "bob@example.com" not in done.stdout
    assert max(len(line) for line in done.stdout.splitlines()) <= 80
