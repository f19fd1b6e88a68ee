"""Commands for sales reps: today's calls, recording an outcome, and the digest."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.cells import cell_len
from rich.table import Table

from reengage import authoring
from reengage.cli.app import _settings, _store, _workspace, out
from reengage.cli.asking import ask_call_again_day, ask_scope, choose
from reengage.cli.lazy import commands_typer
from reengage.digest import (
    CallContext,
    CallList,
    CallReport,
    DigestConfig,
    OutcomeError,
    build_lists,
    local_day,
    preview_digest,
    record_outcome,
    send_digests,
)
from reengage.digest.calllist import rep_zone
from reengage.errors import InputError
from reengage.i18n import texts
from reengage.models import CauseScope, NextStep, Reached, Rep, StopReason, WorthIt
from reengage.store import Store
from reengage.timeutil import utcnow
from reengage.workdays import WorkingDays

# The groups are declared in reengage/cli/__init__.py and read these when first used.
calls_app = commands_typer()
digest_app = commands_typer()


def _day(text: str | None, option: str = "--date") -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a date like 2026-11-30", param_hint=option
        ) from None


def _reps(store: Store, rep: str | None) -> list[Rep]:
    if rep is not None and not rep.strip():  # `--rep "$UNSET"`: not "every rep"
        raise InputError(
            "--rep is empty: give a rep's external id, or leave --rep out for every rep"
        )
    rep = rep.strip() if rep is not None else None
    found = store.calls.reps([rep] if rep else None)
    if rep and not found:
        known = ", ".join(r.external_id for r in store.calls.reps()[:20]) or "none imported yet"
        raise InputError(f"no rep {rep!r}; known reps: {known} (`reengage import reps FILE`)")
    if not found:
        raise InputError("no reps yet: import them first with `reengage import reps FILE`")
    return found


def _day_off(days: WorkingDays, day: date, rep: Rep) -> str | None:
    """What to say above a list or digest shown for a day the rep does not work (the day
    `digest send` skips), or None on a working day."""
    if days.is_working(day):
        return None
    return (
        f"{day:%a %d %b %Y} is not a working day for {rep.name} ({rep.external_id}): no digest "
        f"goes out; what is due then is on the list of {days.next_working_day(day):%a %d %b %Y} "
        "(REENGAGE_DIGEST_DAYS, REENGAGE_DIGEST_SKIP_DATES). Shown below as a preview."
    )


# -- calls ---------------------------------------------------------------------------------------


@calls_app.command("list")
def calls_list(
    rep: Annotated[
        str | None, typer.Option(help="Only this rep's list (their external id).")
    ] = None,
    on: Annotated[
        str | None, typer.Option("--date", help="The list for this day (default: today).")
    ] = None,
) -> None:
    """Today's calls per rep: who, whom to ask for, why now, and what is at stake."""
    settings = _settings()
    store = _store()
    try:
        wanted = [r.external_id for r in _reps(store, rep)]
        lists = build_lists(
            store, utcnow(), DigestConfig.from_settings(settings).policy, reps=wanted, day=_day(on)
        )
    finally:
        store.close()
    days = settings.working_days()
    for call_list in lists:
        title = f"{call_list.rep.name} ({call_list.rep.external_id}) — {call_list.day:%a %d %b %Y}"
        if (note := _day_off(days, call_list.day, call_list.rep)) is not None:
            out.print(note, markup=False, highlight=False)
        if call_list.empty:
            out.print(f"{title}: nobody to call", markup=False, highlight=False)
            continue
        out.print(_call_table(call_list, title, settings.currency, out.width), markup=False)
        if call_list.more:
            out.print(f"… and {call_list.more} more worth a call", markup=False)
    out.print(
        "Record a call: reengage calls log CUSTOMER_ID (or the link in the digest email)",
        markup=False,
    )


# Below this width the "last call" column goes into the client's cell, leaving room for
# the phone numbers, which are never cut or folded: a rep dials them.
_NARROW = 100
# Below this width the value at risk goes there too.
_NARROWEST = 70


