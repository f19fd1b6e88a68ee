"""``reengage demo``: the whole product on a throw-away SQLite database, in one command.

The demo runs on its own clock, which ends at the real now: the invented history ends
``days`` ago, and the real daemon then runs over those days up to now. Nothing it leaves in
the database is dated after now, so ``reengage run --once``, ``reengage stats`` and the
dashboard go on from where it stopped.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email
import random
import re
import secrets
import socket
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiosmtplib
import httpx
import uvicorn
from aiosmtpd.controller import Controller
from rich.console import Console
from rich.table import Table

from reengage.compose import Workspace
from reengage.detect import Assessment, Population
from reengage.digest import DigestConfig, causes
from reengage.inbound import InboundHandler, serve
from reengage.ingest import ImportReport, Kind, import_file, import_items
from reengage.mailer import SmtpMailer
from reengage.scheduler import Service
from reengage.scoring import assess_all, fit_model
from reengage.seed import write_dataset
from reengage.stats import campaign_results
from reengage.store import Store
from reengage.web import WebConfig, create_app


@dataclass(frozen=True)
class DemoResult:
    """What the demo built, for the caller (and the tests) to inspect."""

    database_url: str
    reports: list[ImportReport]
    lapsed: list[Assessment]
    start: datetime  # where the invented history ends and the daemon starts
    end: datetime  # the real now the demo's clock runs up to
    first_mail: Path | None = None
    mailbox: list[Path] = field(default_factory=list)


def run_demo(
    console: Console,
    *,
    customers: int,
    now: datetime,
    workspace: Workspace,
    folder: Path | None = None,
    seed: int = 7,
    days: int = 21,
) -> DemoResult:
    """Invent a history ending ``days`` before ``now``, import it, show what the data says,
    then run the real daemon over those days up to ``now``, and show what it did."""
    workdir = folder or Path(tempfile.mkdtemp(prefix="reengage-demo-"))
    url = f"sqlite:///{workdir / 'demo.db'}"
    start = now - timedelta(days=days)
    console.rule("[bold]reengage demo")
    console.print(f"Database: [cyan]{workdir / 'demo.db'}[/] (throw-away SQLite)")
    console.print(
        f"The story starts {days} days ago, on {start:%a %d %b %Y}: the invented history ends "
        f"there, and the daemon then runs those {days} days up to now "
        f"({now:%a %d %b %H:%M} UTC).",
        markup=False,
    )
    data = write_dataset(workdir / "data", customers, seed=seed, now=start)
    store = Store.open(url, upgrade=True)
    try:
        reports = [
            import_file(store, kind, path, now=start, zone=ZoneInfo("UTC"))
            for kind, path in (
                (Kind.REPS, data.reps),
                (Kind.CUSTOMERS, data.customers),
                (Kind.ACTIVITIES, data.activities),
            )
        ]
        _show_imports(console, reports)
        overview = store.overview()
        console.print(
            f"\n{overview.customers} customers, {overview.reps} reps, "
            f"{overview.activities} activities from {overview.first_activity_at:%Y-%m-%d} "
            f"to {overview.last_activity_at:%Y-%m-%d}.\n"
        )
        fit = fit_model(store, start)
        if fit.kept_prior_because is None:
            store.save_lapse_model(fit.model, auc=fit.auc, auc_recency=fit.auc_recency, now=start)
            console.print(
                f"Learned the lapse score from this history ({fit.customers} customers as they "
                f"stood 90 days ago; {fit.did_not_return} did not order again): ROC AUC "
                f"{fit.auc:.3f} against {fit.auc_recency:.3f} for plain recency.\n"
            )
        else:
            console.print(f"Lapse score: the rhythm prior ({fit.kept_prior_because}).\n")
        population, assessments = assess_all(store, start)
        _show_sample(console, assessments, population)
        lapsed = sorted(
            (a for a in assessments if a.lapse_score >= 0.5 or a.declining),
            key=lambda a: a.priority,
            reverse=True,
        )
        _show_lapsed(console, lapsed, len(assessments))
        first_mail, mailbox = _run_the_daemon(console, store, workspace, workdir, start, now)
    finally:
        store.close()
    console.print(f"\nThe demo's files are in [cyan]{workdir}[/]; delete them when done.")
    return DemoResult(url, reports, lapsed, start, now, first_mail, mailbox)


def _show_imports(console: Console, reports: list[ImportReport]) -> None:
    table = Table(title="Imported through `reengage import`")
    for column in ("file", "rows", "new", "updated", "unchanged", "rejected"):
        table.add_column(column, justify="left" if column == "file" else "right")
    for r in reports:
        table.add_row(
            Path(r.file).name,
            str(r.rows),
            str(r.counts.inserted),
            str(r.counts.updated),
            str(r.counts.unchanged),
            str(len(r.rejected)),
        )
    console.print(table)


def _show_sample(console: Console, assessments: list[Assessment], population: Population) -> None:
    table = Table(
        title="What the data looks like: a few customers, their rhythm and where they stand "
        f"(typical gap across customers: {population.typical_gap_days:.0f} days)"
    )
    for column in ("customer", "segment", "orders", "usual gap", "silent", "ratio", "score"):
        table.add_column(column, justify="left" if column in ("customer", "segment") else "right")
    for a in assessments[:8]:
        table.add_row(
            _name(a),
            a.profile.segment or "",
            str(a.profile.order_count),
            f"{a.expected_gap_days:.0f} d",
            f"{a.days_silent:.0f} d",
            f"{a.lapse_ratio:.1f}×",
            f"{a.lapse_score:.2f}",
        )
    console.print(table)


def _show_lapsed(console: Console, lapsed: list[Assessment], total: int) -> None:
    table = Table(
        title=f"Look inactive, most worth winning back first ({len(lapsed)} of {total} "
        "customers have probably lapsed or are shrinking)"
    )
    table.add_column("customer")
    table.add_column("score", justify="right")
    table.add_column("value at risk / yr", justify="right")
    table.add_column("why")
    for a in lapsed[:12]:
        table.add_row(
            _name(a),
            f"{a.lapse_score:.2f}",
            f"{a.value_at_risk:,.0f}",
            a.why,
        )
    console.print(table)


class _Mailbox:
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


def _run_the_daemon(
    console: Console, store: Store, ws: Workspace, workdir: Path, start: datetime, end: datetime
) -> tuple[Path | None, list[Path]]:
    """Start a real SMTP server on loopback and run the real daemon from ``start`` to ``end``.

    Returns the first mail it sent to a customer (as ``first-mail.eml``) and every mail saved.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    box = _Mailbox()
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
    customers = _Customers(store, random.Random(7))
    reps = _Reps(random.Random(11))
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
                        mails = [m for m in box.messages[before:] if not _is_digest(m[1])]
                        await customers.respond(mails, inbound_port, clock["now"])
                        digests = [m[1] for m in box.messages[before:] if _is_digest(m[1])]
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
        if _is_digest(raw):
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
    first_mail = _show_first_mail(console, box.messages, workdir)
    _show_responses(console, store, start)
    calls = store.open_call_tasks()
    console.print(
        f"{len(calls)} call(s) from campaigns' call steps are waiting on the reps' lists. "
        f"Every mail is saved in {folder} (open the .eml files in a mail program).",
        markup=False,
    )
    _write_env(workdir, demo_ws, web_port, dashboard_token)
    _show_digests(console, digests, workdir)
    _show_calls(console, store)
    _show_results(console, store, end, demo_ws, dashboard_token, workdir)
    return first_mail, saved


