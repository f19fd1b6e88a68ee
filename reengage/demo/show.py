"""Everything the demo prints: what was imported, what the data says, the mails as they
arrived, what customers and reps did, and the results as ``reengage stats`` shows them."""

from __future__ import annotations

import email
import re
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path

from rich.console import Console
from rich.table import Table

from reengage.compose import Workspace
from reengage.demo.actors import is_digest
from reengage.detect import Assessment, Population
from reengage.digest import causes
from reengage.ingest import ImportReport
from reengage.stats import Results, campaign_results
from reengage.store import Store


def show_imports(console: Console, reports: list[ImportReport]) -> None:
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


def show_sample(console: Console, assessments: list[Assessment], population: Population) -> None:
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


def show_lapsed(console: Console, lapsed: list[Assessment], total: int) -> None:
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


def show_first_mail(
    console: Console, received: list[tuple[str, bytes]], workdir: Path
) -> Path | None:
    """The first mail the daemon sent to a customer, exactly as the SMTP server got it."""
    raw = next((raw for _, raw in received if not is_digest(raw)), None)
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


def show_responses(console: Console, store: Store, since: datetime) -> None:
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


def show_digests(
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
    # The card, not the compact list above it: a card's title line is followed by a blank.
    first = re.search(
        r"^1\. [^\n]*\n\n.*?(?=^2\. [^\n]*\n\n|^\d+ more |^-- |\Z)", body, re.S | re.M
    )
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


def show_calls(console: Console, store: Store) -> None:
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


def show_results(
    console: Console,
    store: Store,
    now: datetime,
    ws: Workspace,
    dashboard_token: str,
    workdir: Path,
    stats_tables: Callable[[Console, Results], None],
) -> None:
    """What ``reengage stats`` says (printed by ``stats_tables``), and where the dashboard is."""
    console.rule("Results (reengage stats)")
    stats_tables(console, campaign_results(store, now))
    console.print(
        f"\nThe dashboard, the same as charts: {ws.base_url}/dashboard?token={dashboard_token}"
        f"\n(that address signs you in once; then it is {ws.base_url}/dashboard, and the "
        f"sign-in form there takes REENGAGE_DASHBOARD_TOKEN from {workdir / '.env'})"
        f"\nTo open it (and the outcome form): cd {workdir} && reengage web",
        markup=False,
        highlight=False,
    )


def _name(a: Assessment) -> str:
    return f"{a.profile.external_id} {a.profile.name}".strip()
