"""The daemon's passes at scale: what each costs, beside the same work done by scoring everyone.

    python bench/daemon.py [--customers 1000000] [--reps 100] [--workers 3]
                           [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench]
                           [--keep DIR]

Builds a store of ``--customers`` seeded customers (`reengage.seed`: realistic rhythms —
weekly to yearly habits, one-time buyers, lapsed, shrinking and gone customers — locales,
time zones, ``--reps`` reps) through the real import, once: on PostgreSQL into
``<database>_base`` (kept, and reused by the next run with the same size), on SQLite into
``--keep DIR/base.db`` (a temporary folder without ``--keep``). Every run starts from a copy.

Then runs the real daemon's passes (`Service.detect`, `Service.digests`: the code
`reengage run` ticks), each phase in ``--workers`` fresh processes started together as
several `reengage run` would be, each process with the daemon's own event-loop watcher
(:mod:`reengage.loopwatch`) and its dispatch sending due mail to a counting SMTP sink (its
own process) all along, so the longest pause is the one a mail server or a web client would
have seen while sends go on:

1. first pass: the first detection pass of a new store (it scores everyone);
2. steady: ten minutes later, nobody's record changed;
3. 1% ordered: after one customer in a hundred placed an order;
4. digests: every rep's list built and mailed (`Service.digests`), one rep's list alone.

Between phases a PostgreSQL store is vacuumed and analysed, as autovacuum would in the ten
minutes a phase stands for (without it the index of who is due still points at the million
row versions the first pass replaced, and the next pass reads them all: 0.3 s instead of
0.3 ms). ``--baseline last`` scores everyone beside the last detection pass only.

The baseline, in the same run: each detection pass again on a copy of the store taken just
before it, scoring everyone (`whole=True`, one worker, as every pass did before issue 19),
and the reps' lists by the full scan (every customer of the reps scored in Python). The
bench checks that both enrolled the same customers into the same campaigns and built the
same lists.

Per phase it prints wall seconds (from the common start to the last worker's end of the
pass), customers looked at, enrollments, the peak RSS of the largest worker, the longest
event-loop pause in any worker, and the mails the workers sent meanwhile.

Aims (issue 19), 1,000,000 customers on PostgreSQL, 100 reps, 3 workers (300,000 on
SQLite): steady pass ≤ 2 s, 1% pass ≤ 5 s, a worker's peak RSS ≤ 400 MB, all reps' lists
≤ 10 s, one rep's list ≤ 0.2 s, no loop pause over 50 ms, the same enrollments.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from detect import order_one_in_a_hundred  # bench/detect.py: one customer in 100 orders

ROOT = Path(__file__).resolve().parents[1]
# A Wednesday, 15:00 UTC: the shipped send windows are open in Europe and the Americas, and
# every rep's morning has come.
NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
SECRET = "bench-daemon-secret-key-0123456789abcdef"


# --- the store: built once, copied for each run ------------------------------------------


class Place:
    """Where the stores live: SQLite files in a folder, or databases on a PostgreSQL server."""

    def __init__(self, url: str | None, folder: Path) -> None:
        self.server = url
        self.folder = folder

    def url(self, name: str) -> str:
        if self.server is None:
            return f"sqlite:///{self.folder / (name + '.db')}"
        base, _, _ = self.server.rpartition("/")
        return f"{base}/{self.db_name(name)}"

    def db_name(self, name: str) -> str:
        assert self.server is not None
        return f"{self.server.rpartition('/')[2]}_{name}"

    def exists(self, name: str) -> bool:
        if self.server is None:
            return (self.folder / f"{name}.db").exists()
        with self._admin() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.db_name(name),))
            return cur.fetchone() is not None

    def drop(self, name: str) -> None:
        if self.server is None:
            for suffix in ("", "-wal", "-shm"):
                (self.folder / f"{name}.db{suffix}").unlink(missing_ok=True)
            return
        with self._admin() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{self.db_name(name)}" WITH (FORCE)')

    def settle(self, name: str) -> None:
        """What the database does by itself in the ten minutes between two passes: on
        PostgreSQL autovacuum clears the row versions a whole pass left behind (1,000,000
        updated rows trigger it within a minute) and refreshes the statistics."""
        if self.server is None:
            return
        import psycopg

        dsn = self.url(name).replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")

    def create_empty(self, name: str) -> None:
        self.drop(name)
        if self.server is not None:
            with self._admin() as cur:
                cur.execute(f'CREATE DATABASE "{self.db_name(name)}"')

    def copy(self, source: str, target: str) -> None:
        """``target`` becomes a copy of ``source`` (which nobody may be using)."""
        self.drop(target)
        if self.server is None:
            src = self.folder / f"{source}.db"
            with contextlib.closing(_sqlite(src)) as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            shutil.copy(src, self.folder / f"{target}.db")
            return
        with self._admin() as cur:
            cur.execute(
                f'CREATE DATABASE "{self.db_name(target)}" TEMPLATE "{self.db_name(source)}"'
            )

    @contextlib.contextmanager
    def _admin(self) -> Iterator[Any]:
        import psycopg

        assert self.server is not None
        dsn = self.server.replace("postgresql+psycopg://", "postgresql://").rpartition("/")[0]
        with psycopg.connect(dsn + "/postgres", autocommit=True) as conn, conn.cursor() as cur:
            yield cur


def _sqlite(path: Path) -> Any:
    import sqlite3

    return sqlite3.connect(path)


def build(place: Place, customers: int, reps: int) -> str:
    """The base store (built unless one of this size is kept); what it holds, in words."""
    from reengage.store import Store

    marker = f"{customers} customers, {reps} reps, seed 1, {NOW.isoformat()}"
    if place.exists("base"):
        store = Store.open(place.url("base"), upgrade=True)  # a kept store follows the schema
        try:
            kept = store.detection.pass_state() is None and _marker(store) == marker
        finally:
            store.close()
        if kept:
            return "reused"
    from reengage.ingest import Kind, import_file
    from reengage.seed import write_dataset

    place.create_empty("base")
    with tempfile.TemporaryDirectory(prefix="reengage-daemon-") as tmp:
        started = time.perf_counter()
        data = write_dataset(Path(tmp), customers, seed=1, now=NOW, reps=reps)
        generated = time.perf_counter() - started
        store = Store.open(place.url("base"), upgrade=True)
        started = time.perf_counter()
        for kind, path in (
            (Kind.REPS, data.reps),
            (Kind.CUSTOMERS, data.customers),
            (Kind.ACTIVITIES, data.activities),
        ):
            import_file(store, kind, path, now=NOW, zone=ZoneInfo("UTC"), batch_size=20_000)
        imported = time.perf_counter() - started
        _set_marker(store, marker)
        store.close()
    return (
        f"built: {data.activity_count:,} activities, generated in {generated:.0f} s, "
        f"imported in {imported:.0f} s"
    )


def _marker(store: Any) -> str | None:
    import sqlalchemy as sa

    with store.engine.connect() as conn, contextlib.suppress(Exception):
        return conn.scalar(sa.text("SELECT what FROM bench_daemon_marker"))
    return None


def _set_marker(store: Any, marker: str) -> None:
    import sqlalchemy as sa

    with store.engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE bench_daemon_marker (what TEXT)"))
        conn.execute(sa.text("INSERT INTO bench_daemon_marker VALUES (:m)"), {"m": marker})


# --- the mail sink ------------------------------------------------------------------------


def _serve(port: int, count: Any, ready: Any, stop: Any) -> None:
    from aiosmtpd.controller import Controller

    class Counting:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            with count.get_lock():
                count.value += 1
            return "250 OK"

    controller = Controller(Counting(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    stop.wait()
    controller.stop()


@contextlib.contextmanager
def sink() -> Iterator[tuple[int, Any]]:
    """A counting SMTP server on loopback in its own process (it must not take our GIL)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    count, ready, stop = (
        multiprocessing.Value("i", 0),
        multiprocessing.Event(),
        multiprocessing.Event(),
    )
    proc = multiprocessing.Process(target=_serve, args=(port, count, ready, stop), daemon=True)
    proc.start()
    ready.wait(10)
    try:
        yield port, count
    finally:
        stop.set()
        proc.join(5)


