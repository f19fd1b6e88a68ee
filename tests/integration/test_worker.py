"""Real worker processes: killed mid-batch, stopped politely, and several at once.

Every process runs on a clock pinned by ``REENGAGE_NOW`` (see :class:`Clock`), so the data
imported here and the workers agree on the time whatever the hour the suite runs at, and a
lease runs out by moving the clock on, not by sleeping.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiosmtplib
import httpx
import pytest

from reengage import jobs
from reengage.campaigns import parse_campaign
from reengage.ingest import Kind, import_file
from reengage.store import Store
from reengage.store.sending import Claimed, Started
from tests.conftest import child_env
from tests.integration import inprocess
from tests.integration.smtp_sink import free_port, running_sink
from tests.integration.test_cli import cli, script

# Not marked `clock`: every worker runs on REENGAGE_NOW from the test's own Clock (below),
# so the passes of .ci/test at other real moments would run them unchanged.
ROOT = Path(__file__).resolve().parents[2]
REENGAGE = str(Path(sys.executable).with_name("reengage"))
# Late on a Sunday evening in UTC: the campaign's window is all day, every day, up to 24:00.
NOW = datetime(2026, 11, 29, 23, 40, tzinfo=UTC)
LEASE = timedelta(seconds=2)

CAMPAIGN = """\
id: always
name: Always open
audience:
  lapsed: {factor: 2.0, min_days_silent: 14}
holdout_percent: 0
send_window: {hours: "00:00-24:00", days: [mon, tue, wed, thu, fri, sat, sun]}
from: "Acme <hello@acme.example>"
steps:
  - key: first
    after: 0d
    subject: "Hello {{ customer.first_name or 'there' }}"
    template: tips/tip-2.html.j2
"""


def prepare(database_url: str, tmp_path: Path, customers: int) -> Store:
    store = Store.open(database_url, upgrade=True)
    (tmp_path / "campaigns").mkdir()
    (tmp_path / "campaigns" / "always.yaml").write_text(CAMPAIGN)
    rows = ["customer_id,email,first_name"] + [
        f"c{i},c{i}@example.com,N{i}" for i in range(customers)
    ]
    (tmp_path / "customers.csv").write_text("\n".join(rows) + "\n")
    orders = ["customer_id,occurred_at,amount"] + [
        f"c{i},{(NOW - timedelta(days=60 + 7 * k)).date()},20"
        for i in range(customers)
        for k in range(4)
    ]
    (tmp_path / "orders.csv").write_text("\n".join(orders) + "\n")
    for kind, name in ((Kind.CUSTOMERS, "customers.csv"), (Kind.ACTIVITIES, "orders.csv")):
        import_file(store, kind, tmp_path / name, now=NOW, zone=ZoneInfo("UTC"))
    return store


def on_the_wire(
    database_url: str, tmp_path: Path, customers: int
) -> tuple[Store, list[tuple[Claimed, Started]]]:
    """A worker died with every customer's first mail on the wire (``sending``): the store,
    and each customer's claim and message row, in customer order."""
    store = prepare(database_url, tmp_path, customers)
    campaign, _ = parse_campaign(CAMPAIGN, "always.yaml")
    assert campaign is not None
    jobs.detect_and_enroll(store, [campaign], NOW)
    claimed = sorted(store.sending.claim_due(NOW, 10, LEASE), key=lambda c: c.customer_id)
    started = store.sending.start_messages([(c, "first") for c in claimed], NOW, LEASE)
    assert all(store.sending.mark_sending_many(started, NOW, LEASE))
    return store, list(zip(claimed, started, strict=True))


@dataclass
class Clock:
    """The test's clock: it starts at NOW and runs on at real speed, as a pinned process's does."""

    started: float = field(default_factory=time.monotonic)

    def now(self, later: timedelta = timedelta(0)) -> str:
        """``REENGAGE_NOW`` for a process started now (plus ``later``, to move time on)."""
        return (NOW + timedelta(seconds=time.monotonic() - self.started) + later).isoformat()


