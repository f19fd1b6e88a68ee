"""`reengage doctor`: is this installation ready to run, and is its sender set up to land?

Without options it checks the settings, the database and its migrations, the mail server,
the campaign files, the spool folder and the mails of unknown outcome; with ``--sender``
the From domains' DNS (SPF, DKIM, DMARC, the inbound MX) and what Gmail and Yahoo ask of
bulk senders (see :mod:`reengage.dnscheck`).
"""

from __future__ import annotations

import asyncio
import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from zoneinfo import ZoneInfo

import typer

from reengage.cli.app import _settings, _store, _workspace, app, out
from reengage.errors import ReengageError
from reengage.timeutil import as_utc, utcnow

if TYPE_CHECKING:
    from reengage.config import Settings
    from reengage.store import Store
    from reengage.store.activities import NegativeAmounts


def _spool_problem(folder: Path) -> str | None:
    """Why the spool folder could not keep a result, or None when it can (tried for real,
    without creating anything: a folder not there yet is judged by the one it would go in)."""
    try:
        if not folder.exists():
            parent = next((p for p in folder.absolute().parents if p.exists()), None)
            if parent is None or not parent.is_dir():
                return f"{parent} is not a folder"
            if not os.access(parent, os.W_OK | os.X_OK):
                return f"{folder} is not there and {parent} cannot be written to create it"
            return None
        if not folder.is_dir():
            return "it is not a folder"
        probe = folder / f".doctor-{os.getpid()}"
        probe.write_text("ok\n", encoding="utf-8")
        probe.unlink()
    except OSError as exc:
        return str(exc)
    return None