# --- one worker of one phase (a fresh process) --------------------------------------------


def worker(args: argparse.Namespace) -> dict[str, Any]:
    """Run one phase as a `reengage run` worker would, and say what it cost."""

    from reengage import jobs, loopwatch
    from reengage.compose import Workspace
    from reengage.config import LogFormat, load_settings
    from reengage.detection_process import ChildSetup, DetectionProcess
    from reengage.digest import DigestConfig
    from reengage.logs import configure_logging
    from reengage.mailer import SmtpMailer
    from reengage.scheduler import Service
    from reengage.store import Store

    configure_logging("error")
    now = datetime.fromisoformat(args.now)
    settings = load_settings(
        env_file=None,
        database_url=args.url,
        campaigns_dir=ROOT / "campaigns",
        templates_dir=ROOT / "templates",
        secret_key=SECRET,
        smtp_port=args.sink_port,
        # Every rep's digest at once, whatever their zone: the bench's moment is inside the
        # 8-hour window of only some of them.
        digest_window_hours=24,
    )
    store = Store.open(args.url)
    ws = Workspace.from_settings(settings)
    detection = None
    if args.detect_in == "process" and args.what == "detect":  # as `reengage run` does
        on_our_clock = (now, time.monotonic())  # the child's clock starts at the bench's now
        detection = DetectionProcess(
            ChildSetup(args.url, 30, "error", LogFormat.JSON, on_our_clock)
        )
        detection.start()
    service = Service(
        store,
        SmtpMailer.from_settings(settings),
        ws,
        clock=lambda: now,
        digest=DigestConfig.from_settings(settings),
        detection=detection,
    )
    service.reload()
    loopwatch.settle_process()  # as `reengage run` does after start-up
    result: dict[str, Any] = {}

    done = asyncio.Event()

    async def sending() -> None:
        while not done.is_set():  # the dispatch tick, every second here (5 s in the daemon)
            report = await service.dispatch()
            result["sent"] = result.get("sent", 0) + report.results.get("sent", 0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), 1)

    print("ready", flush=True)
    start_at = float(sys.stdin.readline())  # the workers start together, when all are ready

    async def phase() -> None:
        await asyncio.sleep(max(0.0, start_at - time.time()))
        async with loopwatch.watching(interval=0.005) as lag:
            sends = asyncio.create_task(sending())
            started, started_at = time.perf_counter(), time.time()
            if args.what == "digests":
                report = await service.digests()
                result["digests"] = dict(report.results)
            elif args.what == "whole":
                enrolled = await asyncio.to_thread(
                    jobs.detect_and_enroll,
                    store,
                    list(service.library.campaigns.values()),
                    now,
                    whole=True,
                )
                result.update(_enrolled(enrolled))
            else:
                result.update(_enrolled(await asyncio.to_thread(service.detect)))
            result["seconds"] = time.perf_counter() - started
            result["ended_at"] = time.time()
            result["late_start"] = started_at - start_at
            if detection is not None and detection.pid is not None:
                # A worker is the daemon and its detection process (which a stop ends).
                result["child_peak_mb"] = peak_mb(detection.pid)
            done.set()
            service.stop()  # the dispatch pass in flight finishes its mails, then returns
            await sends
            result["worst_pause_ms"] = lag.worst * 1000
        await service.mailer.close()

    asyncio.run(phase())
    store.close()
    result["peak_mb"] = peak_mb() + result.get("child_peak_mb", 0.0)
    return result