def env(database_url: str, tmp_path: Path, port: int, **extra: str) -> dict[str, str]:
    return child_env(
        **{
            "REENGAGE_NOW": NOW.isoformat(),
            "REENGAGE_DATABASE_URL": database_url,
            "REENGAGE_SMTP_PORT": str(port),
            "REENGAGE_CAMPAIGNS_DIR": str(tmp_path / "campaigns"),
            "REENGAGE_TEMPLATES_DIR": str(ROOT / "templates"),
            "REENGAGE_SECRET_KEY": "w" * 40,
            "REENGAGE_SEND_LEASE_SECONDS": str(int(LEASE.total_seconds())),
            "REENGAGE_SEND_BATCH_SIZE": "5",
            "REENGAGE_SMTP_CONNECTIONS": "1",
            "REENGAGE_DISPATCH_EVERY_SECONDS": "1",
            "REENGAGE_MAX_EMAILS_PER_WEEK": "0",
            "REENGAGE_HTTP_PORT": "0",
            # Off unless a test asks: workers run side by side here and under xdist.
            "REENGAGE_OPS_PORT": "0",
            "REENGAGE_LOG_LEVEL": "warning",
            **extra,
        }
    )


def start_worker(
    workers: list[subprocess.Popen[Any]],
    tmp_path: Path,
    settings: dict[str, str],
    clock: Clock,
    *,
    output: bool = False,
) -> subprocess.Popen[Any]:
    """`reengage run` on the test's clock, killed when the test ends if still running (see
    ``workers``); with ``output`` its stdout and stderr are kept, as text, to be read."""
    pipe = subprocess.PIPE if output else subprocess.DEVNULL
    worker = subprocess.Popen(
        [REENGAGE, "run"],
        cwd=tmp_path,
        env={**settings, "REENGAGE_NOW": clock.now()},
        stdout=pipe,
        stderr=pipe,
        text=True,
    )
    workers.append(worker)
    return worker


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[Any]]]:
    """The worker processes a test started: any still running when it ends is killed, so a
    failed test never leaves a daemon behind."""
    started: list[subprocess.Popen[Any]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


def wait_for(condition: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).is_success
    except httpx.TransportError:
        return False


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def taken_ports(log: Path) -> list[str]:
    """What a worker logging JSON said it runs without, its port being taken, sorted."""
    whole = log.read_text().split("\n")[:-1]  # the last line may be half written yet
    lines = [json.loads(line) for line in whole if line.strip()]
    return sorted(line["what"] for line in lines if line.get("event") == "port_in_use")


def statuses(store: Store) -> Counter[str]:
    return Counter(store.sending.message_counts())


@pytest.mark.long
def test_a_worker_killed_mid_batch_loses_nothing_and_sends_nothing_twice(
    database_url: str, tmp_path: Path, workers: list[subprocess.Popen[Any]]
) -> None:
    store = prepare(database_url, tmp_path, 20)
    clock = Clock()
    with running_sink(delay=0.15) as (sink, port):
        settings = env(database_url, tmp_path, port)
        worker = start_worker(workers, tmp_path, settings, clock)
        wait_for(lambda: len(sink.received) >= 3)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        # The next run comes a minute later by the clock: the dead worker's lease has run out.
        later = {**settings, "REENGAGE_NOW": clock.now(later=LEASE + timedelta(minutes=1))}
        again = subprocess.run(
            [REENGAGE, "run", "--once"],
            cwd=tmp_path,
            env=later,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert again.returncode == 0, again.stderr
        ids = sink.message_ids()
    assert len(ids) == len(set(ids)), "a message was received twice"
    counts = statuses(store)
    assert counts["sending"] == 0
    assert counts["sent"] + counts["unknown"] == 20  # each one sent, or reported unknown
    assert counts["sent"] <= len(ids) <= counts["sent"] + counts["unknown"]
    # Unknown only what may really have gone out: claimed mails the dead worker had not yet
    # handed to SMTP were sent by the next run. At most the one on the wire never arrived.
    never_on_the_wire = counts["unknown"] - (len(ids) - counts["sent"])
    assert never_on_the_wire <= 1, counts
    # And every mail the server had accepted before the kill was recorded sent at once:
    # uncertain is at most the one mail on its one connection.
    assert counts["unknown"] <= 1, counts
    if counts["unknown"]:
        doctor = inprocess.cli("doctor", cwd=tmp_path, env=later)  # 80 columns, as before
        assert "may or may not have reached the customer" in doctor.stdout
    store.close()


def test_what_a_killed_worker_claimed_but_never_began_is_due_after_the_claim_lease(
    database_url: str, tmp_path: Path, workers: list[subprocess.Popen[Any]]
) -> None:
    """A live worker renews its claims; a killed one stops, so the mails it had claimed but
    not begun are sent by the next pass once its claim lease (seconds) has run out, long
    before its send lease (ten minutes), which only the mail on the wire waits for."""
    store = prepare(database_url, tmp_path, 12)
    clock = Clock()
    with running_sink(delay=0.3) as (sink, port):
        settings = env(
            database_url,
            tmp_path,
            port,
            REENGAGE_SEND_LEASE_SECONDS="600",
            REENGAGE_CLAIM_LEASE_SECONDS="2",
            REENGAGE_SEND_BATCH_SIZE="12",
        )
        worker = start_worker(workers, tmp_path, settings, clock)
        wait_for(lambda: len(sink.received) >= 2)
        time.sleep(1.5)  # longer than a claim lease: the live worker's renewals kept them
        assert statuses(store)["retry"] == 0, "a live worker's claims ran out"
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        # Three seconds on: the dead worker's claims have run out, its send lease has not.
        later = {**settings, "REENGAGE_NOW": clock.now(later=timedelta(seconds=3))}
        again = script("run", "--once", cwd=tmp_path, env=later)
        assert again.returncode == 0, again.stderr
        ids = sink.message_ids()
    assert len(ids) == len(set(ids)), "a message was received twice"
    counts = statuses(store)
    assert counts["sending"] <= 1, counts  # the one on the wire waits for its lease
    assert counts["sent"] + counts["sending"] == 12, counts
    store.close()


def test_sigterm_finishes_in_flight_sends_and_exits_cleanly(
    database_url: str, tmp_path: Path, workers: list[subprocess.Popen[Any]]
) -> None:
    store = prepare(database_url, tmp_path, 12)
    clock = Clock()
    http, ops = free_port(), free_port()
    with running_sink(delay=0.1) as (sink, port):
        settings = env(
            database_url, tmp_path, port, REENGAGE_HTTP_PORT=str(http), REENGAGE_OPS_PORT=str(ops)
        )
        worker = start_worker(workers, tmp_path, settings, clock, output=True)
        wait_for(lambda: len(sink.received) >= 2)
        health = httpx.get(f"http://127.0.0.1:{ops}/healthz", timeout=10)
        assert health.status_code == 200
        assert health.json()["ok"] is True
        wait_for(
            lambda: (
                'reengage_sends_total{result="sent"}'
                in httpx.get(f"http://127.0.0.1:{ops}/metrics", timeout=10).text
            )
        )
        # The public port serves the links in mail, never the operations pages.
        for path in ("/healthz", "/metrics"):
            assert httpx.get(f"http://127.0.0.1:{http}{path}", timeout=10).status_code == 404
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=30)
        assert worker.returncode == 0, err
        counts = statuses(store)
        assert (counts["sending"], counts["unknown"]) == (0, 0), (counts, err)
        assert counts["sent"] == len(sink.received)
        subprocess.run(
            [REENGAGE, "run", "--once"],
            cwd=tmp_path,
            env={**settings, "REENGAGE_NOW": clock.now()},  # right after, on the same clock
            capture_output=True,
            timeout=120,
            check=True,
        )
        ids = sink.message_ids()
    assert len(ids) == len(set(ids)) == 12
    store.close()


def test_the_unknown_gauge_is_right_within_seconds_of_a_worker_starting(
    database_url: str, tmp_path: Path, workers: list[subprocess.Popen[Any]]
) -> None:
    """A worker died with two mails on the wire; the next one to start reports them unknown
    on /metrics within seconds, not after its first one-minute clean-up (an alert on the
    gauge would miss them for a minute after every restart)."""
    store, _ = on_the_wire(database_url, tmp_path, 2)
    clock = Clock(started=time.monotonic() - 3 * LEASE.total_seconds())  # leases ran out
    ops = free_port()
    with running_sink() as (_, port):
        settings = env(database_url, tmp_path, port, REENGAGE_OPS_PORT=str(ops))
        worker = start_worker(workers, tmp_path, settings, clock, output=True)

        def scraped() -> str:
            try:
                return httpx.get(f"http://127.0.0.1:{ops}/metrics", timeout=2).text
            except httpx.TransportError:
                assert worker.poll() is None, worker.communicate()
                return ""

        wait_for(lambda: scraped() != "", timeout=60)
        answering = time.monotonic()
        wait_for(lambda: "reengage_unknown_messages 2.0" in scraped(), timeout=60)
        assert time.monotonic() - answering < 20, "the gauge waited for the first clean-up"
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=30)
    assert worker.returncode == 0
    store.close()