def _call_table(call_list: CallList, title: str, currency: str, width: int) -> Table:
    """A rep's list as a table that keeps every phone number whole on one line."""
    narrow = width < _NARROW
    phones = [item.person.phone for item in call_list.items if item.person.phone]
    table = Table(title=title, title_justify="left", show_lines=True)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("client", overflow="fold")
    table.add_column("ask for", min_width=max(map(cell_len, phones), default=0), overflow="fold")
    table.add_column("why now", overflow="fold", ratio=1)
    if width >= _NARROWEST:
        table.add_column("value at risk", justify="right", overflow="fold")
    if not narrow:
        table.add_column("last call", overflow="fold")
    for item in call_list.items:
        person = item.person
        last = item.last_call or "never"
        client = [item.name, item.customer.company, item.customer.external_id]
        value = f"{item.value_at_risk:,.0f} {currency}"
        if width < _NARROWEST:
            client.append(f"at risk: {value}")
        if narrow:
            client.append(f"last call: {last}")
        cells = [
            str(item.rank),
            "\n".join(filter(None, client)),
            "\n".join(filter(None, (person.name, person.role, person.phone, person.email))),
            "\n".join(item.why),
        ]
        if width >= _NARROWEST:
            cells.append(value)
        table.add_row(*cells, *([] if narrow else [last]))
    return table


# The outcome's fields as `calls log` names them.
_OPTIONS = {
    "call_again_on": "--on",
    "reason": "--reason",
    "reason_text": "--note",
    "win_back": "--win-back",
    "contact_name": "--contact",
    "next_step": "--next",
}


@calls_app.command("log")
def calls_log(
    customer_id: Annotated[str, typer.Argument(help="The customer's external id.")],
    reached: Annotated[
        Reached | None, typer.Option(help="Whom you spoke to (nobody: no answer).")
    ] = None,
    contact: Annotated[
        str | None, typer.Option(help="The name of the person you spoke to.")
    ] = None,
    reason: Annotated[
        StopReason | None, typer.Option(help="The main reason they stopped buying.")
    ] = None,
    note: Annotated[str | None, typer.Option(help="The reason in their words.")] = None,
    scope: Annotated[
        CauseScope | None,
        typer.Option(help="Specific to this customer, or systemic (others will hit it too)?"),
    ] = None,
    win_back: Annotated[str | None, typer.Option(help="What would win them back.")] = None,
    worth: Annotated[WorthIt | None, typer.Option(help="Worth winning back?")] = None,
    next_step: Annotated[NextStep | None, typer.Option("--next", help="What happens now.")] = None,
    on: Annotated[
        str | None, typer.Option("--on", help="With --next call_again: the day to call again.")
    ] = None,
    rep: Annotated[
        str | None, typer.Option(help="Who called (default: the customer's rep).")
    ] = None,
) -> None:
    """Record what a call taught you; reengage stops, re-routes or schedules accordingly."""
    settings = _settings()
    store = _store()
    try:
        found = store.customers.get_customer(customer_id)
        if found is None or found[0].id is None:
            raise InputError(f"no customer {customer_id!r}; check the id (`reengage calls list`)")
        customer = found[0]
        customer_key: int = found[0].id
        who = rep or customer.rep_external_id
        reps = store.calls.reps([who]) if who else []
        now = utcnow()
        today = local_day(reps[0], now) if reps else now.date()
        reached = choose(reached, Reached, "--reached", "Whom did you reach?")
        if reached is not Reached.NOBODY and reason is None and sys.stdin.isatty():
            reason = choose(None, StopReason, "--reason", "Why did they stop?")
        if reached is not Reached.NOBODY and reason is not None:
            scope = ask_scope(scope)
        worth = choose(worth, WorthIt, "--worth", "Worth winning back?")
        next_step = choose(next_step, NextStep, "--next", "What next?")
        again = _day(on, "--on")
        if next_step is NextStep.CALL_AGAIN and again is None and sys.stdin.isatty():
            again = ask_call_again_day(today)
        outcome = CallReport(
            reached=reached,
            worth=worth,
            next_step=next_step,
            contact_name=contact,
            reason=reason,
            reason_text=note,
            scope=scope,
            win_back=win_back,
            call_again_on=again,
        )
        library = authoring.CampaignLibrary(_workspace())
        library.reload()
        ctx = CallContext(
            customer_key,
            who,
            library.campaigns,
            settings.followup_campaign,
            source="cli",
            days=settings.working_days(),
        )
        try:
            # Told in the rep's words, times in the rep's zone (as the form tells them).
            said = texts(reps[0].locale) if reps else None
            zone = rep_zone(reps[0]) if reps else None
            acted = record_outcome(store, ctx, outcome, now, today=today).summary(said, zone)
        except OutcomeError as exc:  # named by this command's options, not the form's fields
            raise InputError(
                "; ".join(f"{_OPTIONS.get(k, k)}: {v}" for k, v in exc.problems.items())
            ) from None
    finally:
        store.close()
    for line in acted:
        out.print(line, markup=False, highlight=False)


