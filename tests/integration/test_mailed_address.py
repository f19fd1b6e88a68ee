"""A customer who changes address after we mailed her: what comes back about the old mail
acts on the address it went to. A real mail goes to ana@old.example through the SMTP sink,
a customer import gives her ana@new.example, and then the old address bounces (a DSN over
the inbound listener, a provider's webhook) or its mailto unsubscribe arrives: the old
address is suppressed, the new one is not, and her next mail goes to the new one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from reengage.ingest import Kind, import_file
from reengage.responses import ProviderEvent, record_provider_event
from reengage.store import Store
from tests.integration.test_inbound import World, inbound_world
from tests.integration.test_inbound_trust import deliver, dsn, reply
from tests.integration.test_sending import run_days

OLD, NEW = "ana@old.example", "ana@new.example"


@pytest.fixture
def world(store: Store, tmp_path: Path) -> Iterator[World]:
    with inbound_world(store, tmp_path, f"customer_id,email,first_name\nc1,{OLD},Ana\n") as w:
        assert [m["to"] for m in w.sink.received] == [[OLD]]
        moved = tmp_path / "moved.csv"
        moved.write_text("customer_id,email,first_name\nc1,Ana@New.Example,Ana\n")
        report = import_file(
            store, Kind.CUSTOMERS, moved, now=w.service.clock(), zone=ZoneInfo("UTC")
        )
        assert report.ok, report.rejected
        yield w


def message_id(w: World) -> str:
    return str(w.sink.received[0]["message"]["Message-ID"])


def enrollment_statuses(w: World) -> list[str]:
    found = w.store.customers.customer_ids(["c1"])["c1"]
    lines, _ = w.store.sending.customer_sending(found)
    return [line.status for line in lines]


def test_a_bounce_of_the_old_mail_suppresses_the_old_address_and_mail_goes_on_to_the_new(
    world: World,
) -> None:
    assert world.store.responses.message(world.token).email == OLD  # type: ignore[union-attr]
    # A DSN naming her new address is not about the mail we sent: kept, acting on nobody.
    bounces = f"bounces+{world.bounce_token}@acme.example"
    deliver(world, dsn([NEW], original_id=message_id(world)), bounces)
    assert world.store.responses.unmatched(1)[0][0].reason == "other_address"
    # A reply from her new address to the old mail is not from whom we mailed.
    deliver(world, reply(NEW, message_id(world)), "reply@acme.example")
    assert world.store.responses.replies() == []
    # The real bounce, naming the address the mail went to.
    deliver(world, dsn(["<Ana@Old.Example>"], original_id=message_id(world)), bounces)
    assert world.kinds() == ["bounce"]
    assert world.store.sending.suppressed_among([OLD, NEW]) == {OLD}
    assert enrollment_statuses(world) == ["active"]
    run_days(world.service, 20)
    assert [m["to"] for m in world.sink.received] == [[OLD], [NEW]]


def test_a_webhook_bounce_naming_no_address_suppresses_the_address_mailed(world: World) -> None:
    now = world.service.clock()
    event = ProviderEvent("e1", "bounce", world.token, None, "5.1.1")
    assert record_provider_event(world.store, event, now).action == "suppressed"
    named_new = ProviderEvent("e2", "complaint", message_id(world), NEW)
    assert record_provider_event(world.store, named_new, now).action == "unmatched"
    named_old = ProviderEvent("e3", "complaint", message_id(world), OLD.upper())
    assert record_provider_event(world.store, named_old, now).action == "suppressed"
    assert world.store.sending.suppressed_among([OLD, NEW]) == {OLD}
    assert enrollment_statuses(world) == ["active"]
    assert world.kinds() == ["bounce", "complaint"]


def test_the_old_mails_mailto_unsubscribe_is_the_persons_wish_at_both_addresses(
    world: World,
) -> None:
    header = str(world.sink.received[0]["message"]["List-Unsubscribe"])
    mailto = header.split("<mailto:", 1)[1].split(">", 1)[0]
    deliver(world, reply(OLD, None), mailto)
    assert world.kinds() == ["unsubscribe"]
    assert world.store.sending.suppressed_among([OLD, NEW]) == {OLD, NEW}
    assert enrollment_statuses(world) == ["exited"]
