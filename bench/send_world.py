"""``bench/send.py --honest``: a shipped campaign step to seeded customers, against a bare
blast over as many connections, alone and with a detection and a digest pass beside it.

Kept apart from send.py so that file stays readable; see its docstring for what is measured.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "campaigns" / "habit-lapsed-tips.yaml"
# A Wednesday: Wednesday in every time zone the seed uses (Chicago 06:00 to Shanghai 20:00).
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
# The one change to the shipped file: its window (09:00-17:00 on tue-thu, recipient's time)
# has no moment open in Chicago and in Shanghai at once. Days and per-recipient time zones
# stay, so every send still checks the window in the recipient's zone.
SHIPPED_HOURS = 'hours: "09:00-17:00"'
ALL_DAY = 'hours: "00:00-24:00"'


def campaign_text() -> str:
    text = SHIPPED.read_text(encoding="utf-8")
    assert SHIPPED_HOURS in text, "the shipped send window changed: update bench/send_world.py"
    return text.replace(SHIPPED_HOURS, ALL_DAY)


def build(folder: Path, messages: int, port: int, connections: int) -> dict[str, Any]:
    """Seeded customers (with reps, locales and time zones) in a SQLite file, enrolled by a
    detection pass until at least ``messages`` first steps are due; the settings and the
    baseline's pre-rendered message (the same step, rendered for one enrolled customer)."""
    import sqlalchemy as sa

    from reengage import compose, jobs
    from reengage.authoring import CampaignLibrary
    from reengage.config import load_settings
    from reengage.digest.calllist import assess_one
    from reengage.ingest import Kind, import_file
    from reengage.message import wire
    from reengage.seed import write_dataset
    from reengage.store import Store
    from reengage.store.tables import CUSTOMERS, ENROLLMENTS

    (folder / "campaigns").mkdir()
    (folder / "campaigns" / SHIPPED.name).write_text(campaign_text(), encoding="utf-8")
    settings = load_settings(
        env_file=None,
        campaigns_dir=folder / "campaigns",
        templates_dir=ROOT / "templates",
        secret_key="b" * 40,
        smtp_port=port,
        smtp_connections=connections,
    )  # default frequency cap (max_emails_per_week) left on
    ws = compose.Workspace.from_settings(settings)
    library = CampaignLibrary(ws)
    library.reload()
    campaign = library.campaigns["habit-lapsed-tips"]
    url = f"sqlite:///{folder / 'world.db'}"
    store = Store.open(url, upgrade=True)
    # About one seeded customer in five is enrolled (lapsed, worth 100 or more, not held out).
    data = write_dataset(folder / "seed", messages * 5, seed=1, now=NOW)
    for kind, path in (
        (Kind.REPS, data.reps),
        (Kind.CUSTOMERS, data.customers),
        (Kind.ACTIVITIES, data.activities),
    ):
        import_file(store, kind, path, now=NOW, zone=ZoneInfo("UTC"), batch_size=20_000)
    report = jobs.detect_and_enroll(store, [campaign], NOW)
    with store.engine.connect() as conn:
        first = conn.scalar(
            sa.select(sa.func.min(ENROLLMENTS.c.customer_id)).where(
                ENROLLMENTS.c.status == "active"
            )
        )
        external = conn.scalar(sa.select(CUSTOMERS.c.external_id).where(CUSTOMERS.c.id == first))
        locales = conn.execute(
            sa.select(CUSTOMERS.c.locale, sa.func.count())
            .join(ENROLLMENTS, ENROLLMENTS.c.customer_id == CUSTOMERS.c.id)
            .where(ENROLLMENTS.c.status == "active")
            .group_by(CUSTOMERS.c.locale)
        ).all()
    found = store.customers.get_customer(external)
    assert found is not None
    customer = found[0]
    message, _ = compose.render_for(
        ws,
        campaign,
        campaign.steps[0].key,
        customer,
        assess_one(store, first, NOW),
        message_key="bench",
        now=NOW,
        rep_name=None,
    )
    store.close()
    return {
        "settings": settings,
        "ws": ws,
        "db": folder / "world.db",
        "customers": data.customer_count,
        "enrolled": sum(report.entered.values()),
        "held_out": sum(report.held_out.values()),
        "locales": ", ".join(f"{n:,} {locale}" for locale, n in sorted(locales, key=str)),
        "data": wire(message),
    }


