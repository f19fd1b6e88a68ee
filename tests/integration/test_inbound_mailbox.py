"""A mailbox instead of an MX: bounces, complaints and replies delivered into a real dovecot
on loopback, read over IMAP and POP3, end as they do over SMTP; a poll stopped between
recording and marking (a fault, two pollers at once, a SIGKILL of `reengage inbound poll`,
a connection cut mid-fetch) records nothing twice and loses nothing; malformed and oversized
mail is kept; a wrong password says which setting to fix."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from reengage.config import load_settings
from reengage.errors import MailboxError
from reengage.inbound import InboundHandler
from reengage.mailbox import Mailbox, MailboxOptions, open_mailbox, parse_url
from reengage.mailbox_poll import MailboxPoller, poller_from_settings
from reengage.store import Store
from tests.conftest import child_env
from tests.integration.dovecot import Account, Dovecot, running_dovecot
from tests.integration.inprocess import cli
from tests.integration.smtp_sink import free_port
from tests.integration.test_inbound import (
    FIXTURE_ADDRESSES,
    FIXTURE_TOKENS,
    FIXTURES,
    inbound_world,
)
from tests.integration.test_sending import ROOT, run_days

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
BAD_PASSWORD = "n0t-the-Passw0rd"
REENGAGE = str(Path(sys.executable).with_name("reengage"))
CUSTOMERS = (
    "customer_id,email,first_name\n"
    "c1,ana@example.com,Ana\nc2,bob@example.com,Bob\n"
    "c3,cem@example.com,Cem\nc4,dora@example.com,Dora\n"
)
# Each customer's answer to our first mail, and the address it was delivered to.
ANSWERS = {
    "ana@example.com": ("postfix_hard_bounce.eml", "bounces+{bounce}@acme.example"),
    # A feedback loop that sends to the Return-Path; one at fbl@ acts only when signed by a
    # listed reporter (tests/integration/test_report_trust.py).
    "bob@example.com": ("yahoo_arf_complaint.eml", "bounces+{bounce}@acme.example"),
    "cem@example.com": ("gmail_reply.eml", "reply+{token}@acme.example"),
    "dora@example.com": ("out_of_office_auto_submitted.eml", "reply+{token}@acme.example"),
}


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    with running_dovecot() as server:
        yield server


def answer(fixture: str, token: str, address: str) -> bytes:
    """A fixture rewritten to answer our real mail to ``address``."""
    raw = (FIXTURES / fixture).read_bytes()
    for old in FIXTURE_TOKENS:
        raw = raw.replace(old.encode(), token.encode())
    for old in FIXTURE_ADDRESSES:
        raw = raw.replace(old.encode(), address.encode())
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def stray(n: int, size: int = 0) -> bytes:
    """A reply naming no mail of ours (kept unverified, and unmatched for review)."""
    filler = ("x" * 70 + "\r\n") * (size // 72)
    return (
        f"From: Someone {n} <someone{n}@elsewhere.example>\r\nTo: info@acme.example\r\n"
        f"Subject: Re: our order {n}\r\nMessage-ID: <stray{n}@elsewhere.example>\r\n"
        f"In-Reply-To: <not-ours-{n}@elsewhere.example>\r\n\r\nThanks, see below.\r\n{filler}"
    ).encode()


def poller(
    store: Store,
    account: Account,
    scheme: str = "imap",
    *,
    port: int | None = None,
    max_bytes: int = 4 << 20,
    wrap: Callable[[Mailbox], Mailbox] | None = None,
) -> MailboxPoller:
    """A poller of ``account`` recording through a listener's own handler (naming no mail
    of ours moves a mail to reengage/not-ours, so every mail read leaves the inbox)."""
    url = parse_url(account.url(scheme), f"REENGAGE_INBOUND_{scheme.upper()}_URL")
    if port is not None:
        url = dataclasses.replace(url, port=port)
    options = MailboxOptions(not_ours_folder="reengage/not-ours", plaintext=True, timeout=10)
    handler = InboundHandler(store, lambda: NOW)

    def connect() -> Mailbox:
        box = open_mailbox(url, options)
        return wrap(box) if wrap else box

    return MailboxPoller(store, connect, handler.receive, lambda: NOW, max_bytes=max_bytes)


def stored(store: Store) -> tuple[int, int, int]:
    """Unmatched records, replies kept, and mails noted as read."""
    with store.engine.connect() as conn:
        mails = conn.scalar(sa.text("SELECT count(*) FROM inbound_mails")) or 0
    return store.responses.unmatched(1)[1], len(store.responses.replies(None)), mails


def deliver_answers(account: Any, sent: list[dict[str, Any]]) -> None:
    """Each customer's answer (``ANSWERS``) to the mail they were sent, delivered to the
    address it names: a bounce or complaint to the mail's signed bounce address."""
    bounces = {m["to"][0]: m["from"].split("+", 1)[1].split("@")[0] for m in sent}
    for address, (fixture, to) in ANSWERS.items():
        bounce = bounces[address]  # KEY.SIG
        token = bounce.partition(".")[0]  # the key in our Message-ID
        account.deliver(
            answer(fixture, token, address), delivered_to=to.format(token=token, bounce=bounce)
        )


