"""The daemon's detection passes run in a child process (issue 19): they enroll what a pass
in the daemon enrolled, a child that dies costs one pass and never the daemon, a stop does
not wait for a pass in flight, and a daemon that dies takes its child with it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs

from reengage import jobs
from reengage.campaigns import Campaign, parse_campaign
from reengage.config import LogFormat
from reengage.detection_process import NICENESS, STOPPING, ChildSetup, DetectionProcess
from reengage.enroll import CHUNK_LEASE, EnrollReport
from reengage.store import Store
from tests.integration.smtp_sink import running_sink
from tests.integration.test_worker import (
    CAMPAIGN,
    NOW,
    REENGAGE,
    Clock,
    env,
    prepare,
    start_worker,
    wait_for,
    workers,
)

__all__ = ["workers"]  # the fixture, imported for the test below

CUSTOMERS = 30


def campaigns() -> list[Campaign]:
    campaign, _ = parse_campaign(CAMPAIGN, "always.yaml")
    assert campaign is not None
    return [campaign]


@pytest.fixture
def store(database_url: str, tmp_path: Path) -> Iterator[Store]:
    """A store of lapsed customers, every one due for the campaign."""
    opened = prepare(database_url, tmp_path, CUSTOMERS)
    yield opened
    opened.close()


@pytest.fixture
def child(database_url: str, store: Store) -> Iterator[DetectionProcess]:
    """The detection child on that store, started as `reengage run` starts it."""
    detection = DetectionProcess(ChildSetup(database_url, 30, "error", LogFormat.JSON, None))
    detection.start()
    yield detection
    detection.close()


def enrolled(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM enrollments").scalar_one())


def gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie waiting for its parent counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in {"Z", "X"}


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


@contextlib.contextmanager
def database_held(database_url: str) -> Iterator[None]:
    """Every table of the store locked against writers (PostgreSQL: against readers too), so
    a pass that starts now waits in the database: a pass in flight, for as long as wanted."""
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            if database_url.startswith("sqlite"):
                conn.exec_driver_sql("BEGIN EXCLUSIVE")
            else:
                tables = sa.inspect(conn).get_table_names()
                conn.exec_driver_sql(
                    "LOCK TABLE " + ", ".join(f'"{t}"' for t in tables) + " IN EXCLUSIVE MODE"
                )
            yield
            conn.rollback()
    finally:
        engine.dispose()


@contextlib.contextmanager
def pass_in_flight(
    database_url: str, child: DetectionProcess
) -> Iterator[tuple[int, threading.Thread, list[EnrollReport]]]:
    """A pass handed to the child and waiting in the held database: the child's pid, the
    thread waiting for the pass, and the list its report lands in."""
    pid = child.pid
    assert pid is not None
    out: list[EnrollReport] = []
    with database_held(database_url):
        thread = threading.Thread(
            target=lambda: out.append(child.detect(campaigns(), NOW, worker="w1")), daemon=True
        )
        thread.start()
        time.sleep(1.5)  # the pass is waiting in the database
        assert thread.is_alive() and not out
        yield pid, thread, out


def test_the_child_enrolls_what_a_pass_in_the_daemon_enrolls(
    store: Store, child: DetectionProcess
) -> None:
    report = child.detect(campaigns(), NOW, worker="w1")
    assert report.entered == {"always": CUSTOMERS}
    assert report.whole and report.looked_at == CUSTOMERS
    # A second pass, in the daemon itself, finds nothing left: the child's writes are there.
    again = jobs.detect_and_enroll(store, campaigns(), NOW + timedelta(minutes=10))
    assert sum(again.entered.values()) == 0


def test_a_child_killed_between_passes_is_replaced_and_the_pass_runs(
    child: DetectionProcess,
) -> None:
    first = child.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: gone(first), 10)
    report = child.detect(campaigns(), NOW, worker="w1")
    assert report.entered == {"always": CUSTOMERS}, report.skipped
    assert child.pid not in (None, first)


def test_a_child_killed_mid_pass_costs_that_pass_only(
    database_url: str, store: Store, child: DetectionProcess
) -> None:
    with pass_in_flight(database_url, child) as (pid, thread, out):
        os.kill(pid, signal.SIGKILL)
        thread.join(10)
    assert out, "the pass never came back after its child died"
    assert out[0].skipped is not None and "died" in out[0].skipped
    assert not out[0].entered
    # The next pass (another worker, or this one after the chunk's lease) enrolls everyone.
    later = NOW + CHUNK_LEASE + timedelta(minutes=1)
    report = child.detect(campaigns(), later, worker="w2")
    assert report.skipped is None
    assert enrolled(store) == CUSTOMERS


def test_closing_does_not_wait_for_a_pass_in_flight(
    database_url: str, store: Store, child: DetectionProcess
) -> None:
    with pass_in_flight(database_url, child) as (pid, thread, out):
        started = time.monotonic()
        child.close()
        thread.join(10)
        assert out and out[0].skipped == STOPPING
        assert time.monotonic() - started < 5
        wait_for(lambda: gone(pid), 10)
    assert child.detect(campaigns(), NOW, worker="w1").skipped == STOPPING
    assert enrolled(store) == 0  # nothing half-written: the pass never got the database


def test_a_closed_child_leaves_no_bookkeeping_to_race_the_exit(child: DetectionProcess) -> None:
    """Once closed, the pool's manager thread has ended: left running into the daemon's
    exit it races Python's own exit hook for its wake-up pipe, and the loser prints
    "Exception ignored in: <module 'threading'>" into the log (seen once in CI)."""
    assert child.detect(campaigns(), NOW, worker="w1").skipped is None
    child.close()
    managers = [t for t in threading.enumerate() if type(t).__name__ == "_ExecutorManagerThread"]
    assert not [t for t in managers if t.is_alive()]


def test_a_daemon_killed_takes_its_detection_child_with_it(
    database_url: str, tmp_path: Path, store: Store, workers: list[subprocess.Popen[Any]]
) -> None:
    with running_sink() as (sink, port):
        daemon = start_worker(workers, tmp_path, env(database_url, tmp_path, port), Clock())
        wait_for(lambda: len(sink.received) == CUSTOMERS)  # the child's pass enrolled them all
        kids = children(daemon.pid)  # the detection child, and multiprocessing's tracker
        spawned = [k for k in kids if b"spawn_main" in Path(f"/proc/{k}/cmdline").read_bytes()]
        assert len(spawned) == 1, f"expected one detection child, found {kids}"
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(10)
        wait_for(lambda: all(gone(k) for k in kids), 10)
    assert enrolled(store) == CUSTOMERS


@pytest.mark.long
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_a_stop_sent_to_the_whole_group_ends_daemon_and_child_cleanly(
    database_url: str, tmp_path: Path, store: Store, sig: signal.Signals
) -> None:
    """A terminal's Ctrl-C (SIGINT) and a supervisor's stop (SIGTERM to the whole group)
    reach the child too: the daemon stops politely, exit 0, and nobody prints a traceback."""
    with running_sink() as (sink, port):
        settings = {**env(database_url, tmp_path, port), "REENGAGE_NOW": Clock().now()}
        daemon = subprocess.Popen(
            [REENGAGE, "run"],
            cwd=tmp_path,
            env=settings,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # a group of its own, as a terminal or a unit gives it
        )
        try:
            wait_for(lambda: len(sink.received) == CUSTOMERS)
            kids = children(daemon.pid)
            os.killpg(daemon.pid, sig)
            out, err = daemon.communicate(timeout=30)
        finally:
            if daemon.poll() is None:
                os.killpg(daemon.pid, signal.SIGKILL)
                daemon.communicate()
    assert daemon.returncode == 0, err
    # Off a terminal every line the daemon (and its child) writes is a JSON log event: no
    # traceback, no "Process SpawnProcess-1:" from a child interrupted in its wait.
    for line in (out + err).splitlines():
        assert isinstance(json.loads(line), dict), line
    wait_for(lambda: all(gone(k) for k in kids), 10)


@pytest.mark.parametrize(
    "failure",
    [
        OSError(38, "Function not implemented"),  # sem_open without /dev/shm
        NotImplementedError("This platform lacks a functioning sem_open implementation"),
    ],
)
def test_where_no_child_can_start_the_daemon_detects_in_a_thread_and_says_so(
    database_url: str, monkeypatch: pytest.MonkeyPatch, failure: Exception
) -> None:
    from reengage.cli import service
    from reengage.config import Settings

    def cannot(self: DetectionProcess) -> Any:
        raise failure

    monkeypatch.setattr(DetectionProcess, "_ensure_pool", cannot)
    settings = Settings(database_url=database_url, secret_key="w" * 40)
    with capture_logs() as logs:
        assert service._detection_process(settings) is None
    [warning] = [e for e in logs if e["event"] == "detection_process_unavailable"]
    assert warning["log_level"] == "warning" and "/dev/shm" in warning["hint"]


def test_the_child_yields_the_cpu_to_sending_and_the_web(child: DetectionProcess) -> None:
    # A pass on a busy machine takes longer rather than slowing the mail on the wire: the
    # child runs at a lower priority than the daemon that sends.
    pid = child.pid
    assert pid is not None
    ours = os.getpriority(os.PRIO_PROCESS, os.getpid())
    assert os.getpriority(os.PRIO_PROCESS, pid) == min(ours + NICENESS, 19)