def _show_first_mail(
    console: Console, received: list[tuple[str, bytes]], workdir: Path
) -> Path | None:
    """The first mail the daemon sent to a customer, exactly as the SMTP server got it."""
    raw = next((raw for _, raw in received if not _is_digest(raw)), None)
    if raw is None:
        console.print("(The daemon sent no mail to a customer on these days.)", markup=False)
        return None
    eml = workdir / "first-mail.eml"
    eml.write_bytes(raw)
    mail = email.message_from_bytes(raw, policy=policy.default)
    console.rule(f"The first mail the daemon sent to a customer, as {mail['To']} got it")
    for header in ("Date", "From", "To", "Reply-To", "Subject", "List-Unsubscribe-Post"):
        if mail[header] is not None:
            console.print(f"{header}: {mail[header]}", markup=False, highlight=False)
    console.print()
    text = mail.get_body(("plain",))
    console.print(str(text.get_content()) if text else "", markup=False, highlight=False)
    console.print(f"Written to {eml}", markup=False)
    return eml


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


def _show_results(
    console: Console,
    store: Store,
    now: datetime,
    ws: Workspace,
    dashboard_token: str,
    workdir: Path,
) -> None:
    """What ``reengage stats`` says, and where the dashboard is."""
    from reengage.cli.stats import show_results  # cli imports the demo: import it late

    console.rule("Results (reengage stats)")
    show_results(console, campaign_results(store, now))
    console.print(
        f"\nThe dashboard, the same as charts: {ws.base_url}/dashboard?token={dashboard_token}"
        f"\n(that address signs you in once; then it is {ws.base_url}/dashboard, and the "
        f"sign-in form there takes REENGAGE_DASHBOARD_TOKEN from {workdir / '.env'})"
        f"\nTo open it (and the outcome form): cd {workdir} && reengage web",
        markup=False,
        highlight=False,
    )


