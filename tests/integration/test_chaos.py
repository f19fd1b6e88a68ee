"""Never twice, never lost, when everything goes wrong at once (bounded, PostgreSQL).

Three `reengage run` workers share one PostgreSQL database and one mail server that
misbehaves (421 and 451 now and then, 550 for some recipients, the line dropped before the
mail or after keeping it, 20-120 ms a reply), while a worker is SIGKILLed every second or
two and another started in its place. Then the server calms down and the work is drained.
No mail may arrive twice, none may be lost, `unknown` may hold only what was really on the
wire or kept by the server, every enrollment must agree with its message, and
`reengage sends resolve` must settle every uncertain one.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from reengage import jobs
from reengage.campaigns import parse_campaign
from reengage.models import Enrollment, Message
from reengage.store import Store
from tests.integration.smtp_sink import running_sink
from tests.integration.test_cli import cli, script
from tests.integration.test_worker import (
    CAMPAIGN,
    LEASE,
    NOW,
    Clock,
    env,
    prepare,
    start_worker,
    statuses,
    workers,  # noqa: F401  # the fixture that kills what a failed test leaves running
)

pytestmark = [pytest.mark.clock, pytest.mark.postgres]
CUSTOMERS = 300
BATCH, CONNECTIONS, KILLS = 5, 2, 8


@pytest.mark.long
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_three_workers_a_bad_mail_server_and_kills_lose_nothing_and_send_nothing_twice(
    database_url: str,
    tmp_path: Path,
    workers: list[subprocess.Popen[Any]],  # noqa: F811
) -> None:
    store = prepare(database_url, tmp_path, CUSTOMERS)
    campaign, _ = parse_campaign(CAMPAIGN, "always.yaml")
    assert campaign is not None
    assert sum(jobs.detect_and_enroll(store, [campaign], NOW).entered.values()) == CUSTOMERS
    clock = Clock()
    chance = random.Random(11)
    with running_sink() as (sink, port):
        sink.misbehave(seed=7)
        settings = env(
            database_url,
            tmp_path,
            port,
            REENGAGE_SEND_BATCH_SIZE=str(BATCH),
            REENGAGE_SMTP_CONNECTIONS=str(CONNECTIONS),
            REENGAGE_LOG_LEVEL="error",
        )

        def start() -> subprocess.Popen[Any]:
            return start_worker(workers, tmp_path, settings, clock)

        alive = [start() for _ in range(3)]

        def progress(mails: int) -> None:
            before, deadline = len(sink.received), time.monotonic() + 30
            while len(sink.received) < before + mails and time.monotonic() < deadline:
                time.sleep(0.05)

        for _ in range(KILLS):
            progress(5)
            victim = alive.pop(chance.randrange(len(alive)))
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=10)
            alive.append(start())
        progress(10)  # the last one started has had time to start before it is stopped
        for worker in alive:
            worker.send_signal(signal.SIGTERM)
        for worker in alive:
            worker.wait(timeout=60)
            assert worker.returncode == 0

        # The server calms down; the clock moves past every lease and retry, and the
        # work is drained.
        sink.chaos = None
        for hours in range(1, 13):
            later = clock.now(later=LEASE + timedelta(hours=7 * hours))
            drained = script("run", "--once", cwd=tmp_path, env={**settings, "REENGAGE_NOW": later})
            assert drained.returncode == 0, drained.stderr
            left = statuses(store)
            if not (left["queued"] or left["sending"] or left["retry"]):
                break
        ids = sink.message_ids()
        received = len(ids)
        kept_then_dropped = sink.kept_then_dropped

    counts = statuses(store)
    assert len(ids) == len(set(ids)), "a mail arrived twice"
    assert counts["queued"] == counts["sending"] == counts["retry"] == 0, counts
    # One mail step: each customer's one mail is sent, bounced or uncertain — none lost.
    assert counts["sent"] + counts["bounced"] + counts["unknown"] == CUSTOMERS, counts
    # Unknown only what went out: kept by the server before a dropped reply, or on the
    # wire (or accepted, not yet written) when its worker was killed.
    never_arrived = counts["unknown"] - (received - counts["sent"])
    assert 0 <= never_arrived <= KILLS * CONNECTIONS, (counts, received)
    assert counts["unknown"] <= kept_then_dropped + KILLS * BATCH, (counts, kept_then_dropped)
    assert _disagreements(store) == []

    # A person settles every uncertain one; every enrollment then ends.
    now = clock.now(later=timedelta(days=5))
    settled = cli(
        "sends", "resolve", "sent", "--all", cwd=tmp_path, env={**settings, "REENGAGE_NOW": now}
    )
    assert settled.returncode == 0, settled.stderr
    after = statuses(store)
    assert after["unknown"] == 0 and after["sent"] == counts["sent"] + counts["unknown"]
    assert _disagreements(store) == []
    with store.engine.connect() as conn:
        left = conn.execute(
            sa.select(ENROLLMENTS.c.status, sa.func.count()).group_by(ENROLLMENTS.c.status)
        ).all()
    assert {status for status, _ in left} <= {"completed", "exited"}, left
    store.close()


ENROLLMENTS: sa.Table = Enrollment.__table__  # type: ignore[attr-defined]
MESSAGES: sa.Table = Message.__table__  # type: ignore[attr-defined]
AGREE = {  # a one-step campaign: the enrollment's state that goes with its message's
    "sent": {"completed"},
    "bounced": {"exited"},
    "unknown": {"attention"},
    "failed": {"attention"},
}


def _disagreements(store: Store) -> list[tuple[int, str, str]]:
    """Enrollments whose state does not go with their message's."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(ENROLLMENTS.c.id, MESSAGES.c.status, ENROLLMENTS.c.status).join(
                MESSAGES, MESSAGES.c.enrollment_id == ENROLLMENTS.c.id
            )
        ).all()
    found = Counter(status for _, status, _ in rows)
    assert sum(found.values()) <= CUSTOMERS
    return [(eid, m, e) for eid, m, e in rows if e not in AGREE.get(m, {e})]
