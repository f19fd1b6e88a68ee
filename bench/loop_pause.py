"""How long the event loop pauses while the daemon works (issue 18: nothing blocks the loop).

    python bench/loop_pause.py [--messages 1000] [--connections 4] [--rounds 3]

A ticker sleeps 5 ms at a time on the loop that runs the daemon (and, in a worker, the web
app and inbound SMTP); how late each wake-up comes is how long the loop was held. Measured
during a detection pass (``Service.detect`` in a thread, as the ticking service and
``run --once`` run it) and during a dispatch pass of ``--messages`` mails (``Service.dispatch``:
claim, write the rows, render, send, record), on SQLite, against the counting sink of
``bench/send.py`` in its own process. Prints the longest pause and the 99th percentile of
each round.

Aim (issue 18): no pause over 50 ms.

Measured (2-core VM shared with four other engineers' test runs, load 4-6; 1,000 messages,
4 connections, batches of 100; two rounds each), before and after the dispatch pass's
database work moved into threads (``SentLog.call``, issue 18):

- before (its SQL on the loop): dispatch's longest pause 106 and 88 ms, 99th percentile
  34 and 46 ms; 1,000 mails in 5.8 and 5.1 s.
- after: longest 60 and 46 ms, 99th percentile 18 and 19 ms; 1,000 mails in 3.5 and 3.6 s
  (the database's work now overlaps the SMTP conversations).
- after, with Python's garbage collector off for the run: longest 25 and 28 ms, 99th
  percentile 13 and 18 ms. So what is left above 50 ms looks like the garbage collector's
  full collections, not the database (two rounds only; ``gc.freeze()`` after start-up is
  the next thing to try).
- detection (in a thread, before and after): the loop's longest pause 12-31 ms while it
  runs, the GIL shared every 5 ms (``sys.getswitchinterval``).

Before the daemon moved its SQL into threads, an in-process test of 300 mails saw 215 ms
(SQLite) and 272 ms (PostgreSQL) when ``run --once`` also detected on the loop. The test
now is tests/integration/test_loop_lag.py: a real `reengage run`, its database 80 ms away
(PostgreSQL behind a delaying proxy), read through its own ``/metrics``
(``reengage_event_loop_lag_max_seconds``, :mod:`reengage.loopwatch`). The daemon, once
started, and this bench after its set-up settle the process as the daemon does
(``loopwatch.settle_process``: ``gc.freeze()`` and a 1 ms GIL switch interval, so a busy
detection thread keeps the loop waiting for at most a millisecond at a time).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from send import NOW, prepare, sink  # the same world as the sending bench

TICK_S = 0.005


async def paused(work: Callable[[], Awaitable[object]]) -> list[float]:
    """How late each 5 ms wake-up of a ticker came while ``work`` ran, in seconds."""
    loop = asyncio.get_running_loop()
    late: list[float] = []
    running = True

    async def tick() -> None:
        last = loop.time()
        while running:
            await asyncio.sleep(TICK_S)
            now = loop.time()
            late.append(now - last - TICK_S)
            last = now

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.05)
    try:
        await work()
    finally:
        running = False
        await ticker
    return late


def summary(late: list[float]) -> str:
    ordered = sorted(late)
    p99 = ordered[int(len(ordered) * 0.99)] if ordered else 0.0
    return f"{max(ordered, default=0.0) * 1000:7.1f} {p99 * 1000:7.1f}"


def one_round(args: argparse.Namespace) -> tuple[list[float], list[float], float]:
    from reengage import loopwatch
    from reengage.mailer import SmtpMailer
    from reengage.scheduler import Service

    with tempfile.TemporaryDirectory(prefix="reengage-loop-") as tmp, sink(0.0) as (port, count):
        store, ws, _ = prepare(Path(tmp), args.messages, port, args.connections)
        service = Service(
            store,
            SmtpMailer("127.0.0.1", port, pool_size=args.connections),
            ws,
            clock=lambda: NOW,
            batch=args.batch,
            concurrency=args.connections,
        )
        service.reload()  # prepare() rendered one mail: the template is compiled already
        loopwatch.settle_process()  # as the daemon does once started

        async def both() -> tuple[list[float], list[float], float]:
            detecting = await paused(lambda: asyncio.to_thread(service.detect))
            started = time.perf_counter()
            sending = await paused(service.dispatch)
            seconds = time.perf_counter() - started
            await service.mailer.close()
            return detecting, sending, seconds

        detecting, sending, seconds = asyncio.run(both())
        print(f"  ({count.value} mails in {seconds:.1f} s)", file=sys.stderr)
        store.close()
    return detecting, sending, seconds


def main() -> None:
    from reengage.logs import configure_logging

    configure_logging("error")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"{args.messages:,} messages, {args.connections} connections; pauses in ms")
    print("round  detect max    p99   dispatch max    p99")
    worst: list[float] = []
    for n in range(1, args.rounds + 1):
        detecting, sending, _ = one_round(args)
        worst.append(max(sending, default=0.0))
        print(f"{n:<5}  {summary(detecting)}        {summary(sending)}")
    print(f"median of the dispatch pass's longest pause: {statistics.median(worst) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