@pytest.mark.parametrize("scheme", ["imap", "pop3"])
def test_bounce_complaint_reply_and_out_of_office_from_a_mailbox_end_as_over_smtp(
    store: Store, tmp_path: Path, dovecot: Dovecot, scheme: str
) -> None:
    account = dovecot.account()
    with inbound_world(store, tmp_path, CUSTOMERS) as world:
        deliver_answers(account, world.sink.received)
        settings = load_settings(
            env_file=None,
            secret_key="s" * 40,
            inbound_mailbox_plaintext=True,
            **{f"inbound_{scheme}_url": account.url(scheme)},
        )
        found = poller_from_settings(settings, store, world.handler.receive, world.service.clock)
        assert found is not None
        # A mailbox that does not answer is one logged event, however many polls fail (a
        # closed port: a refused sign-in would make dovecot slow down every later one).
        away = load_settings(
            env_file=None,
            secret_key="s" * 40,
            inbound_mailbox_plaintext=True,
            **{f"inbound_{scheme}_url": f"{scheme}://u:p@127.0.0.1:{free_port()}"},
        )
        with capture_logs() as logs:
            world.service.mailbox = poller_from_settings(
                away, store, world.handler.receive, world.service.clock
            )
            assert world.service.poll_mailbox() is None
            assert world.service.poll_mailbox() is None
            world.service.mailbox = found
            report = world.service.poll_mailbox()
        events = [e["event"] for e in logs if e["event"].startswith("mailbox_")]
        assert events == ["mailbox_unavailable", "mailbox_polled", "mailbox_back"]
        assert report is not None and sum(report.recorded.values()) == 4
        run_days(world.service, 1, step_hours=24)  # a pass reads the mailbox: nothing new

        kinds = sorted(r.kind for r in store.responses.recent(NOW.replace(year=2000)))
        assert kinds == ["auto_reply", "bounce", "complaint", "reply"]  # each once
        assert store.sending.is_suppressed("ana@example.com")
        assert store.sending.is_suppressed("bob@example.com")
        assert not store.sending.is_suppressed("cem@example.com")
        assert not store.sending.is_suppressed("dora@example.com")
        assert store.sending.message_counts().get("bounced") == 1
        reply = next(r for r in store.responses.replies() if not r["automatic"])
        assert "delivery times got too long" in reply["text"]
        assert "it has been a while" not in reply["text"]
        # The bounce, the complaint and the reply ended their sequences (the second mail
        # never goes out); the out-of-office changed nothing.
        with store.engine.connect() as conn:
            states = dict(
                conn.execute(
                    sa.text(
                        "SELECT c.email, e.status || ':' || coalesce(e.exit_reason, '') "
                        "FROM enrollments e JOIN customers c ON c.id = e.customer_id"
                    )
                ).all()
            )
        assert states == {
            "ana@example.com": "exited:bounce",
            "bob@example.com": "exited:complaint",
            "cem@example.com": "exited:reply",
            "dora@example.com": "active:",
        }
    assert account.count("INBOX") == 0
    assert account.count("reengage/processed") == (4 if scheme == "imap" else 0)


