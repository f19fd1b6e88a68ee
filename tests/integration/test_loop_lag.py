"""A real daemon never holds its event loop (web app, inbound mail, the sends on the wire)
for more than 50 ms while it detects, enrolls and sends (issues 18 and 19).

`reengage run` starts on a store of lapsed customers; its start-up detection pass enrolls
them all and its dispatcher sends every first mail to a mail server on loopback. On
PostgreSQL the database sits behind a proxy that delays every chunk 40 ms each way, so each
query of the pass takes 80 ms or more: one made on the loop would hold it that long. The
daemon measures its own loop (:mod:`reengage.loopwatch`) and the test reads the worst
lateness from its ``/metrics``, as an operator's alert would.

Marked ``alone``: `.ci/test` runs these after the parallel suite, one at a time, so what is
measured is the daemon and not a neighbour test's burst of work on the same two cores.
"""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.integration.latency_proxy import latency_proxy
from tests.integration.smtp_sink import free_port, running_sink
from tests.integration.test_worker import Clock, env, prepare, start_worker, wait_for, workers

__all__ = ["workers"]  # the fixture, imported for the test below

pytestmark = pytest.mark.alone
BOUND_S = 0.050
DELAY_S = 0.040  # each way: a query is 80 ms or more


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert found is not None, f"{name} is not on /metrics"
    return float(found.group(1))


def test_the_daemon_never_holds_its_loop_while_it_detects_and_sends(
    database_url: str, tmp_path: Path, workers: list[subprocess.Popen[Any]]
) -> None:
    slow = database_url.startswith("postgresql")
    customers = 60 if slow else 400
    store = prepare(database_url, tmp_path, customers)
    ops = free_port()
    with running_sink() as (sink, port), contextlib.ExitStack() as stack:
        daemon_url = database_url
        if slow:
            url = make_url(database_url)
            far = stack.enter_context(latency_proxy(url.host, url.port or 5432, DELAY_S))
            daemon_url = url.set(port=far).render_as_string(hide_password=False)
        settings = env(
            daemon_url,
            tmp_path,
            port,
            REENGAGE_OPS_PORT=str(ops),
            REENGAGE_SEND_BATCH_SIZE="20",
            REENGAGE_SMTP_CONNECTIONS="4",
        )
        worker = start_worker(workers, tmp_path, settings, Clock(), output=True)

        def scraped() -> str:
            try:
                return httpx.get(f"http://127.0.0.1:{ops}/metrics", timeout=2).text
            except httpx.TransportError:
                assert worker.poll() is None, worker.communicate()
                return ""

        wait_for(lambda: len(sink.received) >= customers, timeout=120)
        time.sleep(1)  # the last results recorded, through the slow database too
        text = scraped()
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=60)
    assert worker.returncode == 0, stderr
    assert len(sink.received) == customers, "every customer mailed once"
    assert metric(text, "reengage_event_loop_lag_seconds_count") > 50, "the watcher ran"
    worst = metric(text, "reengage_event_loop_lag_max_seconds")
    assert worst < BOUND_S, f"the loop was held for {worst * 1000:.0f} ms\n{stderr}"
    store.close()