@pytest.mark.alone  # it times an exit against the grace
def test_sigterm_against_a_server_that_never_answers_exits_0_within_the_grace(
    database_url: str, tmp_path: Path, workers: list[subprocess.Popen[Any]]
) -> None:
    store = prepare(database_url, tmp_path, 12)
    clock = Clock()
    with running_sink(delay=600) as (_, port):  # takes every mail, answers none
        settings = env(
            database_url,
            tmp_path,
            port,
            REENGAGE_SHUTDOWN_GRACE_SECONDS="3",
            REENGAGE_SMTP_CONNECTIONS="2",
        )
        worker = start_worker(workers, tmp_path, settings, clock, output=True)
        wait_for(lambda: statuses(store)["sending"] == 2)  # two mails on the wire, hanging
        worker.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        # Waiting for the hung server would take ten minutes; the grace is three seconds,
        # and the process is gone within it (a container kills at its end), give or take
        # the interpreter's own exit — which took up to 2.7 s more on a 2-core CI machine
        # running two test suites at once (measured 5.7 s in all; 0.5-1 s when quiet).
        _, err = worker.communicate(timeout=60)
        assert worker.returncode == 0, err
        assert time.monotonic() - stopped < 3 + 3.5
    counts = statuses(store)
    # The two on the wire may have arrived: unknown at once, listed for a person (not left
    # sending until the lease runs out). What was claimed but never begun was put back.
    assert counts["sending"] == 0, counts
    assert counts["unknown"] == 2, counts
    listed = cli("sends", "list", cwd=tmp_path, env=settings)
    assert listed.stdout.count("unknown") >= 2, listed.stdout
    assert counts["queued"] == 0, counts
    assert counts["retry"] == 3, counts  # the rest of the batch of five
    store.close()