def test_a_bounce_address_forged_below_the_servers_delivered_to_bounces_nobody(
    store: Store, tmp_path: Path, dovecot: Dovecot
) -> None:
    # A real bounce's words at the mailbox's own address, with the customer's signed bounce
    # address (its Return-Path, seen by anyone the mail reached) written in by the sender.
    account = dovecot.account()
    with inbound_world(store, tmp_path, CUSTOMERS) as world:
        sent = next(m for m in world.sink.received if m["to"][0] == "ana@example.com")
        bounce = sent["from"].split("+", 1)[1].split("@")[0]  # KEY.SIG
        forged = f"Delivered-To: bounces+{bounce}@acme.example\r\n".encode() + answer(
            "postfix_hard_bounce.eml", bounce.partition(".")[0], "ana@example.com"
        )
        account.deliver(forged, delivered_to="mailbox@acme.example")
        settings = load_settings(
            env_file=None,
            secret_key="s" * 40,
            inbound_mailbox_plaintext=True,
            inbound_imap_url=account.url(),
        )
        found = poller_from_settings(settings, store, world.handler.receive, world.service.clock)
        assert found is not None
        report = found.poll()
        assert report.failed == 0 and report.error is None
        assert not store.sending.is_suppressed("ana@example.com")
        assert store.sending.message_counts().get("bounced") is None
        unmatched, _ = store.responses.unmatched(10)
        assert [u.reason for u in unmatched] == ["not_verp"]  # "not at bounce address"


class Crash(BaseException):
    """The process dying: nothing after it runs (not an Exception anyone catches)."""


def test_a_poll_stopped_after_recording_before_marking_records_nothing_twice(
    store: Store, dovecot: Dovecot
) -> None:
    account = dovecot.account()
    for n in range(5):
        account.deliver(stray(n))
    calls = [0]

    def dies_at_the_third_mark(box: Mailbox) -> Mailbox:
        leave = box.leave

        def crash_then_leave(item: object) -> None:
            calls[0] += 1
            if calls[0] == 3:  # the third mail is recorded and committed, not yet moved
                raise Crash
            leave(item)  # type: ignore[arg-type]

        box.leave = crash_then_leave  # type: ignore[method-assign]
        return box

    with pytest.raises(Crash):
        poller(store, account, wrap=dies_at_the_third_mark).poll()
    assert stored(store) == (3, 3, 3)
    assert account.count("INBOX") == 3  # the third stays until it is marked

    report = poller(store, account).poll()  # the restarted poller
    assert report.duplicates == 1 and sum(report.recorded.values()) == 2
    assert stored(store) == (5, 5, 5)
    assert account.count("INBOX") == 0 and account.count("reengage/not-ours") == 5


def test_two_pollers_at_once_record_each_mail_once(store: Store, dovecot: Dovecot) -> None:
    account = dovecot.account()
    for n in range(12):
        account.deliver(stray(n))
    pollers = [poller(store, account), poller(store, account)]
    errors: list[BaseException] = []

    def run(p: MailboxPoller) -> None:
        try:
            p.poll()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(p,)) for p in pollers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors  # a mail the other poller moved first is no error
    assert stored(store) == (12, 12, 12)
    # Both may move one mail at the same moment (a copy too many in the folder; the daemon's
    # workers take turns for that): the database holds each mail once, the inbox none.
    assert account.count("INBOX") == 0 and account.count("reengage/not-ours") >= 12


def test_malformed_and_oversized_mail_is_kept_and_the_rest_recorded(
    store: Store, dovecot: Dovecot
) -> None:
    account = dovecot.account()
    account.deliver(stray(1))
    account.deliver((FIXTURES / "garbage_no_headers.eml").read_bytes())
    account.deliver(b"\x00\xff\xfe" * 40 + b"\r\n\r\n--\r\n")
    account.deliver(stray(2, size=80_000))  # over the 64 KiB limit below
    account.deliver(stray(3))
    options = MailboxOptions(plaintext=True, timeout=10)  # not ours: left in the inbox
    url = parse_url(account.url(), "REENGAGE_INBOUND_IMAP_URL")
    handler = InboundHandler(store, lambda: NOW)
    leaving = MailboxPoller(
        store, lambda: open_mailbox(url, options), handler.receive, lambda: NOW, max_bytes=64 << 10
    )
    first = leaving.poll()
    assert first.too_large == 1 and first.failed == 0 and first.error is None
    unmatched, _ = store.responses.unmatched(10)
    assert sorted(u.reason for u in unmatched) == ["no_message", "no_message", "too_large"]
    too_large = next(u for u in unmatched if u.reason == "too_large")
    assert "REENGAGE_INBOUND_MAX_BYTES" in (too_large.detail or "")
    assert account.count("INBOX") == 5  # nothing that is not ours is ever deleted

    again = MailboxPoller(
        store, lambda: open_mailbox(url, options), handler.receive, lambda: NOW, max_bytes=64 << 10
    ).poll()  # a new process: the keyword keeps what was read out of the search
    assert sum(again.recorded.values()) == 0 and again.too_large == 0
    assert again.duplicates == 0  # not even read again
    assert store.responses.unmatched(10)[1] == 3
    assert account.count("INBOX") == 5


