"""The reps' morning lists: one rep's, and everyone's, against scoring the whole base.

    python bench/digest.py [--customers 100000] [--database-url URL]

Generates customers with `reengage.seed` (one rep per hundred customers), imports them,
then measures in this process, on the same data:

- one rep's list, `build_lists(reps=[one])` — what `reengage calls list --rep`, `digest
  preview` and a digest retry do — and every rep's list, `build_lists()` — the morning
  pass when all reps share a time zone;
- each beside the baseline: the same call with every customer scored (`assess_all`), as
  lists were built before they were narrowed to the reps they are for. Also counts how
  many reps' top lists come out the same both ways (the narrowed way fits the population
  prior on a sample, as detection does, so a score can move slightly);
- the event loop: the longest pause of a 10 ms ticker on the loop while `send_digests`
  builds and mails every rep's digest (to an aiosmtpd sink on loopback). The daemon's sends
  and /healthz share that loop.


Measured (2-core VM, SQLite, 100,000 customers, 1,000 reps, three runs):

- one rep's list: 0.04-0.08 s against 5.0-7.2 s scoring everyone (90x-122x);
- every rep's list: 10.3-15.1 s against 8.3-14.4 s — the same work (everyone with a rep is
  scored either way); the sample-fitted prior puts 960 of 1,000 top lists exactly as the
  full-population prior does, the other 40 differ in order or in a name near the cut;
- send_digests to every rep: 1,000 digests in 25-32 s, with the event loop's longest pause
  0.8-0.9 s. Before lists were built in a thread the loop stood still for the whole build
  (10 s and more). What is left is CPython's full garbage collection while the build holds
  one assessment per customer: with ``gc.callbacks`` at 50,000 customers each long pause
  (250, 206, 138 ms) was a generation-2 collection of the same length; it grows with the
  customer base.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import socket
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
NOW = datetime(2026, 11, 2, 7, 30, tzinfo=UTC)


def build(url: str, folder: Path, customers: int) -> Any:
    from reengage.ingest import Kind, import_file
    from reengage.seed import write_dataset
    from reengage.store import Store

    data = write_dataset(folder, customers, seed=1, now=NOW)
    store = Store.open(url, upgrade=True)
    for kind, path in (
        (Kind.REPS, data.reps),
        (Kind.CUSTOMERS, data.customers),
        (Kind.ACTIVITIES, data.activities),
    ):
        import_file(store, kind, path, now=NOW, zone=ZoneInfo("UTC"), batch_size=20_000)
    return store


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - started


async def loop_pause(store: Any, folder: Path) -> tuple[float, float, int]:
    """Longest pause of a ticker on the loop while every rep's digest is built and sent."""
    from aiosmtpd.controller import Controller

    from reengage.compose import Workspace
    from reengage.config import load_settings
    from reengage.digest import DigestConfig, send_digests
    from reengage.mailer import SmtpMailer

    class Discard:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sink = Controller(Discard(), hostname="127.0.0.1", port=port)
    sink.start()
    try:
        settings = load_settings(
            env_file=None,
            campaigns_dir=folder,
            templates_dir=TEMPLATES,
            secret_key="b" * 40,
            smtp_port=port,
        )
        ws, cfg = Workspace.from_settings(settings), DigestConfig.from_settings(settings)
        mailer = SmtpMailer.from_settings(settings)
        ticks: list[float] = []

        async def ticker() -> None:
            while True:
                ticks.append(time.perf_counter())
                await asyncio.sleep(0.01)

        running = asyncio.create_task(ticker())
        started = time.perf_counter()
        report = await send_digests(store, mailer, ws, cfg, NOW, anytime=True)
        seconds = time.perf_counter() - started
        running.cancel()
        await mailer.close()
    finally:
        sink.stop()
    pause = max(b - a for a, b in itertools.pairwise(ticks))
    return pause, seconds, report.results["sent"]


def main() -> None:
    from reengage.digest import calllist
    from reengage.digest.calllist import ListPolicy, build_lists
    from reengage.logs import configure_logging
    from reengage.scoring import assess_all

    configure_logging("warning")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--database-url", help="default: a temporary SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="reengage-bench-") as tmp:
        folder = Path(tmp)
        url = args.database_url or f"sqlite:///{folder / 'bench.db'}"
        store, seconds = timed(build, url, folder, args.customers)
        reps = store.calls.reps()
        one = [reps[0].external_id]
        print(
            f"{args.customers:,} customers, {len(reps):,} reps (generated and imported "
            f"in {seconds:.0f} s)"
        )
        narrowed = calllist.assess_customers_of

        def everyone(store: Any, now: datetime, reps: list[str]) -> Any:
            return assess_all(store, now)[1]  # the baseline: score the whole base each time

        rows = []
        for label, chosen in (("one rep's list", one), ("every rep's list", None)):
            calllist.assess_customers_of = everyone
            before, before_s = timed(build_lists, store, NOW, ListPolicy(), reps=chosen)
            calllist.assess_customers_of = narrowed
            after, after_s = timed(build_lists, store, NOW, ListPolicy(), reps=chosen)
            same = sum(
                [i.customer.id for i in a.items] == [i.customer.id for i in b.items]
                for a, b in zip(before, after, strict=True)
            )
            rows.append((label, before_s, after_s, same, len(after)))
        print(f"{'':18}{'scoring everyone':>18}{'narrowed':>10}{'faster':>8}  same top lists")
        for label, before_s, after_s, same, count in rows:
            print(
                f"{label:18}{before_s:>17.2f}s{after_s:>9.2f}s{before_s / after_s:>7.1f}x"
                f"  {same:,} of {count:,}"
            )
        pause, seconds, sent = asyncio.run(loop_pause(store, folder))
        print(
            f"send_digests to every rep: {sent:,} digests in {seconds:.1f} s; the event "
            f"loop's longest pause meanwhile: {pause * 1000:.0f} ms"
        )
        store.close()


if __name__ == "__main__":
    main()
