"""A database that goes away mid-dispatch: delivered mail is never forgotten.

The daemon talks to PostgreSQL through a TCP relay on loopback that the test can cut, as a
network partition or a database restart would. Mails the server accepted while the
database was away are kept in the spool on disk and recorded when it is back: none of them
becomes ``unknown``, none is sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from reengage import jobs
from reengage.campaigns import parse_campaign
from reengage.errors import StoreError
from reengage.spool import Spool, outcome_line
from reengage.store import Store
from reengage.store.sending import Sent
from tests.integration.smtp_sink import running_sink
from tests.integration.test_chaos import ENROLLMENTS, MESSAGES
from tests.integration.test_cli import script
from tests.integration.test_sending import run_days, setup
from tests.integration.test_worker import (
    CAMPAIGN,
    LEASE,
    Clock,
    env,
    on_the_wire,
    prepare,
    start_worker,
    statuses,
    wait_for,
    workers,  # noqa: F401  # the fixture that kills what a failed test leaves running
)
from tests.integration.test_worker import NOW as WORKER_NOW

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


class Relay:
    """A TCP relay to PostgreSQL that can be cut (every connection dropped, new ones refused)
    and restored."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open = threading.Event()
        self.open.set()
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.open.is_set():
                client.close()
                continue
            server = socket.create_connection(self.target)
            with self.lock:
                self.pairs.append((client, server))
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.open.clear()
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for pair in pairs:
            for end in pair:
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                end.close()

    def restore(self) -> None:
        self.open.set()

    def close(self) -> None:
        self.cut()
        self.listener.close()


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_mail_delivered_while_the_database_is_away_is_recorded_when_it_is_back(
    database_url: str, tmp_path: Path
) -> None:
    url = make_url(database_url)
    relay = Relay((url.host or "127.0.0.1", url.port or 5432))
    direct = Store.open(database_url, upgrade=True)
    through = Store.open(url.set(host="127.0.0.1", port=relay.port).render_as_string(False))
    try:
        with running_sink(delay=0.05) as (sink, port):
            rows = "".join(f"c{i},u{i}@example.com,U{i}\n" for i in range(30))
            service = setup(through, tmp_path, port, "customer_id,email,first_name\n" + rows)
            service.spool = Spool(tmp_path / "spool", service.worker_id)
            service.batch = 30
            clock = service.clock_state  # type: ignore[attr-defined]
            clock["now"] += timedelta(days=1, hours=4)  # Tuesday 10:00: the window is open

            at_cut: list[int] = []

            async def cut_midway() -> None:
                # The database goes away once a few mails arrived and another is on its way:
                # marked sending, its bytes not at the server yet (they go out whatever
                # happens to the database). A mail marked sending whose bytes already
                # arrived is not on its way: the server gets a mail before its row says sent.
                for _ in range(1000):
                    arrived = len(sink.received)  # before the counts: none arrives uncounted
                    counts = direct.sending.message_counts()
                    begun = counts.get("sending", 0) + counts.get("sent", 0)
                    if arrived >= 5 and begun > arrived:
                        break
                    await asyncio.sleep(0.01)
                relay.cut()
                at_cut.append(arrived)

            async def one_pass() -> None:
                service.reload()
                service.detect()
                cutter = asyncio.ensure_future(cut_midway())
                with pytest.raises(StoreError):
                    await service.dispatch()
                await cutter
                await asyncio.sleep(30 * 0.05 + 0.5)  # the sends on the wire finish
                await service.mailer.close()

            asyncio.run(one_pass())
            delivered = len(sink.received)
            assert delivered > at_cut[0] >= 5  # what was on its way then was delivered
            relay.restore()
            # Back: the next passes record what was delivered meanwhile, then go on.
            run_days(service, 2, step_hours=6)
            ids = sink.message_ids()
        counts = Counter(direct.sending.message_counts())
        assert len(ids) == len(set(ids)), "a mail was sent twice"
        assert counts["unknown"] == 0, counts  # nothing delivered was forgotten
        assert counts["sent"] == len(ids), counts
        assert not list((tmp_path / "spool").glob("*.jsonl"))  # all written, files gone
    finally:
        through.close()
        direct.close()
        relay.close()


def test_an_outage_is_one_event_when_it_starts_and_one_when_it_ends(tmp_path: Path) -> None:
    from structlog.testing import capture_logs

    from reengage.compose import Workspace
    from reengage.config import load_settings
    from reengage.mailer import SmtpMailer
    from reengage.scheduler import Service

    store = Store.open(f"sqlite:///{tmp_path / 'db.sqlite'}", upgrade=True)
    ws = Workspace.from_settings(load_settings(env_file=None, campaigns_dir=tmp_path))
    service = Service(store, SmtpMailer("127.0.0.1", 9), ws, clock=lambda: NOW)
    answers = iter([StoreError("gone"), StoreError("gone"), StoreError("gone"), None])

    def tick() -> None:
        trouble = next(answers)
        if trouble is not None:
            raise trouble

    job = service._guarded(tick)
    with capture_logs() as logs:
        for _ in range(4):
            job()
    events = [e["event"] for e in logs if e["log_level"] in ("error", "info")]
    assert events == ["database_unavailable", "database_back"]
    store.close()