def test_sigterm_while_the_server_has_not_taken_the_mail_yet_puts_it_back_not_unknown(
    database_url: str, tmp_path: Path, workers: list[subprocess.Popen[Any]]
) -> None:
    """The grace runs out while the server still sits on RCPT: not one byte of those mails
    went out, so they are due again for the next worker — not ``unknown`` for a person."""
    store = prepare(database_url, tmp_path, 12)
    clock = Clock()
    with running_sink() as (sink, port):
        sink.rcpt_delay = 600  # answers RCPT never: the mail is never handed over
        settings = env(
            database_url,
            tmp_path,
            port,
            REENGAGE_SHUTDOWN_GRACE_SECONDS="3",
            REENGAGE_SMTP_CONNECTIONS="2",
        )
        worker = start_worker(workers, tmp_path, settings, clock, output=True)
        wait_for(lambda: statuses(store)["sending"] == 2)  # two mails waiting at RCPT
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=60)
        assert worker.returncode == 0, err
        assert not sink.received
    counts = statuses(store)
    assert (counts["sending"], counts["unknown"], counts["queued"]) == (0, 0, 0), counts
    assert counts["retry"] == 5, counts  # the whole batch of five: due again at once
    store.close()


def test_a_second_worker_on_the_same_machine_runs_without_the_taken_ports_then_takes_them_over(
    database_url: str, tmp_path: Path, workers: list[subprocess.Popen[Any]]
) -> None:
    """Two workers on one machine: the second runs without the ports the first holds, and
    takes them over once the first stops — as in a rolling restart, where the new worker
    starts while the old one is still finishing."""
    store = prepare(database_url, tmp_path, 6)
    clock = Clock()
    http, ops, inbound = free_port(), free_port(), free_port()
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    with running_sink() as (sink, port):
        settings = env(
            database_url,
            tmp_path,
            port,
            REENGAGE_HTTP_PORT=str(http),
            REENGAGE_OPS_PORT=str(ops),
            REENGAGE_INBOUND_PORT=str(inbound),
            REENGAGE_INBOUND_DOMAIN="in.acme.example",
        )
        for log in logs:
            with log.open("w") as handle:
                worker = subprocess.Popen(
                    [REENGAGE, "run"],
                    cwd=tmp_path,
                    env={**settings, "REENGAGE_NOW": clock.now(), "REENGAGE_LOG_FORMAT": "json"},
                    stdout=handle,
                    stderr=subprocess.STDOUT,
                )
            workers.append(worker)
            wait_for(lambda: answers(f"http://127.0.0.1:{ops}/healthz"))
        # The second finds every port taken, says so once for each, and works on.
        wait_for(lambda: taken_ports(logs[1]) == ["inbound mail", "operations", "web"])
        assert taken_ports(logs[0]) == []
        assert answers(f"http://127.0.0.1:{ops}/metrics")
        wait_for(lambda: len(sink.received) == 6)
        first, second = workers
        assert second.poll() is None, "a worker died"
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=60)
        # The first is gone: the second serves its ports within a few seconds.
        wait_for(lambda: logs[1].read_text().count('"port_taken_over"') == 3, timeout=30)
        assert answers(f"http://127.0.0.1:{ops}/healthz")
        assert httpx.get(f"http://127.0.0.1:{http}/o/x.gif", timeout=5).status_code == 200
        assert listening(inbound)
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=60)
    said = [log.read_text() for log in logs]
    assert [w.returncode for w in workers] == [0, 0], said
    assert "Traceback" not in "".join(said)
    # Every line either worker wrote is one JSON object, whoever logged it.
    for line in "".join(said).splitlines():
        assert isinstance(json.loads(line), dict), line
    ids = sink.message_ids()
    assert len(ids) == len(set(ids)) == 6
    store.close()