@pytest.fixture
def fuzzed(dovecot: Dovecot) -> tuple[Account, list[bytes]]:
    """One mailbox for every example of a property test, and what was delivered into it."""
    return dovecot.account(), []


_HEADERS = st.sampled_from(
    [
        b"From: a@b.example",
        b"Content-Type: multipart/report; report-type=delivery-status",
        b"Content-Type: multipart/mixed; boundary=x",
        b"Auto-Submitted: auto-replied",
        b"In-Reply-To: <x@acme.example>",
        b"Subject: =?utf-8?b?////?=",
        b"To: reply+@acme.example",
    ]
)
_MAILS = st.binary(max_size=2000) | st.builds(
    lambda headers, body: b"\r\n".join(headers) + b"\r\n\r\n" + body,
    st.lists(_HEADERS, max_size=5),
    st.binary(max_size=1500),
)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=_MAILS)
def test_whatever_a_mailbox_holds_the_poller_goes_on_and_deletes_nothing(
    store: Store, fuzzed: tuple[Account, list[bytes]], raw: bytes
) -> None:
    account, delivered = fuzzed
    account.deliver(raw)
    delivered.append(raw)
    report = poller(store, account).poll()
    assert report.error is None and report.failed == 0
    # Nothing here names a mail of ours: every mail is set aside, none deleted or lost.
    assert account.count("INBOX") == 0
    assert account.count("reengage/not-ours") == len(delivered)


class CuttingProxy:
    """A TCP proxy to ``port`` that cuts its first connection once the server has sent
    ``cut_after`` bytes (a server or network going away mid-fetch); later ones pass."""

    def __init__(self, port: int, cut_after: int) -> None:
        self.target, self.cut_after, self.cuts = port, cut_after, 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            limit = self.cut_after if self.cuts == 0 else None
            self.cuts += 1
            threading.Thread(target=self._pipe, args=(client, server, None), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, limit), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket, limit: int | None) -> None:
        sent = 0
        try:
            while chunk := src.recv(4096):
                if limit is not None and sent + len(chunk) > limit:
                    dst.sendall(chunk[: limit - sent])
                    break
                dst.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self.listener.close()


@pytest.mark.parametrize("scheme", ["imap", "pop3"])
def test_a_connection_cut_mid_fetch_loses_nothing_and_the_next_poll_goes_on(
    store: Store, dovecot: Dovecot, scheme: str
) -> None:
    account = dovecot.account()
    for n, size in enumerate((0, 40_000, 0)):
        account.deliver(stray(n, size))
    port = dovecot.imap_port if scheme == "imap" else dovecot.pop3_port
    proxy = CuttingProxy(port, cut_after=20_000)  # inside the second mail
    try:
        cut = poller(store, account, scheme, port=proxy.port).poll()
    finally:
        proxy.close()
    assert cut.error is not None and sum(cut.recorded.values()) == 1
    assert stored(store) == (1, 1, 1)

    later = poller(store, account, scheme).poll()
    assert later.error is None
    # POP3 has nowhere to move mail that is not ours: the first is read again, recognised.
    assert later.duplicates == (1 if scheme == "pop3" else 0)
    assert stored(store) == (3, 3, 3)
    assert account.count("INBOX") == (3 if scheme == "pop3" else 0)  # POP3 leaves not-ours


@pytest.mark.parametrize("mode", ["flag", "delete"])
def test_imap_flags_or_deletes_only_the_mail_recorded(dovecot: Dovecot, mode: str) -> None:
    account = dovecot.account()
    account.deliver(stray(1))
    account.deliver(stray(2))
    url = parse_url(account.url(), "REENGAGE_INBOUND_IMAP_URL")
    box = open_mailbox(url, MailboxOptions(done=mode, plaintext=True, timeout=10))
    try:
        first, second = box.items()
        box.done(first)
        assert box.items() == [second]  # the next poll's search leaves the first out
    finally:
        box.close()
    conn = account.imap()
    try:
        conn.select("INBOX", readonly=True)
        _, flags = conn.uid("FETCH", "1:*", "(FLAGS)")
    finally:
        conn.logout()
    if mode == "flag":
        assert len(flags) == 2
        assert b"\\Seen" in flags[0] and b"$Reengage" in flags[0]  # type: ignore[operator]
        assert b"\\Seen" not in flags[1]  # type: ignore[operator]
    else:
        assert len(flags) == 1 and b"\\Seen" not in flags[0]  # type: ignore[operator]
        assert account.count("INBOX") == 1