def test_the_outage_probe_says_the_database_is_back_as_soon_as_it_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pass that was cut off by the outage may run on for a while; the probe (every few
    seconds, only during an outage) logs `database_back` when the database answers."""
    from structlog.testing import capture_logs

    from reengage.compose import Workspace
    from reengage.config import load_settings
    from reengage.mailer import SmtpMailer
    from reengage.scheduler import Service

    store = Store.open(f"sqlite:///{tmp_path / 'db.sqlite'}", upgrade=True)
    ws = Workspace.from_settings(load_settings(env_file=None, campaigns_dir=tmp_path))
    service = Service(store, SmtpMailer("127.0.0.1", 9), ws, clock=lambda: NOW)
    probe = service._guarded(service._probe_outage)
    asked: list[int] = []
    real_check = store.check

    def check() -> None:
        asked.append(1)
        if len(asked) < 3:
            raise StoreError("still gone")
        real_check()

    monkeypatch.setattr(store, "check", check)
    with capture_logs() as logs:
        probe()  # no outage: it does not even ask
        service.database.down(StoreError("gone"))
        for _ in range(4):
            probe()
    events = [e["event"] for e in logs if e["log_level"] in ("error", "info")]
    assert events == ["database_unavailable", "database_back"]
    assert len(asked) == 3  # asked during the outage only, and not once it was over
    store.close()


OUTAGE_SECONDS = 50
OUTAGE_CUSTOMERS = 300


@pytest.mark.long
@pytest.mark.clock
@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_three_workers_through_a_50_second_outage_forget_no_delivered_mail(
    database_url: str,
    tmp_path: Path,
    workers: list[subprocess.Popen[Any]],  # noqa: F811
) -> None:
    """The issue's acceptance, as an operator would live it: three `reengage run` workers, a
    mail server that misbehaves, and the database unreachable for 50 seconds mid-run. Every
    delivered mail is recorded ``sent`` — only a mail whose reply the server itself dropped
    stays ``unknown`` — none is sent twice, none is lost."""
    url = make_url(database_url)
    relay = Relay((url.host or "127.0.0.1", url.port or 5432))
    store = prepare(database_url, tmp_path, OUTAGE_CUSTOMERS)
    campaign, _ = parse_campaign(CAMPAIGN, "always.yaml")
    assert campaign is not None
    jobs.detect_and_enroll(store, [campaign], WORKER_NOW)
    clock = Clock()
    through = url.set(host="127.0.0.1", port=relay.port).render_as_string(False)
    try:
        with running_sink() as (sink, port):
            sink.misbehave(seed=3)
            settings = env(
                through,
                tmp_path,
                port,
                REENGAGE_SEND_BATCH_SIZE="10",
                REENGAGE_SMTP_CONNECTIONS="2",
                REENGAGE_LOG_LEVEL="error",
            )
            for _ in range(3):
                start_worker(workers, tmp_path, settings, clock, output=True)
            wait_for(lambda: len(sink.received) >= 30)
            relay.cut()  # the database goes away with mails on the wire
            cut_at = len(sink.received)
            time.sleep(OUTAGE_SECONDS)
            assert len(sink.received) - cut_at <= 3 * 2, "sent while nothing could be recorded"
            relay.restore()
            wait_for(lambda: len(sink.received) >= cut_at + 60)  # going on after it
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            for worker in workers:
                _, errors = worker.communicate(timeout=60)
                assert worker.returncode == 0, errors[-2000:]
            # The server calms down and what is left is drained (retries included).
            sink.chaos = None
            for hours in range(1, 13):
                later = clock.now(later=LEASE + timedelta(hours=7 * hours))
                drained = script(
                    "run", "--once", cwd=tmp_path, env={**settings, "REENGAGE_NOW": later}
                )
                assert drained.returncode == 0, drained.stderr
                left = statuses(store)
                if not (left["queued"] or left["sending"] or left["retry"]):
                    break
            ids = sink.message_ids()
            kept_then_dropped = sink.kept_then_dropped
        counts = statuses(store)
        assert len(ids) == len(set(ids)), "a mail arrived twice"
        assert counts["queued"] == counts["sending"] == counts["retry"] == 0, counts
        assert counts["sent"] + counts["bounced"] + counts["unknown"] == OUTAGE_CUSTOMERS, counts
        # Every delivered mail is recorded sent, except those whose 250 the server dropped.
        with store.engine.connect() as conn:
            unknown = [
                token
                for (token,) in conn.execute(
                    sa.select(MESSAGES.c.token).where(MESSAGES.c.status == "unknown")
                )
            ]
        arrived = {i.strip("<>").partition("@")[0] for i in ids}  # Message-ID = <token@...>
        # Uncertain are exactly the mails whose 250 the server dropped: a mail that was
        # refused for now while the database was away is tried again, not left unknown.
        assert sum(token in arrived for token in unknown) == kept_then_dropped, counts
        assert counts["unknown"] == kept_then_dropped, counts
        assert counts["sent"] == len(ids) - kept_then_dropped, (counts, len(ids))
        assert not list((tmp_path / "reengage-spool").glob("*.jsonl"))  # every kept result written
    finally:
        store.close()
        relay.close()


def test_what_the_server_said_while_the_database_was_away_is_written_when_it_is_back(
    database_url: str, tmp_path: Path
) -> None:
    """Every outcome of a send begun before the database went away — accepted, try later,
    no such user, a refused mail, a lost reply — is kept on disk and written as it would
    have been at once; a mail never delivered is tried again, never left ``unknown``.
    Writing an entry twice, or after a person settled the message, changes nothing."""
    store, held = on_the_wire(database_url, tmp_path, 6)
    claimed, started = [c for c, _ in held], [s for _, s in held]
    now, later = WORKER_NOW, WORKER_NOW + timedelta(minutes=10)
    ids = [(s.message_id or 0, c.enrollment_id) for s, c in zip(started, claimed, strict=True)]
    spool = Spool(tmp_path / "spool", "worker-1")
    spool.keep(
        [Sent(ids[0][0], claimed[0], "250 OK", "<a@acme.example>", now, None)]  # accepted
    )
    spool.keep_lines(
        [
            outcome_line("retry", *ids[1], "451 busy", now, retry_at=later),
            outcome_line("bounced", *ids[2], "550 no such user", now, email=claimed[2].email),
            outcome_line("failed", *ids[3], "the mail server refused this mail: 554", now),
            outcome_line("unknown", *ids[4], "connection lost after the message went out", now),
        ]
    )
    # Meanwhile the lease ran out and another worker settled the rows as unknown; a person
    # resolved the sixth (sent) before the spool's entry for it could be written.
    store.sending.expire_leases(now + LEASE * 2)
    spool.keep_lines([outcome_line("retry", *ids[5], "451 busy", now, retry_at=later)])
    with store.engine.begin() as conn:
        conn.execute(MESSAGES.update().where(MESSAGES.c.id == ids[5][0]).values(status="sent"))
    written = jobs.write_spooled(store, spool)
    assert written == 5
    assert not list((tmp_path / "spool").glob("*.jsonl"))
    with store.engine.connect() as conn:
        found = dict(
            conn.execute(
                sa.select(MESSAGES.c.id, MESSAGES.c.status).where(
                    MESSAGES.c.id.in_([m for m, _ in ids])
                )
            ).all()
        )
        enrollments = dict(
            conn.execute(
                sa.select(ENROLLMENTS.c.id, ENROLLMENTS.c.status).where(
                    ENROLLMENTS.c.id.in_([e for _, e in ids])
                )
            ).all()
        )
    assert [found[m] for m, _ in ids] == ["sent", "retry", "bounced", "failed", "unknown", "sent"]
    assert [enrollments[e] for _, e in ids[:5]] == [
        "completed",
        "active",  # due again at the retry time
        "exited",
        "attention",
        "attention",
    ]
    assert store.sending.suppressed_among([claimed[2].email]) == {claimed[2].email.lower()}
    # The same entries again (a worker that died before removing its file) change nothing.
    spool.keep([Sent(ids[0][0], claimed[0], "250 OK", "<a@acme.example>", now, None)])
    spool.keep_lines([outcome_line("retry", *ids[1], "451 busy", now, retry_at=later)])
    assert jobs.write_spooled(store, spool) == 0
    store.close()


def test_a_result_kept_while_the_spool_is_being_written_is_not_lost(tmp_path: Path) -> None:
    """One worker writes the spool to the database while another keeps a new result in it:
    the new line is written next time, never removed with the file unwritten."""
    spool = Spool(tmp_path, "worker-1")
    now = datetime(2026, 11, 29, 23, 40, tzinfo=UTC)
    spool.keep_lines([outcome_line("unknown", 1, 1, "lost", now)])
    being_written = spool.waiting()  # another worker takes the file to write it
    spool.keep_lines([outcome_line("unknown", 2, 2, "lost", now)])  # meanwhile, one more
    assert [e["message_id"] for _, entries in being_written for e in entries] == [1]
    for path, _ in being_written:
        path.unlink()  # written: removed
    assert [e["message_id"] for _, entries in spool.waiting() for e in entries] == [2]


def test_a_mark_whose_answer_was_lost_puts_the_mail_back_not_unknown(
    database_url: str, tmp_path: Path
) -> None:
    """The line to the database drops while it commits a group of ``sending`` marks: the
    marks are in, the worker never hears so, and none of those mails goes out. They are
    tried again once the database is back — not left ``sending``, then ``unknown`` for a
    person to settle — while a row another try holds meanwhile is left alone."""
    from reengage.sentlog import SentLog

    store = prepare(database_url, tmp_path, 4)
    campaign, _ = parse_campaign(CAMPAIGN, "always.yaml")
    assert campaign is not None
    jobs.detect_and_enroll(store, [campaign], WORKER_NOW)
    claimed = sorted(store.sending.claim_due(WORKER_NOW, 10, LEASE), key=lambda c: c.customer_id)
    started = store.sending.start_messages([(c, "first") for c in claimed], WORKER_NOW, LEASE)

    class LostReply:
        """store.sending, but the answer to the commit of the marks never arrives."""

        def __getattr__(self, name: str) -> Any:
            return getattr(store.sending, name)

        def mark_and_record(self, *args: Any) -> list[bool]:
            store.sending.mark_and_record(*args)  # committed on the server...
            raise StoreError("server closed the connection unexpectedly")  # ...never heard

    class StoreLosingReplies:
        """The store, whose sending ledger loses the answer to the marks' commit."""

        sending = LostReply()

        def __getattr__(self, name: str) -> Any:
            return getattr(store, name)

    spool = Spool(tmp_path / "spool", "worker-1")
    sent = SentLog(StoreLosingReplies(), LEASE, spool=spool)  # type: ignore[arg-type]
    for one, claim in zip(started, claimed, strict=True):
        sent.hold(one, claim.enrollment_id)

    async def send_all() -> list[bool | BaseException]:
        marks = [sent.mark_sending(one, WORKER_NOW) for one in started]
        return await asyncio.gather(*marks, return_exceptions=True)

    answers = asyncio.run(send_all())
    assert all(isinstance(answer, StoreError) for answer in answers)  # none goes out
    assert statuses(store)["sending"] == 4  # yet the marks are in
    # Meanwhile a worker settles the first as unknown (its lease ran out during the
    # outage), and the last is held by another try under a lease of its own.
    with store.engine.begin() as conn:
        conn.execute(
            MESSAGES.update()
            .where(MESSAGES.c.id == started[0].message_id)
            .values(status="unknown", lease_until=None)
        )
        conn.execute(
            ENROLLMENTS.update()
            .where(ENROLLMENTS.c.id == claimed[0].enrollment_id)
            .values(status="attention", exit_reason="send_unknown")
        )
        conn.execute(
            MESSAGES.update()
            .where(MESSAGES.c.id == started[3].message_id)
            .values(lease_until=WORKER_NOW + LEASE * 5)
        )
    assert jobs.write_spooled(store, spool) == 3
    with store.engine.connect() as conn:
        found = dict(
            conn.execute(
                sa.select(MESSAGES.c.id, MESSAGES.c.status).where(
                    MESSAGES.c.id.in_([s.message_id for s in started])
                )
            ).all()
        )
        first = conn.execute(
            sa.select(ENROLLMENTS.c.status).where(ENROLLMENTS.c.id == claimed[0].enrollment_id)
        ).scalar_one()
    assert [found[s.message_id] for s in started] == ["retry", "retry", "retry", "sending"]
    assert first == "active"  # due again, not waiting for a person
    assert jobs.write_spooled(store, spool) == 0  # written once
    store.close()


def test_an_outage_during_the_first_pass_at_start_up_is_waited_out_not_fatal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first detection pass runs before the ticks start; a database that goes away then
    is an outage like any other (logged, waited out), never the end of the daemon."""
    from structlog.testing import capture_logs

    from reengage.compose import Workspace
    from reengage.config import load_settings
    from reengage.mailer import SmtpMailer
    from reengage.scheduler import Service

    store = Store.open(f"sqlite:///{tmp_path / 'db.sqlite'}", upgrade=True)
    ws = Workspace.from_settings(load_settings(env_file=None, campaigns_dir=tmp_path))
    service = Service(store, SmtpMailer("127.0.0.1", 9), ws, clock=lambda: NOW)

    def cut_off() -> None:
        raise StoreError("the connection was lost during the pass")

    monkeypatch.setattr(service, "detect", cut_off)

    async def run() -> None:
        asyncio.get_running_loop().call_later(0.5, service.stop)
        await service._tick_until_stopped()

    with capture_logs() as logs:
        asyncio.run(run())
    events = [e["event"] for e in logs]
    assert "database_unavailable" in events
    assert "service_started" in events
    store.close()