def fresh(world: dict[str, Any], folder: Path, name: str) -> Any:
    """A copy of the enrolled world's database: every measurement starts from the same."""
    from reengage.store import Store

    path = folder / f"{name}.db"
    shutil.copyfile(world["db"], path)
    return Store.open(f"sqlite:///{path}", upgrade=True)


async def blast_parallel(port: int, data: bytes, count: int, connections: int) -> float:
    """The baseline: ``connections`` aiosmtplib connections, each sending its share of
    ``count`` pre-serialized messages in a loop, all at once."""
    import aiosmtplib

    clients = [
        aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
        for _ in range(connections)
    ]
    await asyncio.gather(*(client.connect() for client in clients))

    async def run(n: int, client: Any) -> None:
        for i in range(n, count, connections):
            await client.sendmail("b@acme.example", [f"c{i}@example.com"], data)

    started = time.perf_counter()
    await asyncio.gather(*(run(n, client) for n, client in enumerate(clients)))
    seconds = time.perf_counter() - started
    await asyncio.gather(*(client.quit() for client in clients))
    return seconds


# What runs beside dispatch, per side of a round: (detection passes, a digest pass).
BESIDE = {"alone": (False, False), "detect": (True, False), "loaded": (True, True)}


async def dispatch(
    store: Any,
    world: dict[str, Any],
    batch: int,
    *,
    side: str = "alone",
    passes: int = 1,
    premade: bool = False,
) -> tuple[float, int, str]:
    """`Service.dispatch` until nothing is due: seconds, messages sent, and what ran beside
    it (``side``, :data:`BESIDE`): ``passes`` detection passes (`Service.detect`, in a
    process of their own as `reengage run` runs them; 0: back to back until dispatch ends),
    the first looking at every customer (as after a campaign edit or a new model), any more
    at whoever is due a look; and one digest pass (`Service.digests`) on the loop, started
    with dispatch. ``premade``: every mail's making (template, text part, CSS, MIME, signed
    links) taken out — each customer is sent the baseline's bytes — which leaves what
    dispatch itself costs: the ceiling any faster rendering could reach."""
    from reengage import dispatch as dispatching
    from reengage import loopwatch
    from reengage.config import LogFormat
    from reengage.detection_process import ChildSetup, DetectionProcess
    from reengage.digest import DigestConfig
    from reengage.mailer import SmtpMailer
    from reengage.scheduler import Service
    from reengage.store.tables import DETECTION_STATE

    detecting_beside, digests_beside = BESIDE[side]
    if detecting_beside:  # forget the last whole pass: the next one looks at everyone
        with store.engine.begin() as conn:
            conn.execute(DETECTION_STATE.delete())

    settings = world["settings"]
    connections = settings.smtp_connections
    detection = None
    if detecting_beside:  # as `reengage run` does: the passes in a process of their own
        url = store.engine.url.render_as_string(hide_password=False)
        at_now = (NOW, time.monotonic())  # the child's clock starts at the bench's moment
        detection = DetectionProcess(ChildSetup(url, 30, "error", LogFormat.JSON, at_now))
        detection.start()
    service = Service(
        store,
        SmtpMailer("127.0.0.1", settings.smtp_port, pool_size=connections),
        world["ws"],
        clock=lambda: NOW,
        batch=batch,
        concurrency=connections,
        digest=DigestConfig.from_settings(settings) if digests_beside else None,
        detection=detection,
    )
    service.reload()
    loopwatch.settle_process()  # as the daemon does once started
    done, looked, took = threading.Event(), [], [0.0, 0.0]

    def detecting() -> None:
        begun = time.perf_counter()
        while not done.is_set() and (passes == 0 or len(looked) < passes):
            report = service.detect()
            assert report.skipped is None, report.skipped
            looked.append(report.looked_at)
        took[0] = time.perf_counter() - begun

    async def digesting() -> Any:
        begun = time.perf_counter()
        report = await service.digests()
        took[1] = time.perf_counter() - begun
        return report

    made = dispatching.wire_for
    if premade:
        dispatching.wire_for = lambda *_, **__: (world["data"], "<premade@acme.example>")
    detector = threading.Thread(target=detecting, daemon=True) if detecting_beside else None
    started = time.perf_counter()
    try:
        if detector:
            detector.start()
        digests = asyncio.create_task(digesting()) if digests_beside else None
        report = await service.dispatch()
        seconds = time.perf_counter() - started
    finally:
        dispatching.wire_for = made
    done.set()
    notes = [f"dispatch {seconds:.1f} s"]
    if detector:
        await asyncio.to_thread(detector.join)
        more = f", then {max(looked[1:]):,} at most" if len(looked) > 1 else ""
        notes.append(
            f"{len(looked)} detection pass(es) {took[0]:.1f} s "
            f"(customers looked at: {looked[0]:,}{more})"
        )
    if digests:
        digest = await digests
        notes.append(f"{digest.results.get('sent', 0)} digests {took[1]:.1f} s")
    await service.mailer.close()
    if detection is not None:
        detection.close()
    return seconds, report.results.get("sent", 0), "; ".join(notes)


