"""The real daemon over the demo's days: a real SMTP server on loopback receives every mail,
the web app and the inbound listener run beside it, and the simulated customers and reps
(``actors.py``) answer through them after each pass."""

from __future__ import annotations

import asyncio
import dataclasses
import email
import random
import secrets
import socket
from collections.abc import Callable
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import uvicorn
from aiosmtpd.controller import Controller
from rich.console import Console
from rich.table import Table

from reengage.compose import Workspace
from reengage.demo.actors import Customers, Reps, is_digest
from reengage.demo.show import (
    show_calls,
    show_digests,
    show_first_mail,
    show_responses,
    show_results,
)
from reengage.digest import DigestConfig
from reengage.inbound import InboundHandler, serve
from reengage.mailer import SmtpMailer
from reengage.scheduler import Service
from reengage.stats import Results
from reengage.store import Store
from reengage.web import WebConfig, create_app


class Mailbox:
    """An aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.rcpt_tos[0], bytes(envelope.content)))
        return "250 OK"


# The daemon ticks every EVERY of demo time; its last pass is at least SETTLE before the end,
# so every lease and lock a pass takes (minutes) has run out by the time the demo ends.
EVERY = timedelta(hours=6)
SETTLE = timedelta(hours=1)


def run_the_daemon(
    console: Console,
    store: Store,
    ws: Workspace,
    workdir: Path,
    start: datetime,
    end: datetime,
    stats_tables: Callable[[Console, Results], None],
) -> tuple[Path | None, list[Path]]:
    """Start a real SMTP server on loopback and run the real daemon from ``start`` to ``end``.

    Returns the first mail it sent to a customer (as ``first-mail.eml``) and every mail saved.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    box = Mailbox()
    server = Controller(box, hostname="127.0.0.1", port=port)
    server.start()
    web_port, inbound_port = _free_port(), _free_port()
    demo_ws = dataclasses.replace(
        ws,
        secret=secrets.token_urlsafe(32),
        base_url=f"http://127.0.0.1:{web_port}",
        inbound_domain="in.acme.example",
    )
    clock = {"now": start}
    customers = Customers(store, random.Random(7))
    reps = Reps(random.Random(11))
    dashboard_token = secrets.token_urlsafe(24)
    try:
        service = Service(
            store,
            SmtpMailer("127.0.0.1", port),
            demo_ws,
            clock=lambda: clock["now"],
            digest=DigestConfig(sender=f"{ws.company_name} call list <calls@acme.example>"),
        )

        async def simulate() -> list[tuple[datetime, int]]:
            web = uvicorn.Server(
                uvicorn.Config(
                    create_app(
                        store,
                        WebConfig(
                            secret=demo_ws.secret,
                            base_url=demo_ws.base_url,
                            company_name=demo_ws.company_name,
                            company_address=demo_ws.company_address,
                            clock=lambda: clock["now"],
                            policy=service.response_policy(),
                            campaigns=lambda: service.library.campaigns,
                            dashboard_token=dashboard_token,
                        ),
                    ),
                    host="127.0.0.1",
                    port=web_port,
                    log_level="warning",
                    lifespan="off",
                )
            )
            serving = asyncio.ensure_future(web.serve())
            handler = InboundHandler(
                store,
                lambda: clock["now"],
                service.response_policy(),
                unsubscribe_secrets=[demo_ws.secret],
            )
            inbound = await serve(handler, "127.0.0.1", inbound_port)
            for _ in range(1000):  # uvicorn says when it listens only through this flag
                if web.started:
                    break
                await asyncio.sleep(0.01)
            timeline = []
            try:
                while clock["now"] + SETTLE <= end:
                    before = len(box.messages)
                    await service.run_once()
                    if len(box.messages) > before:
                        timeline.append((clock["now"], len(box.messages) - before))
                        mails = [m for m in box.messages[before:] if not is_digest(m[1])]
                        await customers.respond(mails, inbound_port, clock["now"])
                        digests = [m[1] for m in box.messages[before:] if is_digest(m[1])]
                        await reps.call(digests, clock["now"])
                    clock["now"] += EVERY
            finally:
                await service.mailer.close()
                inbound.close()
                web.should_exit = True
                await serving
            clock["now"] = end
            return timeline

        days = round((end - start) / timedelta(days=1))
        console.rule(
            f"The daemon, {days} days up to now, sending to a real SMTP server on 127.0.0.1:{port}"
        )
        timeline = asyncio.run(simulate())
    finally:
        server.stop()
    folder = workdir / "mailbox"
    folder.mkdir(exist_ok=True)
    saved = []
    table = Table(title=f"{len(box.messages)} mails arrived")
    for column in ("#", "to", "subject"):
        table.add_column(column)
    digests: list[tuple[str, Path, EmailMessage]] = []
    for number, (recipient, raw) in enumerate(box.messages, 1):
        if is_digest(raw):
            mail = email.message_from_bytes(raw, policy=policy.default)
            path = folder / f"{number:04d}-digest.eml"
            digests.append((recipient, path, mail))
        else:
            path = folder / f"{number:04d}.eml"
        path.write_bytes(raw)
        saved.append(path)
        if number <= 12:
            subject = str(email.message_from_bytes(raw, policy=policy.default)["Subject"])
            table.add_row(str(number), recipient, subject)
    console.print(table)
    for when, count in timeline[:8]:
        console.print(f"  {when:%a %d %b %H:%M} UTC: {count} sent", markup=False)
    first_mail = show_first_mail(console, box.messages, workdir)
    show_responses(console, store, start)
    calls = store.calls.open_calls()
    console.print(
        f"{len(calls)} call(s) from campaigns' call steps are waiting on the reps' lists. "
        f"Every mail is saved in {folder} (open the .eml files in a mail program).",
        markup=False,
    )
    _write_env(workdir, demo_ws, web_port, dashboard_token)
    show_digests(console, digests, workdir)
    show_calls(console, store)
    show_results(console, store, end, demo_ws, dashboard_token, workdir, stats_tables)
    return first_mail, saved


def _write_env(workdir: Path, ws: Workspace, web_port: int, dashboard_token: str) -> None:
    """A .env in the demo's folder: reengage run / stats / web there use the demo's data."""
    (workdir / ".env").write_text(
        f"REENGAGE_DATABASE_URL=sqlite:///{workdir / 'demo.db'}\n"
        f"REENGAGE_SECRET_KEY={ws.secret}\n"
        f"REENGAGE_DASHBOARD_TOKEN={dashboard_token}\n"
        f"REENGAGE_HTTP_PORT={web_port}\n"
        f"REENGAGE_BASE_URL={ws.base_url}\n"
        f"REENGAGE_CAMPAIGNS_DIR={ws.campaigns_dir.resolve()}\n"
        f"REENGAGE_TEMPLATES_DIR={ws.renderer.templates_dir.resolve()}\n"
        # As the demo's daemon ran: a preview there shows the Reply-To the mail really had.
        f"REENGAGE_INBOUND_DOMAIN={ws.inbound_domain or ''}\n"
        f"REENGAGE_TIMEZONE={ws.zone.key}\n"
        "# The demo's mail server lived only while the demo ran: point these at yours.\n"
        "# REENGAGE_SMTP_HOST=127.0.0.1\n# REENGAGE_SMTP_PORT=25\n",
        encoding="utf-8",
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