def _show_calls(console: Console, store: Store) -> None:
    report = causes(store, None)
    if not report.calls:
        return
    steps = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in report.next_steps.most_common())
    console.print(
        f"\nThe reps recorded {report.calls} calls through the outcome form (next steps: "
        f"{steps}); `reengage report causes` lists why customers stopped, systemic causes "
        "first, in their own words.",
        markup=False,
    )


def _is_digest(raw: bytes) -> bool:
    """A rep's morning digest (its Message-ID says so), not a mail to a customer."""
    return b"Message-ID: <digest-" in raw.split(b"\r\n\r\n", 1)[0]


def _show_digests(
    console: Console, digests: list[tuple[str, Path, EmailMessage]], workdir: Path
) -> None:
    """Where the reps' morning call lists landed, and one client's outcome form."""
    console.rule("The reps' mornings")
    if not digests:
        console.print("No rep had anyone worth a call on these days.", markup=False)
        return
    latest: dict[str, tuple[Path, EmailMessage]] = {}
    for recipient, path, mail in digests:
        latest[recipient] = (path, mail)
    table = Table(title=f"{len(digests)} morning digests (one per rep per day, at 07:00 local)")
    for column in ("rep", "latest digest", "saved as"):
        table.add_column(column)
    for recipient, (path, mail) in sorted(latest.items()):
        html = mail.get_body(("html",))
        page = path.with_suffix(".html")
        page.write_text(str(html.get_content()) if html else "", encoding="utf-8")
        table.add_row(recipient, str(mail["Subject"]), f"{path.name} (+ {page.name})")
    console.print(table)
    path, mail = latest[sorted(latest)[0]]
    text = mail.get_body(("plain",))
    body = str(text.get_content()) if text else ""
    first = re.search(r"^1\. .*?(?=^2\. |^\d+ more |^-- |\Z)", body, re.S | re.M)
    card = first.group(0) if first else body
    console.print(f"The first client on {mail['To']}'s latest list:\n", markup=False)
    console.print(card.strip(), markup=False, highlight=False)
    link = re.search(r"(http\S+/call/\S+)", card)
    if link:
        console.print(
            f"\nThe rep records the call at {link.group(1)}\n"
            f"To open that form: cd {workdir} && reengage web   (its .env points at the demo)",
            markup=False,
            highlight=False,
        )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


REPLIES = (
    "Thanks for the reminder. We paused orders over the summer; I will place one next week.",
    "We moved to another supplier because of delivery times. If those are better now, call me.",
    "Could your rep send me the new price list? Our volumes are going up.",
)


class _Customers:
    """Simulated recipients who do what real ones do, through the real doors: they load
    the open pixel and click links over HTTP, use one-click unsubscribe or the pause page,
    reply over SMTP to the per-message Reply-To, and sometimes order again."""

    def __init__(self, store: Store, rng: random.Random) -> None:
        self.store, self.rng = store, rng

    async def respond(self, mails: list[tuple[str, bytes]], smtp_port: int, now: datetime) -> None:
        async with httpx.AsyncClient(timeout=10, follow_redirects=False) as http:
            for recipient, raw in mails:
                await self._one(http, recipient, raw, smtp_port, now)

    async def _one(
        self, http: httpx.AsyncClient, recipient: str, raw: bytes, smtp_port: int, now: datetime
    ) -> None:
        mail = email.message_from_bytes(raw, policy=policy.default)
        body = mail.get_body(("html",))
        html = str(body.get_content()) if body is not None else ""
        roll = self.rng.random()
        if roll < 0.45:  # many mail apps load images: an open
            for pixel in re.findall(r'src="(http[^"]+/o/[^"]+)"', html)[:1]:
                await http.get(pixel)
        if roll < 0.15:  # and some click through to the shop
            for link in re.findall(r'href="(http[^"]+/c/[^"]+)"', html)[:1]:
                await http.get(link)
        if 0.15 <= roll < 0.18:  # the mail app's own "unsubscribe" button (RFC 8058)
            found = re.search(r"<(http[^>]+)>", str(mail["List-Unsubscribe"]))
            if found:
                await http.post(found.group(1), data={"List-Unsubscribe": "One-Click"})
        elif 0.18 <= roll < 0.20:  # "pause for 90 days" on the preferences page
            found = re.search(r"<(http[^>]+)>", str(mail["List-Unsubscribe"]))
            if found:
                await http.post(found.group(1), data={"action": "pause"})
        elif 0.20 <= roll < 0.26 and mail["Reply-To"]:  # a person writes back
            reply = EmailMessage()
            reply["From"] = recipient
            reply["To"] = str(mail["Reply-To"])
            reply["Subject"] = f"Re: {mail['Subject']}"
            reply["In-Reply-To"] = str(mail["Message-ID"])
            reply.set_content(
                f"{self.rng.choice(REPLIES)}\n\nOn {mail['Date']}, {mail['From']} wrote:\n"
                "> (the quoted mail, which reengage strips)\n"
            )
            address = str(mail["Reply-To"]).rsplit("<", 1)[-1].rstrip(">")
            await aiosmtplib.send(reply, hostname="127.0.0.1", port=smtp_port, recipients=[address])
        elif 0.26 <= roll < 0.33:  # the habit comes back: an order
            customer = self.store.responses.customer_external_id(recipient)
            if customer:
                item = {
                    "customer_id": customer,
                    "occurred_at": now.isoformat(),
                    "amount": round(self.rng.uniform(40, 400), 2),
                }
                import_items(self.store, Kind.ACTIVITIES, [item], now=now, zone=ZoneInfo("UTC"))