@app.command()
def doctor(
    sender: Annotated[
        bool,
        typer.Option(
            "--sender",
            help="Check the sender's DNS instead: SPF, DKIM, DMARC, the inbound MX and "
            "one-click unsubscribe, with the records to publish.",
        ),
    ] = False,
    domain: Annotated[
        list[str] | None,
        typer.Option(
            "--domain",
            help="With --sender: the From domain to check (repeat for more); default: the "
            "domains of the campaigns' From addresses and REENGAGE_DIGEST_FROM.",
        ),
    ] = None,
) -> None:
    """Check settings, database, migrations, SMTP, campaigns and sends of unknown outcome."""
    if sender:
        from reengage.cli.doctor_sender import doctor_sender

        doctor_sender(domain or [])
        return
    if domain:
        raise typer.BadParameter("--domain goes with --sender", param_hint="--domain")
    now = utcnow()  # the one moment every check is judged at
    failures = 0

    def report(ok: bool, what: str, detail: str) -> None:
        nonlocal failures
        failures += 0 if ok else 1
        out.print(f"{'ok  ' if ok else 'FAIL'} {what}: {detail}", markup=False, highlight=False)

    def warn(what: str, detail: str) -> None:  # worth acting on; not a failure
        out.print(f"WARN {what}: {detail}", markup=False, highlight=False)

    settings = _settings()
    report(
        True,
        "settings",
        f"database {settings.database_url.split('@')[-1]}, "
        f"SMTP {settings.smtp_host}:{settings.smtp_port}",
    )
    if settings.now is not None:
        report(
            False,
            "clock",
            f"REENGAGE_NOW pins the clock to start at {settings.now.isoformat()}: "
            "for tests and rehearsals only; unset it in production",
        )
    report(
        settings.secret_key is not None,
        "secret key",
        "set"
        if settings.secret_key
        else "REENGAGE_SECRET_KEY is not set: links in mail would not work; set it to 16 or "
        "more random characters, e.g. python -c 'import secrets; "
        "print(secrets.token_urlsafe(24))'",
    )
    try:
        dkim = settings.dkim_key()
        if dkim is not None:
            report(True, "DKIM", f"signing as {dkim[1]} with selector {dkim[0]}")
    except ReengageError as exc:  # a half-set or unreadable key: a finding, not a stop
        report(False, "DKIM", str(exc))
    report(
        True,
        "working days",
        f"{settings.working_days().describe(now.date())} (the reps' local dates; "
        f"digest from {settings.digest_hour:02d}:00)",
    )
    # Each check imports what it needs when it comes to it: the first lines show at once.
    from reengage.store import migrate
    from reengage.store.engine import absent_sqlite_file, check_connection, create_engine

    absent = absent_sqlite_file(settings.database_url)
    # Connecting would create the file (and its folder), empty, and call it reachable.
    engine = (
        create_engine(settings.database_url, connect_timeout=settings.database_connect_timeout)
        if absent is None
        else None
    )
    try:
        if engine is None:
            raise ReengageError(
                f"no database file at {absent}: `reengage db upgrade` creates it; or point "
                "REENGAGE_DATABASE_URL at the file the daemon uses"
            )
        check_connection(engine)
        report(True, "database", "reachable")
        current, head = migrate.current_revision(engine), migrate.head_revision()
        report(
            current == head,
            "migrations",
            f"at {current}"
            if current == head
            else f"at {current or 'nothing'}, need {head}: run `reengage db upgrade`",
        )
    except ReengageError as exc:
        report(False, "database", str(exc))
        current = None
    finally:
        if engine is not None:
            engine.dispose()
    from reengage.mailer import SmtpMailer

    try:
        greeting = asyncio.run(SmtpMailer.from_settings(settings).check())
        report(True, "SMTP", greeting)
    except Exception as exc:  # any failure to reach SMTP is the finding
        report(False, "SMTP", f"cannot reach {settings.smtp_host}:{settings.smtp_port}: {exc}")
    if settings.inbound_imap_url is not None or settings.inbound_pop3_url is not None:
        from reengage.mailbox_poll import check_mailbox

        try:
            report(True, "inbound mailbox", check_mailbox(settings) or "")
        except ReengageError as exc:
            report(False, "inbound mailbox", str(exc))
    spool = _spool_problem(settings.spool_dir)
    report(
        spool is None,
        "spool",
        f"{settings.spool_dir} is writable (results kept there while the database is away)"
        if spool is None
        else f"REENGAGE_SPOOL_DIR {settings.spool_dir} cannot keep results while the database "
        f"is away ({spool}): point it at a folder on local disk this user can write",
    )
    from reengage import authoring

    try:
        workspace = _workspace()
    except ReengageError:  # the DKIM key, reported above: the campaigns are checked without
        from reengage import compose

        unsigned = settings.model_copy(
            update={"dkim_private_key_file": None, "dkim_selector": None, "dkim_domain": None}
        )
        workspace = compose.Workspace.from_settings(unsigned)
    result = authoring.validate(workspace, [settings.campaigns_dir], root=Path.cwd())
    running = (
        authoring.running_step_warnings(
            result, settings.database_url, _store, settings.campaigns_dir
        )[0]
        if current is not None and current == migrate.head_revision()
        else []  # the database line above says why it cannot be read
    )
    result.problems.extend(running)
    errors = [p for p in result.problems if p.is_error]
    report(
        not errors,
        "campaigns",
        f"{len(result.campaigns)} valid, {len(errors)} problem(s)"
        + (
            f", {len(result.problems) - len(errors)} warning(s)"
            if len(result.problems) > len(errors)
            else ""
        )
        + (" — run `reengage validate`" if result.problems else ""),
    )
    for problem in running:  # sequences about to end: worth reading here, not only counted
        out.print(f"     {problem}", markup=False, highlight=False)
    if current == migrate.head_revision():
        store = _store()
        try:
            counts = store.sending.message_counts()
            digests = store.calls.digest_counts()
            _, unmatched = store.responses.unmatched(1)
            negative = store.customers.negative_amounts()
            scoring_lines = _lapse_model_lines(store, settings, now)
        finally:
            store.close()
        unknown, failed = counts.get("unknown", 0), counts.get("failed", 0)
        report(
            unknown == 0 and failed == 0,
            "sends",
            ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none yet",
        )
        if unknown:
            out.print(
                f"     {unknown} message(s) may or may not have reached the customer (the "
                "line was lost after the message went out, or the process died mid-send); "
                "they are not re-sent automatically: `reengage sends list --status unknown` "
                "shows each one's reason.",
                markup=False,
            )
        if failed:
            out.print(
                f"     {failed} message(s) were never sent: a template failed for that "
                "customer, or the mail server refused the mail itself (its size or content). "
                "`reengage sends list --status failed` shows each one's reason; fix that "
                "cause, then `reengage sends retry --failed` (or `reengage sends resolve "
                "skip`).",
                markup=False,
            )
        stuck = digests.get("unknown", 0) + digests.get("failed", 0)
        report(
            stuck == 0,
            "digests",
            ", ".join(f"{k} {v}" for k, v in sorted(digests.items())) or "none yet",
        )
        if stuck:
            out.print(
                f"     {stuck} rep digest(s) were refused or may not have arrived; check the "
                "reps' addresses (`reengage import reps`), ask the rep, then "
                "`reengage digest send --rep ID --again` sends the day's list once more.",
                markup=False,
            )
        # Not a failure (anyone can send mail to the listener), but worth a look.
        report(
            True,
            "inbound",
            f"{unmatched} bounce(s), complaint(s) or repl(ies) named no mail of ours or another "
            "address, and acted on nobody: `reengage inbound unmatched`"
            if unmatched
            else "nothing unmatched",
        )
        if negative.activities:
            warn("negative amounts", _negative_amounts(negative))
        for ok, what, detail in scoring_lines:
            report(ok, what, detail)
    if failures:
        raise typer.Exit(1)