def test_a_wrong_password_names_the_setting(dovecot: Dovecot, tmp_path: Path) -> None:
    # dovecot makes a second failed sign-in from one address wait seconds: one per server.
    account = dovecot.account()
    database = f"sqlite:///{tmp_path / 'wrong.db'}"
    Store.open(database, upgrade=True).close()
    settings = _settings(database, account.url(password=BAD_PASSWORD), tmp_path)
    refused = cli("inbound", "poll", cwd=tmp_path, env=settings)
    assert refused.returncode == 1
    assert "REENGAGE_INBOUND_IMAP_URL" in refused.stderr and "password" in refused.stderr
    assert BAD_PASSWORD not in refused.stderr  # the password is never printed
    # No TLS on offer and plain text not allowed: refused before any password is sent.
    for scheme in ("imap", "pop3"):
        setting = f"REENGAGE_INBOUND_{scheme.upper()}_URL"
        with pytest.raises(MailboxError, match=f"{setting}: 127.0.0.1 offers no ") as plain:
            open_mailbox(parse_url(account.url(scheme), setting), MailboxOptions(timeout=10))
        assert f"{scheme}s://" in str(plain.value)
    with running_dovecot() as fresh:  # `reengage doctor` signs in too, and says the same
        pop3 = fresh.account()
        pop3.deliver(stray(1))
        settings = {**settings, "REENGAGE_INBOUND_IMAP_URL": ""}
        settings["REENGAGE_INBOUND_POP3_URL"] = pop3.url("pop3")
        fine = cli("doctor", cwd=tmp_path, env=settings)
        assert "ok   inbound mailbox: pop3://" in fine.stdout
        assert "1 mail(s) waiting" in fine.stdout
        settings["REENGAGE_INBOUND_POP3_URL"] = pop3.url("pop3", password=BAD_PASSWORD)
        doctor = cli("doctor", cwd=tmp_path, env=settings)
        assert doctor.returncode == 1
        assert "FAIL inbound mailbox: REENGAGE_INBOUND_POP3_URL: 127.0.0.1 refused" in doctor.stdout
        assert "password" in doctor.stdout and BAD_PASSWORD not in doctor.stdout


def _settings(database_url: str, url: str, tmp_path: Path) -> dict[str, str]:
    (tmp_path / "campaigns").mkdir(exist_ok=True)
    return {
        "REENGAGE_DATABASE_URL": database_url,
        "REENGAGE_SECRET_KEY": "s" * 40,
        "REENGAGE_CAMPAIGNS_DIR": str(tmp_path / "campaigns"),
        "REENGAGE_TEMPLATES_DIR": str(ROOT / "templates"),
        "REENGAGE_INBOUND_IMAP_URL": url,
        "REENGAGE_INBOUND_MAILBOX_PLAINTEXT": "true",
        "REENGAGE_INBOUND_MAILBOX_NOT_OURS_FOLDER": "reengage/not-ours",
        "REENGAGE_LOG_FORMAT": "json",
    }


def test_sigkill_of_reengage_inbound_poll_mid_poll_records_nothing_twice(
    store: Store, database_url: str, dovecot: Dovecot, tmp_path: Path
) -> None:
    account = dovecot.account()
    total = 60
    for n in range(total):
        account.deliver(stray(n))
    settings = _settings(database_url, account.url(), tmp_path)
    child = subprocess.Popen(
        [REENGAGE, "inbound", "poll"],
        env=child_env(**settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while stored(store)[2] < 3 and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.005)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(10)
    killed_at = stored(store)[2]
    assert 3 <= killed_at < total, f"killed after {killed_at} of {total}: not mid-poll"

    again = cli("inbound", "poll", cwd=tmp_path, env=settings)  # the restarted poller
    assert again.returncode == 0, again.stderr
    assert stored(store) == (total, total, total)  # every mail once, whatever the moment
    assert account.count("INBOX") == 0