# What simulated reps hear on their calls: (reason, scope, their words, what would win
# them back, weight). Late deliveries are the business's problem in this story.
HEARD = (
    (
        "delivery",
        "systemic",
        "Three late deliveries in a row before a busy weekend.",
        "A delivery date you keep.",
        5,
    ),
    (
        "price",
        "specific",
        "Our budget was cut this quarter.",
        "A volume discount for six months.",
        3,
    ),
    (
        "habit",
        "specific",
        "Honestly, we just forgot to reorder.",
        "A reminder before we run out.",
        3,
    ),
    (
        "competitor",
        "specific",
        "A local supplier came by with samples.",
        "Matching their trial price.",
        2,
    ),
    (
        "service",
        "systemic",
        "Nobody answered the phone when an order was wrong.",
        "A named contact.",
        2,
    ),
)


class _Reps:
    """Simulated reps: each morning they call the top two clients on their digest and
    record what they heard through the real outcome form (an HTTP POST to its link)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    async def call(self, digests: list[bytes], now: datetime) -> None:
        async with httpx.AsyncClient(timeout=10, follow_redirects=False) as http:
            for raw in digests:
                mail = email.message_from_bytes(raw, policy=policy.default)
                body = mail.get_body(("plain",))
                text = str(body.get_content()) if body is not None else ""
                for link in re.findall(r"(http\S+/call/\S+)", text)[:2]:
                    answer = await http.post(link, data=self._outcome(now))
                    answer.raise_for_status()  # a refused form is a bug, never hidden

    def _outcome(self, now: datetime) -> dict[str, str]:
        roll = self.rng.random()
        if roll < 0.15:
            again = (now + timedelta(days=3)).date().isoformat()
            return {"reached": "nobody", "worth": "yes", "next_step": "call_again",
                    "call_again_on": again}  # fmt: skip
        reason, scope, words, win_back, _ = self.rng.choices(HEARD, [h[4] for h in HEARD])[0]
        step = "follow_up" if scope == "systemic" else self.rng.choice(["rep_offer", "nothing"])
        if roll > 0.97:
            step = "do_not_contact"
        return {
            "reached": "decision_maker" if roll < 0.7 else "someone_else",
            "reason": reason,
            "reason_text": words,
            "scope": scope,
            "win_back": win_back,
            "worth": "yes" if roll < 0.85 else "later",
            "next_step": step,
        }


def _show_responses(console: Console, store: Store, since: datetime) -> None:
    rows = store.responses.recent(since - timedelta(days=1), limit=100_000)
    counts = Counter(r.kind for r in rows)
    table = Table(title="What the customers did (recorded through the web app and inbound SMTP)")
    table.add_column("response")
    table.add_column("count", justify="right")
    for kind in (
        "open",
        "click",
        "reply",
        "auto_reply",
        "unsubscribe",
        "pause",
        "conversion",
        "bounce",
    ):
        if counts.get(kind):
            table.add_row(kind, str(counts[kind]))
    console.print(table)
    value = sum(r.value or 0 for r in rows if r.kind == "conversion")
    if counts.get("conversion"):
        console.print(
            f"{counts['conversion']} orders came in within 30 days of a mail, worth "
            f"{value:,.2f}: each is credited to its campaign and the last mail before it.",
            markup=False,
        )
    for reply in store.responses.replies()[:3]:
        console.print(f"  reply from {reply['sender']}: {reply['text'][:90]}", markup=False)


def _name(a: Assessment) -> str:
    return f"{a.profile.external_id} {a.profile.name}".strip()