def _negative_amounts(found: NegativeAmounts) -> str:
    """Activities stored with an amount below zero: who, why it matters and the fix."""
    more = ", …" if found.customers > len(found.first_customers) else ""
    more_ids = ", …" if found.activities > len(found.first_activities) else ""
    return (
        f"{found.activities} activit{'y has' if found.activities == 1 else 'ies have'} an "
        f"amount below zero (refunds imported before import refused them), of "
        f"{found.customers} customer(s): {', '.join(found.first_customers)}{more}. Each "
        "counts as an order, as revenue and as a comeback though nothing was bought. Fix: "
        "import each again under its activity id with the amount the customer paid "
        f"(activity ids {', '.join(found.first_activities)}{more_ids}; `reengage import "
        "activities FILE` with columns activity_id, customer_id, occurred_at, amount): the "
        "row and the customer's figures are corrected. All of them: SELECT a.external_id, "
        "c.external_id, a.occurred_at, a.amount FROM activities a JOIN customers c ON "
        "c.id = a.customer_id WHERE a.amount < 0"
    )


def _lapse_model_lines(
    store: Store, settings: Settings, now: datetime
) -> list[tuple[bool, str, str]]:
    """The lapse score's horizon and why, the model in force, the last refit's verdict (a
    failure when it never came to one: its worker stopped midway) and when the next is due."""
    from reengage import scoring
    from reengage.i18n import days, hours
    from reengage.refit import REFIT_CHECK_S, REFIT_LOCK, next_refit_at
    from reengage.store.lapse_models import STARTED

    found = store.lapse_models.in_force()
    if found is None:
        choice = scoring.rhythm_horizon(store)
        horizon = f"{days(choice.days)}, {choice.why()}"
        model = (
            "the rhythm prior: no model fitted yet (`reengage score --fit`, or the daemon's refit)"
        )
    else:
        why = found.horizon.why() if found.horizon else "as it was fitted (reason not recorded)"
        horizon = f"{days(found.model.horizon_days)}, {why}"
        model = (
            f"fitted on the history up to {found.model.fitted_as_of:%Y-%m-%d} "
            f"({found.model.customers} customers), in force since {found.created_at:%Y-%m-%d}; "
        )
        if found.held_out is not None:
            model += (
                f"backtest on the window from {found.held_out.start:%Y-%m-%d} it never saw: "
                f"ROC AUC {_figure(found.held_out.auc, '{:.4f}')}, top 10% "
                f"{_figure(found.held_out.precision, '{:.0%}')} precise"
            )
        else:
            model += f"ROC AUC {_figure(found.auc, '{:.3f}')} on the history it was fitted on"
    refit = store.lapse_models.last_refit()
    every = settings.model_refit_every()
    zone = settings.zone
    finished = True
    if refit is not None and refit.verdict == STARTED:
        held = store.locks.held_until(REFIT_LOCK)
        if held is not None and as_utc(held) > now:  # its worker still renews the lease
            last = f"under way since {_at(refit.at, zone)}"
        else:
            finished = False
            # The lease is this refit's: any later taker closes it (refit.close_lost) before
            # doing anything else under the lease. A moment before it began is not its own.
            own = held is not None and as_utc(held) >= as_utc(refit.at)
            stopped = f" (its lease ran out {_at(held, zone)})" if own and held else ""
            last = (
                f"did not finish: begun {_at(refit.at, zone)}, its worker stopped renewing "
                f"the refit's lease before a verdict{stopped}: killed, or out of memory (see "
                "the daemon's log and the machine's memory then); the model in force is "
                "unchanged"
            )
    elif refit is not None:
        last = f"{_at(refit.at, zone)}, {refit.reason}"
        if refit.verdict != "skipped":
            last += (
                f" (top 10% precision {_figure(refit.candidate_precision, '{:.0%}')} against "
                f"{_figure(refit.in_force_precision, '{:.0%}')})"
            )
    else:
        last = "none yet"
    if every is None:
        due = "refit off: the daemon never refits (REENGAGE_MODEL_REFIT_EVERY_HOURS=0)"
    else:
        at = next_refit_at(refit, now, every)
        due = (
            f"due now: a running daemon starts it within {REFIT_CHECK_S // 60} minutes"
            if at <= now
            else f"due {_at(at, zone)}"
        ) + f" (every {hours(settings.model_refit_every_hours)})"
    return [
        (True, "lapse horizon", horizon),
        (True, "lapse model", model),
        (finished, "last refit", last),
        (True, "next refit", due),
    ]


def _at(moment: datetime, zone: ZoneInfo) -> str:
    """A moment as doctor shows the refit's: to the minute, in the business zone, named."""
    return f"{as_utc(moment).astimezone(zone):%Y-%m-%d %H:%M} {zone.key}"


def _figure(value: float | None, pattern: str) -> str:
    return "—" if value is None else pattern.format(value)