def _enrolled(report: Any) -> dict[str, Any]:
    return {
        "looked_at": report.looked_at,
        "entered": sum(report.entered.values()) + sum(report.held_out.values()),
        "whole": report.whole,
        "skipped": report.skipped is not None,
    }


def peak_mb(pid: int | None = None) -> float:
    """A process's peak resident memory (``VmHWM``: its own, not its parent's)."""
    for line in Path(f"/proc/{pid or 'self'}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_phase(
    url: str, what: str, now: datetime, workers: int, port: int, detect_in: str = "process"
) -> dict[str, Any]:
    """``workers`` processes run the phase together; the phase's figures across them."""
    command = [sys.executable, __file__, "--phase", "worker", "--url", url, "--now"]
    command += [now.isoformat(), "--what", what, "--sink-port", str(port)]
    command += ["--detect-in", detect_in]
    procs = [
        subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(workers)
    ]
    for proc in procs:  # each has imported, opened the store and loaded the campaigns
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    start_at = time.time() + 0.2
    results = []
    for proc in procs:
        out, _ = proc.communicate(f"{start_at}\n")
        if proc.returncode:
            raise SystemExit(f"a {what} worker failed (exit {proc.returncode})")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return {
        "seconds": max(r["ended_at"] for r in results) - start_at,
        "looked_at": sum(r.get("looked_at", 0) for r in results),
        "entered": sum(r.get("entered", 0) for r in results),
        "peak_mb": max(r["peak_mb"] for r in results),
        "pause_ms": max(r["worst_pause_ms"] for r in results),
        "sent": sum(r.get("sent", 0) for r in results),
        "digests": sum(sum(r.get("digests", {}).values()) for r in results),
        "ran": sum(1 for r in results if not r.get("skipped")),
        "workers": [
            {k: round(v, 2) if isinstance(v, float) else v for k, v in r.items()} for r in results
        ],
    }