def test_the_workers_inbound_listener_takes_its_own_signed_mailto_and_nothing_forged(
    database_url: str, tmp_path: Path, workers: list[subprocess.Popen[Any]]
) -> None:
    """The mailto in List-Unsubscribe of a mail this worker sent unsubscribes its customer;
    the same address without its signature (what anyone reading our Message-ID could
    write) acts on nobody and is kept as unmatched; a third recipient gets 452."""
    store = prepare(database_url, tmp_path, 2)
    clock = Clock()
    inbound = free_port()
    with running_sink() as (sink, port):
        settings = env(
            database_url,
            tmp_path,
            port,
            REENGAGE_INBOUND_PORT=str(inbound),
            REENGAGE_INBOUND_DOMAIN="in.acme.example",
            REENGAGE_INBOUND_MAX_RECIPIENTS="2",
        )
        worker = start_worker(workers, tmp_path, settings, clock, output=True)
        wait_for(lambda: len(sink.received) == 2)
        sent = next(m for m in sink.received if m["to"] == ["c0@example.com"])
        unsubscribe = str(sent["message"]["List-Unsubscribe"])
        mailto = unsubscribe.split("<mailto:", 1)[1].split(">", 1)[0]
        local, domain = mailto.split("@", 1)
        assert domain == "in.acme.example"
        unsigned = f"{local.rsplit('.', 1)[0]}@{domain}"  # unsubscribe+KEY@, no signature
        assert unsigned.startswith("unsubscribe+") and unsigned != mailto

        async def deliver(to: str) -> None:
            body = f"From: c0@example.com\r\nTo: {to}\r\nSubject: unsubscribe\r\n\r\n."
            async with aiosmtplib.SMTP(hostname="127.0.0.1", port=inbound, timeout=30) as smtp:
                await smtp.sendmail("c0@example.com", [to], body)

        async def three_recipients() -> int:
            async with aiosmtplib.SMTP(hostname="127.0.0.1", port=inbound, timeout=30) as smtp:
                await smtp.mail("")
                for n in (1, 2):
                    await smtp.rcpt(f"postmaster{n}@in.acme.example")
                with pytest.raises(aiosmtplib.SMTPRecipientRefused) as third:
                    await smtp.rcpt("postmaster3@in.acme.example")
                await smtp.rset()
                return third.value.code

        wait_for(lambda: listening(inbound))
        asyncio.run(deliver(unsigned))
        assert not store.sending.is_suppressed("c0@example.com")
        kept, total = store.responses.unmatched(10)
        assert total == 1
        assert (kept[0].kind, kept[0].reason) == ("unsubscribe", "bad_signature")
        asyncio.run(deliver(mailto))
        assert store.sending.is_suppressed("c0@example.com")  # recorded before the 250
        assert not store.sending.is_suppressed("c1@example.com")
        kinds = [r.kind for r in store.responses.recent(NOW - timedelta(days=1))]
        assert kinds == ["unsubscribe"]
        assert store.responses.unmatched(10)[1] == 1
        assert asyncio.run(three_recipients()) == 452
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
    assert "Traceback" not in err
    store.close()