# -- digest --------------------------------------------------------------------------------------


@digest_app.command("preview")
def digest_preview(
    rep: Annotated[str, typer.Option(help="The rep's external id.")],
    on: Annotated[
        str | None, typer.Option("--date", help="The digest for this day (default: today).")
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Where to write it.")] = Path("previews"),
) -> None:
    """Write the exact digest a rep would get (.eml and .html) without sending anything."""
    settings = _settings()
    store = _store()
    try:
        chosen = _reps(store, rep)[0]
        made = preview_digest(
            store,
            _workspace(),
            DigestConfig.from_settings(settings),
            chosen,
            utcnow(),
            out_dir,
            day=_day(on),
        )
    finally:
        store.close()
    day = made.call_list.day
    days = settings.working_days()
    if (note := _day_off(days, day, chosen)) is not None:
        out.print(note, markup=False, highlight=False)
    out.print(f"working days: {days.describe(day)}", markup=False, highlight=False)
    if made.eml is None:
        out.print(
            f"{chosen.name}: nobody to call on {day:%a %d %b %Y}; no digest would be sent.",
            markup=False,
        )
        return
    out.print(
        f"{chosen.name}, {day:%a %d %b %Y}: {len(made.call_list.items)} clients"
        + (f" (+{made.call_list.more} more)" if made.call_list.more else ""),
        markup=False,
    )
    out.print(f"  {made.eml}\n  {made.html}", markup=False, highlight=False)
    if settings.secret_key is None:
        out.print(
            "  (REENGAGE_SECRET_KEY is not set: the outcome links are placeholders)", markup=False
        )


@digest_app.command("send")
def digest_send(
    rep: Annotated[str | None, typer.Option(help="Only this rep (default: every rep).")] = None,
    again: Annotated[
        bool,
        typer.Option(
            "--again",
            help="Send today's again where it failed, may not have arrived (unknown) or "
            "was empty — check first that the rep did not get it.",
        ),
    ] = False,
) -> None:
    """Send today's digest now, whatever the hour; a rep who already got today's is skipped."""
    import asyncio

    from reengage.mailer import SmtpMailer

    settings = _settings()
    settings.require_secret_key()  # the outcome links must be signed
    store = _store()

    async def go() -> dict[str, int]:
        mailer = SmtpMailer.from_settings(settings)
        try:
            chosen = _reps(store, rep)
            wanted = [r.external_id for r in chosen]
            if again:
                for one in chosen:
                    before = store.calls.reopen_digest(one.external_id, local_day(one, utcnow()))
                    if before in ("sent", "sending"):
                        out.print(f"{one.external_id}: today's digest was {before}", markup=False)
            report = await send_digests(
                store,
                mailer,
                _workspace(),
                DigestConfig.from_settings(settings),
                utcnow(),
                reps=wanted,
                anytime=True,
            )
            return dict(report.results)
        finally:
            await mailer.close()

    try:
        results = asyncio.run(go())
    finally:
        store.close()
    words = {
        "sent": "sent",
        "empty": "nobody to call",
        "already_sent": "already sent today",
        "day_off": "not a working day (REENGAGE_DIGEST_DAYS, REENGAGE_DIGEST_SKIP_DATES)",
    }
    summary = ", ".join(f"{words.get(k, k)} {v}" for k, v in sorted(results.items()))
    out.print(f"digests: {summary or 'every rep already has today’s'}", markup=False)
    if results.get("failed") or results.get("retry"):
        raise typer.Exit(1)
