"""``reengage demo``: the whole product on a throw-away SQLite database, in one command."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table

from reengage.authoring import Workspace, entry_day, render_for, validate
from reengage.detect import Assessment, Population
from reengage.ingest import ImportReport, Kind, import_file
from reengage.scoring import assess_all, current_model, fit_model
from reengage.seed import write_dataset
from reengage.store import Store


@dataclass(frozen=True)
class DemoResult:
    """What the demo built, for the caller (and the tests) to inspect."""

    database_url: str
    reports: list[ImportReport]
    lapsed: list[Assessment]
    first_mail: Path | None = None


def run_demo(
    console: Console,
    *,
    customers: int,
    now: datetime,
    workspace: Workspace,
    folder: Path | None = None,
    seed: int = 7,
) -> DemoResult:
    """Seed a fresh database, import it, and show what the data says."""
    workdir = folder or Path(tempfile.mkdtemp(prefix="reengage-demo-"))
    url = f"sqlite:///{workdir / 'demo.db'}"
    console.rule("[bold]reengage demo")
    console.print(f"Database: [cyan]{workdir / 'demo.db'}[/] (throw-away SQLite)")
    data = write_dataset(workdir / "data", customers, seed=seed, now=now)
    store = Store.open(url, upgrade=True)
    try:
        reports = [
            import_file(store, kind, path, now=now, zone=ZoneInfo("UTC"))
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
        fit = fit_model(store, now)
        if fit.kept_prior_because is None:
            store.save_lapse_model(fit.model, auc=fit.auc, auc_recency=fit.auc_recency, now=now)
            console.print(
                f"Learned the lapse score from this history ({fit.customers} customers as they "
                f"stood 90 days ago; {fit.did_not_return} did not order again): ROC AUC "
                f"{fit.auc:.3f} against {fit.auc_recency:.3f} for plain recency.\n"
            )
        else:
            console.print(f"Lapse score: the rhythm prior ({fit.kept_prior_because}).\n")
        population, assessments = assess_all(store, now)
        _show_sample(console, assessments, population)
        lapsed = sorted(
            (a for a in assessments if a.lapse_score >= 0.5 or a.declining),
            key=lambda a: a.priority,
            reverse=True,
        )
        _show_lapsed(console, lapsed, len(assessments))
        first_mail = _show_first_mail(console, store, workspace, lapsed, workdir, now)
    finally:
        store.close()
    console.print(f"\nThe demo's files are in [cyan]{workdir}[/]; delete them when done.")
    return DemoResult(url, reports, lapsed, first_mail)


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


def _show_first_mail(
    console: Console,
    store: Store,
    ws: Workspace,
    lapsed: list[Assessment],
    workdir: Path,
    now: datetime,
) -> Path | None:
    """Render the first mail the most valuable lapsed customer would get."""
    loaded = validate(ws, [ws.campaigns_dir])
    for problem in loaded.problems:
        console.print(f"campaign problem: {problem}", markup=False, highlight=False)
    campaigns = sorted(
        (c for c in loaded.campaigns.values() if c.enabled and c.audience),
        key=lambda c: -c.priority,
    )
    contactable = store.contactable(a.profile.customer_id for a in lapsed)
    model = current_model(store)
    for a in lapsed:
        info = contactable.get(a.profile.customer_id)
        if info is None:
            continue
        for campaign in campaigns:
            if entry_day(campaign, a, info, 1, model) != 0.0:
                continue
            step = next(s for s in campaign.steps if not s.is_call)
            found = store.get_customer(a.customer_id)
            if found is None:
                continue
            message, rendered = render_for(
                ws,
                campaign,
                step.key,
                found[0],
                a,
                message_key="demo",
                now=now,
                rep_name=store.rep_name(found[0].rep_external_id),
            )
            eml = workdir / f"first-mail.{campaign.id}.eml"
            eml.write_bytes(message.as_bytes())
            (workdir / f"first-mail.{campaign.id}.html").write_text(rendered.html, "utf-8")
            console.rule(f"The first mail {a.customer_id} would get ({campaign.name})")
            for header in ("From", "To", "Subject", "List-Unsubscribe-Post"):
                console.print(f"{header}: {message[header]}", markup=False, highlight=False)
            console.print()
            console.print(rendered.text, markup=False, highlight=False)
            console.print(f"Written to {eml} and {eml.with_suffix('.html')}", markup=False)
            return eml
    console.print(f"(No campaign in {ws.campaigns_dir} matches a lapsed customer today.)")
    return None


def _name(a: Assessment) -> str:
    return f"{a.profile.external_id} {a.profile.name}".strip()