@pytest.mark.postgres
def test_three_workers_share_the_work_without_duplicates(
    tmp_path: Path, workers: list[subprocess.Popen[Any]]
) -> None:
    from tests.conftest import PG_URL

    if not PG_URL:
        pytest.skip("REENGAGE_TEST_DATABASE_URL is not set")
    import uuid

    import sqlalchemy as sa

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = f"{PG_URL}{'&' if '?' in PG_URL else '?'}options=-csearch_path%3D{schema}"
    total = int(os.environ.get("REENGAGE_TEST_WORKER_MESSAGES", "3000"))
    try:
        store = prepare(url, tmp_path, total)
        # Enroll everyone first (one worker does detection per tick), then let three
        # workers race for the sends.
        from reengage import jobs
        from reengage.campaigns import parse_campaign

        campaign, _ = parse_campaign(CAMPAIGN, "always.yaml")
        assert campaign is not None
        assert sum(jobs.detect_and_enroll(store, [campaign], NOW).entered.values()) == total
        with running_sink() as (sink, port):
            settings = env(
                url,
                tmp_path,
                port,
                REENGAGE_SEND_BATCH_SIZE="100",
                REENGAGE_SMTP_CONNECTIONS="4",
                REENGAGE_SEND_LEASE_SECONDS="600",
            )
            workers += [
                subprocess.Popen(
                    [REENGAGE, "run", "--once"],
                    cwd=tmp_path,
                    env=settings,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                )
                for _ in range(3)
            ]
            for worker in workers:
                _, err = worker.communicate(timeout=600)
                assert worker.returncode == 0, err
            ids = sink.message_ids()
        assert len(ids) == total
        assert len(set(ids)) == total
        assert statuses(store)["sent"] == total
        store.close()
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_a_mail_left_on_the_wire_by_a_dead_worker_says_why_it_is_unknown(
    database_url: str, tmp_path: Path
) -> None:
    store, _ = on_the_wire(database_url, tmp_path, 2)
    assert jobs.expire_leases(store, NOW + 3 * LEASE) == 2
    shown = inprocess.cli(
        "sends", "unknown", cwd=tmp_path, env=env(database_url, tmp_path, free_port())
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.count("the worker") == 2, shown.stdout  # the reason, wrapped
    store.close()
