"""A mail really sent, and the web app that answers its links: shared by the link tests.

One customer is imported from CSV, the daemon sends the first mail of a campaign to a
real SMTP server (aiosmtpd on loopback), and the web app is served by uvicorn on loopback
for the test to follow the links in that mail.
"""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from reengage.scheduler import Service
from reengage.store import Store
from reengage.web import WebConfig, create_app
from tests.integration.smtp_sink import Sink, running_sink
from tests.integration.test_sending import run_days, setup
from tests.integration.web_server import local, running_app

SECRET = "s" * 40
EMAIL = "ana@example.com"


@dataclass
class World:
    store: Store
    service: Service
    sink: Sink
    base: str
    clock: dict[str, Any]

    def mail(self, index: int = 0) -> Any:
        return self.sink.received[index]["message"]

    def html(self, index: int = 0) -> str:
        return str(self.mail(index).get_body(("html",)).get_content())

    def kinds(self) -> list[str]:
        since = self.clock["now"] - timedelta(days=3650)
        return [r.kind for r in self.store.responses.recent(since)]

    def days(self, n: int) -> None:
        """Run the daemon on for ``n`` simulated days."""
        in_own_thread(run_days, self.service, n)


def in_own_thread(job: Any, *args: Any) -> None:
    """Run ``job`` in a fresh thread. Playwright's sync API marks its event loop as running
    in the test's thread between calls, and asyncio.run (in run_days) refuses to start
    there; a thread of its own has no running loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(job, *args).result()


def customers_csv(first_name: str) -> str:
    """The one customer, written by the csv module so any name is quoted as CSV requires."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerows([["customer_id", "email", "first_name"], ["c1", EMAIL, first_name]])
    return out.getvalue()


@contextmanager
def mail_world(store: Store, tmp_path: Path, first_name: str = "Ana") -> Iterator[World]:
    """The first mail sent to one customer, and the app serving its links on loopback."""
    with running_sink() as (sink, port):
        service = setup(store, tmp_path, port, customers_csv(first_name))
        clock = service.clock_state  # type: ignore[attr-defined]
        in_own_thread(run_days, service, 3)
        assert len(sink.received) == 1
        config = WebConfig(
            secret=SECRET,
            company_name="Acme",
            company_address="1 Market Street, Springfield",
            clock=lambda: clock["now"],
            policy=service.response_policy(),
        )
        with running_app(create_app(store, config)) as base:
            yield World(store, service, sink, base, clock)


def unsubscribe_url(w: World) -> str:
    """The https address in the mail's List-Unsubscribe header, pointed at the test app."""
    header = str(w.mail()["List-Unsubscribe"])
    return local(re.search(r"<(https?://[^>]+)>", header).group(1), w.base)  # type: ignore[union-attr]


def pause_url(w: World) -> str:
    """The "pause" link in the mail's footer, pointed at the test app."""
    found = re.search(r'href="([^"]+/u/[^"]+\?pause=[^"]+)"', w.html())
    assert found, "the footer offers a pause link"
    return local(html.unescape(found.group(1)), w.base)
