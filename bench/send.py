"""Sending speed: the daemon's dispatch end to end against a bare aiosmtplib blast.

    python bench/send.py [--messages 2000] [--connections 16]

For a sink that answers at once and for one that waits 50 ms per message (aiosmtpd on
loopback, counting only), measures in the same run:

- baseline: the same pre-rendered messages sent by one aiosmtplib connection in a loop
  (a bare blast: no database, no rendering, no bookkeeping);
- reengage: `Service.dispatch` — claim from the database, write the message row, render,
  send over the connection pool, record — for the same number of customers.

Prints messages/s for each and the process's peak memory after each phase. Aims: at least
0.8x the bare blast against the fast sink, and at least 10x single-connection throughput
against the 50 ms sink.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import socket
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
CAMPAIGN = """\
id: bench
name: Bench
audience:
  lapsed: {factor: 2.0, min_days_silent: 14}
holdout_percent: 0
send_window: {hours: "00:00-24:00", days: [mon, tue, wed, thu, fri, sat, sun]}
from: "Acme <hello@acme.example>"
steps:
  - key: first
    after: 0d
    subject: "Hello {{ customer.first_name }}"
    template: tips/tip-2.html.j2
"""


class Counter:
    """Counts accepted messages, optionally answering slowly; keeps nothing."""

    def __init__(self, delay: float) -> None:
        self.count, self.delay = 0, delay

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        self.count += 1
        return "250 OK"


async def blast(port: int, message: Any, count: int) -> float:
    """The baseline: one aiosmtplib connection sending pre-rendered messages in a loop."""
    import aiosmtplib

    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
    await client.connect()
    started = time.perf_counter()
    for i in range(count):
        await client.send_message(
            message, sender="b@acme.example", recipients=[f"c{i}@example.com"]
        )
    seconds = time.perf_counter() - started
    await client.quit()
    return seconds


async def dispatch(store: Any, ws: Any, port: int, connections: int) -> float:
    """reengage: the daemon's dispatch until nothing is due."""
    from reengage.mailer import SmtpMailer
    from reengage.scheduler import Service

    service = Service(
        store,
        SmtpMailer("127.0.0.1", port, pool_size=connections),
        ws,
        clock=lambda: NOW,
        batch=200,
        concurrency=connections,
    )
    service.reload()
    started = time.perf_counter()
    await service.dispatch()
    seconds = time.perf_counter() - started
    await service.mailer.close()
    return seconds


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    from aiosmtpd.controller import Controller

    from reengage import authoring, jobs
    from reengage.campaigns import parse_campaign
    from reengage.config import load_settings
    from reengage.ingest import Kind, import_file
    from reengage.logs import configure_logging
    from reengage.store import Store

    configure_logging("warning")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    campaign, _ = parse_campaign(CAMPAIGN, "bench.yaml")
    assert campaign is not None

    for delay in (0.0, 0.05):
        with tempfile.TemporaryDirectory(prefix="reengage-bench-") as tmp:
            folder = Path(tmp)
            (folder / "campaigns").mkdir()
            (folder / "campaigns" / "bench.yaml").write_text(CAMPAIGN)
            rows = ["customer_id,email,first_name"] + [
                f"c{i},c{i}@example.com,N{i}" for i in range(args.messages)
            ]
            (folder / "customers.csv").write_text("\n".join(rows) + "\n")
            orders = ["customer_id,occurred_at,amount"] + [
                f"c{i},{(NOW - timedelta(days=60 + 7 * k)).date()},20"
                for i in range(args.messages)
                for k in range(3)
            ]
            (folder / "orders.csv").write_text("\n".join(orders) + "\n")
            store = Store.open(f"sqlite:///{folder / 'bench.db'}", upgrade=True)
            for kind, name in ((Kind.CUSTOMERS, "customers.csv"), (Kind.ACTIVITIES, "orders.csv")):
                import_file(store, kind, folder / name, now=NOW, zone=ZoneInfo("UTC"))
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
            sink = Counter(delay)
            server = Controller(sink, hostname="127.0.0.1", port=port)
            server.start()
            settings = load_settings(
                env_file=None,
                campaigns_dir=folder / "campaigns",
                templates_dir=ROOT / "templates",
                secret_key="b" * 40,
                smtp_port=port,
                smtp_connections=args.connections,
                max_emails_per_week=0,
            )
            ws = authoring.Workspace.from_settings(settings)
            jobs.detect_and_enroll(store, [campaign], NOW)

            # The baseline: the same messages, rendered beforehand, one connection.
            customer = store.get_customer("c0")
            assert customer is not None
            message, _ = authoring.render_for(
                ws,
                campaign,
                "first",
                customer[0],
                None,
                message_key="bench",
                now=NOW,
                rep_name=None,
            )

            bare = asyncio.run(blast(port, message, args.messages))
            bare_peak = peak_mb()

            before = sink.count
            ours = asyncio.run(dispatch(store, ws, port, args.connections))
            sent = sink.count - before
            server.stop()
            store.close()
        label = "instant sink" if not delay else "50 ms sink"
        print(f"\n{label}: {args.messages:,} messages, {args.connections} connections")
        print(f"{'':40}{'msgs/s':>10}{'peak MB':>10}")
        print(
            f"{'bare aiosmtplib, one connection':40}{args.messages / bare:>10,.0f}"
            f"{bare_peak:>10.0f}"
        )
        print(
            f"{'reengage dispatch (claim→send→record)':40}{sent / ours:>10,.0f}{peak_mb():>10.0f}"
        )
        print(
            f"ratio: {(sent / ours) / (args.messages / bare):.2f}x the bare blast "
            f"({sent} delivered)"
        )


if __name__ == "__main__":
    main()
