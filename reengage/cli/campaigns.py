"""Commands for campaign authors: validate, preview, simulate."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from reengage.cli.app import (
    _settings,
    _store,
    _workspace,
    app,
    err,
    out,
)
from reengage.errors import DatabaseUnreachable, InputError
from reengage.timeutil import utcnow

if TYPE_CHECKING:
    from reengage import compose

# -- campaigns ---------------------------------------------------------------------------------


@app.command()
def validate(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Campaign files or folders (default: campaigns/).")
    ] = None,
    spam: Annotated[
        bool,
        typer.Option(
            "--spam",
            help="Also score every mail step in every locale with SpamAssassin (offline) and "
            "say which rules matched and what to change.",
        ),
    ] = False,
    spam_threshold: Annotated[
        float,
        typer.Option(
            min=-100.0,
            max=100.0,
            help="With --spam: exit 1 when a step scores more than this (SpamAssassin's own "
            "cut is 5.0).",
        ),
    ] = 1.0,
) -> None:
    """Check campaigns and their templates completely; exit 1 on any problem (warnings,
    such as a sequence that changes language mid-way, are shown and do not fail)."""
    from reengage import authoring
    from reengage.digest import DigestConfig
    from reengage.digest.mail import check_templates

    ws = _workspace()
    targets = paths or [ws.campaigns_dir]
    for target in targets:
        if not target.exists():
            raise InputError(f"{target}: no such file or folder")
    result = authoring.validate(ws, targets, root=Path.cwd())
    settings = _settings()
    # A step key running enrollments wait at and the file lost ends them: say so first.
    whole = [t.resolve() for t in targets] == [ws.campaigns_dir.resolve()]  # what runs
    try:
        running, unchecked = authoring.running_step_warnings(
            result, settings.database_url, _store, ws.campaigns_dir if whole else None
        )
        unreachable = None
    except DatabaseUnreachable as exc:  # the database the settings name: a mistake to fix
        running, unchecked, unreachable = [], None, str(exc)
    result.problems = sorted([*result.problems, *running], key=lambda p: (p.file, p.line))
    for problem in result.problems:
        err.print(str(problem), markup=False, highlight=False)
    if unreachable is not None:
        err.print(
            f"error: {unreachable} (running enrollments were not checked against these steps)",
            markup=False,
            highlight=False,
        )
    for campaign_id in sorted(result.campaigns):
        campaign = result.campaigns[campaign_id]
        kinds = ", ".join(s.key + (" (call)" if s.is_call else "") for s in campaign.steps)
        state = "" if campaign.enabled else " [disabled]"
        out.print(
            f"ok  {result.labels[campaign_id]}: {campaign_id}{state} — {kinds}",
            markup=False,
            highlight=False,
        )
    if unchecked is not None:
        out.print(
            f"note: running enrollments not checked against these steps ({unchecked}): a "
            "step removed or renamed ends the sequences waiting at it; run `reengage validate` "
            "with REENGAGE_DATABASE_URL set to the daemon's database to see how many",
            markup=False,
            highlight=False,
        )
    # The reps' digest is rendered from the same templates folder: check it too.
    digest_problems = check_templates(ws, DigestConfig.from_settings(settings), utcnow())
    for found in digest_problems:
        err.print(str(found), markup=False, highlight=False)
    if not digest_problems:
        out.print("ok  the reps' digest templates", markup=False, highlight=False)
    spam_result = _spam_check(ws, result.campaigns, spam_threshold) if spam else 0
    too_spammy = spam_result or 0
    errors = [p for p in result.problems if p.is_error]
    warnings = len(result.problems) - len(errors)
    broken = len({p.file for p in errors} | {p.file for p in digest_problems})
    out.print(
        f"{len(result.campaigns)} campaign(s) valid, {len(errors) + len(digest_problems)} "
        f"problem(s) in {broken} file(s)"
        + (f", {warnings} warning(s)" if warnings else "")
        + (f", {too_spammy} step(s) over the spam threshold" if too_spammy else "")
        + (", the spam check failed" if spam_result is None else "")
        + (", the database cannot be reached" if unreachable is not None else ""),
        markup=False,
    )
    if errors or digest_problems or too_spammy or spam_result is None or unreachable:
        raise typer.Exit(1)


def _spam_check(ws: compose.Workspace, campaigns: dict[str, Any], threshold: float) -> int | None:
    """Print every step's score in every locale, the rules that matched and what to
    change; the number of steps over ``threshold`` (None: SpamAssassin failed). Without
    SpamAssassin, say how to install it and count nothing: the other checks still count."""
    from reengage import spamassassin, spamcheck

    program = spamassassin.program()
    if program is None:
        err.print(
            f"spam check skipped: SpamAssassin is not installed; {spamassassin.HOW_TO_INSTALL}",
            markup=False,
            highlight=False,
        )
        return 0
    try:
        scores = spamcheck.check(ws, campaigns, program=program)
    except spamassassin.SpamAssassinFailed as exc:
        err.print(f"spam check failed: {exc}", markup=False, highlight=False)
        return None
    over = 0
    for found in scores:
        too_high = found.score.points > threshold
        over += too_high
        said = f"{found.score.points:.1f} points, {found.template}"
        if found.score.counted():
            said += f"; the worst for {found.who}"
        out.print(
            f"{'OVER' if too_high else 'spam'}  {found.where}: {said}",
            markup=False,
            highlight=False,
        )
        for hit in found.score.counted():
            out.print(
                f"        {hit.points:+.1f} {hit.rule}: {hit.description}\n"
                f"             change: {spamcheck.advice(hit.rule)}",
                markup=False,
                highlight=False,
            )
            if hit.rule.startswith("HTML_OBFUSCATE"):
                for spot in found.spots():
                    out.print(f"             a tag between {spot}", markup=False, highlight=False)
    out.print(
        f"spam: {len(scores)} step(s) and locale(s) scored by {spamassassin.version(program)} "
        f"(offline, no Bayes); {over} over {threshold:g}",
        markup=False,
        highlight=False,
    )
    return over


def _load_one(ws: compose.Workspace, campaign_id: str) -> Any:
    from reengage import authoring

    result = authoring.validate(ws, [ws.campaigns_dir], root=Path.cwd())
    campaign = result.campaigns.get(campaign_id)
    if campaign is None:
        mine = [str(p) for p in result.problems if p.is_error]
        hint = (
            ("; it has problems:\n" + "\n".join(mine))
            if mine
            else (f"; campaigns: {', '.join(sorted(result.campaigns)) or 'none'}")
        )
        raise InputError(f"no valid campaign {campaign_id!r} in {ws.campaigns_dir}{hint}")
    return campaign


@app.command()
def preview(
    campaign_id: Annotated[str, typer.Argument(metavar="CAMPAIGN", help="campaign id")],
    step: Annotated[str, typer.Argument(help="step key")],
    customer: Annotated[str, typer.Option(help="customer id to render for")],
    out_dir: Annotated[Path, typer.Option("--out", help="folder for the .eml and .html")] = Path(
        "preview"
    ),
) -> None:
    """Render the exact mail a customer would get: writes .eml and .html, prints the text."""
    from reengage import authoring

    ws = _workspace()
    campaign = _load_one(ws, campaign_id)
    store = _store()
    try:
        shown = authoring.preview(
            ws, store, campaign, step, customer, now=utcnow(), out_dir=out_dir
        )
    except OSError as exc:
        raise InputError(f"--out {out_dir}: cannot write the preview there ({exc})") from None
    finally:
        store.close()
    for name, value in shown.message.items():
        out.print(f"{name}: {value}", markup=False, highlight=False)
    out.print("", markup=False)
    out.print(shown.rendered.text, markup=False, highlight=False)
    out.print(
        f"wrote {shown.eml} (open in a mail program) and {shown.html} (open in a browser)",
        markup=False,
    )


@app.command()
def simulate(
    days: Annotated[int, typer.Option(min=1, max=730, help="How many days to replay.")] = 90,
    campaign_id: Annotated[
        str | None, typer.Option("--campaign", help="Only this campaign's part of the plan.")
    ] = None,
) -> None:
    """Replay campaigns from now, day by day: who enters, which mail goes when, who exits.

    Nothing is sent or written. It starts from the enrollments already running, applies
    send windows, the frequency cap and step conditions, renders a sample of each mail, and
    says what it assumes. Days are calendar days in the business time zone.
    """
    from reengage import authoring
    from reengage import simulate as simulation
    from reengage.i18n import days as i18n_days

    ws = _workspace()
    result = authoring.validate(ws, [ws.campaigns_dir], root=Path.cwd())
    for problem in result.problems:  # a warning still loads; an error leaves its file out
        shown = problem if problem.severity == "warning" else f"skipped: {problem}"
        err.print(str(shown), markup=False, highlight=False)
    if campaign_id is not None and campaign_id not in result.campaigns:
        raise InputError(
            f"no valid campaign {campaign_id!r}; campaigns: "
            f"{', '.join(sorted(result.campaigns)) or 'none'}"
        )
    store = _store()
    try:
        plan = simulation.simulate(
            ws,
            store,
            list(result.campaigns.values()),
            now=utcnow(),
            days=days,
            only=campaign_id,
            incomplete=any(p.is_error for p in result.problems),
            working_days=_settings().working_days(),
        )
    finally:
        store.close()
    zone = plan.zone.key
    start, end = plan.start.astimezone(plan.zone), plan.end.astimezone(plan.zone)
    table = Table(
        title=f"Plan for the next {i18n_days(days)} (nothing is sent): {start:%a %Y-%m-%d %H:%M} "
        f"to {end:%a %Y-%m-%d %H:%M} {zone}"
    )
    for column in (f"date ({zone})", "enter", "held out", "mails", "calls", "exit"):
        numbers = column in ("enter", "held out", "calls")
        table.add_column(column, justify="right" if numbers else "left")
    for day in plan.days:
        if day.quiet:
            continue
        table.add_row(
            f"{day.day:%a %Y-%m-%d}",
            str(sum(day.entered.values())),
            str(sum(day.held_out.values())),
            ", ".join(f"{k} ×{v}" for k, v in sorted(day.mails.items())) or "—",
            str(sum(day.calls.values())),
            ", ".join(f"{k} ×{v}" for k, v in sorted(day.exits.items())) or "—",
        )
    out.print(table)

    def say(text: str) -> None:
        out.print(text, markup=False, highlight=False)

    def counts(counter: dict[str, int]) -> str:
        return ", ".join(f"{k} ×{v}" for k, v in sorted(counter.items()))

    if plan.running:
        say(f"Already running: {counts(plan.running)}; their remaining steps are in the plan.")
    if plan.waiting:
        say(
            f"Waiting, nothing more sent to them: {counts(plan.waiting)} — a send of unknown "
            "outcome or a mail that failed waits for a person (reengage sends list); a "
            "campaign whose file does not load waits for the fix (reengage validate)."
        )
    for campaign, examples in plan.examples.items():
        say(f"{campaign}, for example:")
        for line in examples:
            say(f"  {line}")
    if plan.calls_after:
        say(
            f"Calls on a rep's list only after the plan's last day (a day off): "
            f"{counts(plan.calls_after)}."
        )
    for reason, count in plan.skipped.most_common():
        say(f"not entered: {reason} ×{count}")
    for reason, count in plan.not_sent.most_common():
        say(f"not sent: {reason} ×{count}")
    if plan.render_failures:
        say(
            f"warning: {len(plan.render_failures)} of {plan.rendered} sample mails would fail "
            "to render; fix the templates before these go out (reengage preview shows one):"
        )
        for line in plan.render_failures[:20]:
            say(f"  {line}")
        if len(plan.render_failures) > 20:
            say(f"  … and {len(plan.render_failures) - 20} more")
    elif plan.rendered:
        say(f"{plan.rendered} sample mails rendered without a problem.")
    say("This plan assumes:")
    for line in plan.assumptions:
        say(f"  - {line}")