# --- the reps' lists, path against full scan ----------------------------------------------


def lists_phase(url: str, now: datetime, one_of: int, full_scan: bool) -> dict[str, Any]:
    """Every rep's list, and one rep's list alone, by the daemon's path (or, with
    ``full_scan``, by scoring every customer of the reps: the baseline)."""
    from reengage.digest import ListPolicy
    from reengage.digest.calllist import build_lists
    from reengage.digest.fullscan import build_lists_full_scan
    from reengage.store import Store

    build = build_lists_full_scan if full_scan else build_lists
    store = Store.open(url)
    policy = ListPolicy()
    reps = [r.external_id for r in store.calls.reps(None)]
    chosen = reps[:: max(1, len(reps) // one_of)][:one_of]
    singles = []
    for rep in chosen:
        started = time.perf_counter()
        build(store, now, policy, reps=[rep])
        singles.append(time.perf_counter() - started)
    started = time.perf_counter()
    lists = build(store, now, policy)
    all_s = time.perf_counter() - started
    store.close()
    return {
        "one_rep_s": statistics.median(singles),
        "one_rep_max_s": max(singles),
        "all_s": all_s,
        "reps": len(reps),
        "shape": _shape(lists),
    }


def _shape(lists: Any) -> list[tuple[str, list[int]]]:
    return [(c.rep.external_id, [i.customer.id for i in c.items]) for c in lists]


def enrollments(url: str, at: datetime) -> list[tuple[int, str]]:
    """Who the pass at ``at`` enrolled into what."""
    import sqlalchemy as sa

    from reengage.store import Store
    from reengage.store.tables import ENROLLMENTS

    store = Store.open(url)
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(ENROLLMENTS.c.customer_id, ENROLLMENTS.c.campaign_id).where(
                ENROLLMENTS.c.enrolled_at == at
            )
        )
        found = sorted((r[0], r[1]) for r in rows)
    store.close()
    return found


# --- the run --------------------------------------------------------------------------------


def in_child(fn: Any, *args: Any) -> Any:
    """``fn(*args)`` in a fresh process, with its peak RSS (the parent's memory stays out)."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_measured, (fn, *args))


def _measured(fn: Any, *args: Any) -> Any:
    from reengage.logs import configure_logging

    configure_logging("error")
    result = fn(*args)
    if isinstance(result, dict):
        result["peak_mb"] = peak_mb()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=100)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--database-url", help="a PostgreSQL database (default: SQLite files)")
    parser.add_argument("--keep", type=Path, help="SQLite: keep the built store in this folder")
    parser.add_argument("--one-rep-samples", type=int, default=5)
    parser.add_argument("--build-only", action="store_true", help="build the store and stop")
    parser.add_argument(
        "--baseline",
        choices=["each", "last"],
        default="each",
        help="score everyone beside each detection pass, or only the last (a whole pass at a "
        "million customers takes minutes)",
    )
    parser.add_argument(
        "--detect-in",
        choices=["process", "thread"],
        default="process",
        help="where each worker runs its passes: a process of its own, as `reengage run` "
        "does, or a thread of the worker, as before (to compare the loop's pauses)",
    )
    parser.add_argument("--phase", choices=["worker"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--now", help=argparse.SUPPRESS)
    parser.add_argument("--what", help=argparse.SUPPRESS)
    parser.add_argument("--sink-port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase == "worker":
        print(json.dumps(worker(args)))
        return
    with contextlib.ExitStack() as stack:
        folder = args.keep or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        folder.mkdir(parents=True, exist_ok=True)
        place = Place(args.database_url, folder)
        backend = "PostgreSQL" if args.database_url else "SQLite"
        started = time.perf_counter()
        built = build(place, args.customers, args.reps)
        print(
            f"{args.customers:,} customers, {args.reps} reps, {backend}, {args.workers} "
            f"workers, {os.cpu_count()} cores; store {built} "
            f"({time.perf_counter() - started:.0f} s)",
            flush=True,
        )
        if args.build_only:
            return
        port, count = stack.enter_context(sink())
        place.copy("base", "run")
        run = place.url("run")
        rows: list[tuple[str, dict[str, Any], dict[str, Any] | None, bool | None]] = []
        at = NOW
        for label in ("first pass (new store)", "steady (nothing changed)", "1% ordered"):
            if label == "1% ordered":
                ordered = in_child(order_one_in_a_hundred, run, at - timedelta(minutes=5))
                label = f"after {ordered:,} ordered"
            theirs, same = None, None
            if args.baseline == "each" or label.startswith("after"):
                place.copy("run", "whole")
            ours = run_phase(run, "detect", at, args.workers, port, args.detect_in)
            if args.baseline == "each" or label.startswith("after"):
                theirs = run_phase(place.url("whole"), "whole", at, 1, port)
                same = enrollments(run, at) == enrollments(place.url("whole"), at)
            rows.append((label, ours, theirs, same))
            place.settle("run")
            print(f"  {label}: {ours['seconds']:.1f} s", flush=True)
            at += timedelta(minutes=10)
        digests = run_phase(run, "digests", at, args.workers, port)
        lists = in_child(lists_phase, run, at, args.one_rep_samples, False)
        scan = in_child(lists_phase, run, at, args.one_rep_samples, True)
        place.drop("whole")
        place.drop("run")
        report(rows, digests, lists, scan, count.value)


def report(
    rows: list[tuple[str, dict[str, Any], dict[str, Any] | None, bool | None]],
    digests: dict[str, Any],
    lists: dict[str, Any],
    scan: dict[str, Any],
    mails: int,
) -> None:
    print()
    head = f"{'':28}{'seconds':>9}{'looked at':>11}{'enrolled':>10}{'peak MB':>9}"
    print(head + f"{'pause ms':>10}{'sent':>7}   scoring everyone: s / MB / same")
    for label, ours, theirs, same in rows:
        line = (
            f"{label:28}{ours['seconds']:>9.1f}{ours['looked_at']:>11,}{ours['entered']:>10,}"
            f"{ours['peak_mb']:>9.0f}{ours['pause_ms']:>10.0f}{ours['sent']:>7,}"
        )
        if theirs is not None:
            line += (
                f"   {theirs['seconds']:.1f} / {theirs['peak_mb']:.0f} / {'yes' if same else 'NO'}"
            )
        print(line)
    print(
        f"{'digests, every rep':28}{digests['seconds']:>9.1f}{'':>11}{digests['digests']:>10,}"
        f"{digests['peak_mb']:>9.0f}{digests['pause_ms']:>10.0f}{digests['sent']:>7,}"
    )
    on_lists = sum(len(ids) for _, ids in lists["shape"])
    print(f"\nreps' lists ({lists['reps']} reps, {on_lists:,} customers on them)")
    print(f"{'':28}{'all reps s':>11}{'one rep s':>11}{'at most':>9}{'peak MB':>9}")
    for label, r in (("the daemon's path", lists), ("full scan (scores everyone)", scan)):
        print(
            f"{label:28}{r['all_s']:>11.1f}{r['one_rep_s']:>11.2f}{r['one_rep_max_s']:>9.2f}"
            f"{r['peak_mb']:>9.0f}"
        )
    print(f"same lists: {'yes' if lists['shape'] == scan['shape'] else 'NO'}")
    print(f"mails the sink accepted during the passes: {mails:,}")


if __name__ == "__main__":
    main()