def honest(args: Any, sink: Any) -> None:
    """Rounds of the sides against one fast sink in its own process; each round rotates
    which side goes first. Prints msgs/s, the ratios to the blast and their medians."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="reengage-bench-") as tmp, sink(0.0) as (port, _):
        folder = Path(tmp)
        started = time.perf_counter()
        world = build(folder, args.messages, port, args.connections)
        print(
            f"\nhonest: {world['customers']:,} seeded customers, {world['enrolled']:,} enrolled "
            f"in {SHIPPED.name} ({world['locales']}; {world['held_out']:,} held out), first step "
            f"({len(world['data']):,} bytes rendered), {args.connections} connections, batches "
            f"of {args.batch}, frequency cap {world['settings'].max_emails_per_week}/week "
            f"(built in {time.perf_counter() - started:.0f} s)"
        )
        print(
            "msgs/s, and x the bare blast in the same round. premade: dispatch with each "
            "mail's making taken out (the ceiling of faster rendering); +detect: detection "
            "passes beside it, in their child; +digests: and every rep's digest on the loop"
        )
        sides = ["bare", "alone", "premade", "detect", "loaded"]
        heads = ["bare", "reengage", "premade", "+detect", "+digests"]
        print(f"{'round':<6}" + "".join(f"{h:>16}" for h in heads))
        ratios: dict[str, list[float]] = {side: [] for side in sides[1:]}
        under: list[float] = []
        sent, notes = 0, {}
        for number in range(1, args.rounds + 1):
            rates: dict[str, float] = {}
            shift = (number - 1) % len(sides)
            for side in sides[shift:] + sides[:shift]:
                if side == "bare":
                    count = world["enrolled"]
                    seconds = asyncio.run(
                        blast_parallel(port, world["data"], count, args.connections)
                    )
                    rates[side] = count / seconds
                    continue
                store = fresh(world, folder, f"{side}-{number}")
                seconds, sent, notes[side] = asyncio.run(
                    dispatch(
                        store,
                        world,
                        args.batch,
                        side="alone" if side == "premade" else side,
                        passes=args.detect_passes,
                        premade=side == "premade",
                    )
                )
                store.close()
                rates[side] = sent / seconds
            for side in sides[1:]:
                ratios[side].append(rates[side] / rates["bare"])
            under.append(rates["detect"] / rates["alone"])
            cells = [f"{rates['bare']:,.0f}"] + [
                f"{rates[side]:,.0f} {rates[side] / rates['bare']:.2f}x" for side in sides[1:]
            ]
            print(f"{number:<6}" + "".join(f"{c:>16}" for c in cells), flush=True)
        median = {side: statistics.median(found) for side, found in ratios.items()}
        print(
            f"median of {args.rounds}: reengage {median['alone']:.2f}x the bare blast over "
            f"{args.connections} connections (with every mail made beforehand "
            f"{median['premade']:.2f}x); with detection beside it {median['detect']:.2f}x "
            f"({statistics.median(under):.2f}x of itself alone); with detection and digests "
            f"{median['loaded']:.2f}x. Dispatch sent {sent:,} of {world['enrolled']:,} "
            "enrolled (the rest over the cap or otherwise held back)"
        )
        print(
            f"beside it in the last round: +detect: {notes['detect']}; +digests: {notes['loaded']}"
        )
