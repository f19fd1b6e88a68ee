"""Commands for the operator: run the service, check its health."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from reengage.cli.app import (
    _settings,
    _store,
    _workspace,
    app,
    out,
)
from reengage.cli.listeners import Listeners, listen, server, within
from reengage.errors import ReengageError
from reengage.timeutil import utcnow

if TYPE_CHECKING:
    from reengage.config import Settings
    from reengage.store import Store

# -- the service ------------------------------------------------------------------------------


@app.command()
def run(
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit (for cron).")] = False,
) -> None:
    """Run the service: enroll lapsed customers and send what is due, until stopped."""
    from reengage import loopwatch
    from reengage.digest import DigestConfig
    from reengage.mailer import SmtpMailer
    from reengage.scheduler import Service

    settings = _settings()
    if settings.secret_key is None:
        settings.require_secret_key()  # links in real mail must be signed
    store = _store()
    ws = _workspace()

    async def main_loop() -> None:
        mailer = SmtpMailer.from_settings(settings)
        service = Service(
            store,
            mailer,
            ws,
            clock=utcnow,
            batch=settings.send_batch_size,
            concurrency=settings.smtp_connections,
            lease=timedelta(seconds=settings.send_lease_seconds),
            claim=timedelta(seconds=settings.claim_lease_seconds),
            dispatch_every_s=settings.dispatch_every_seconds,
            digest=DigestConfig.from_settings(settings),
            grace=timedelta(seconds=settings.shutdown_grace_seconds),
            spool_dir=settings.spool_dir,
            mailbox_every_s=settings.inbound_mailbox_poll_seconds,
        )
        service.mailbox = _mailbox_poller(settings, store, service)
        if not once:
            service.handle_signals()  # a SIGTERM while starting up is a polite stop too
        try:
            if once:
                report = await service.run_once()
                out.print(
                    f"one pass: {report.enrolled} enrolled, {report.held_out} held out, "
                    f"{report.exited} exited; steps: "
                    + (", ".join(f"{k} {v}" for k, v in sorted(report.results.items())) or "none")
                    + (f"; {report.unknown} unknown sends reported" if report.unknown else "")
                    + (
                        "; digests: "
                        + ", ".join(f"{k} {v}" for k, v in sorted(report.digests.items()))
                        if report.digests
                        else ""
                    ),
                    markup=False,
                )
                if report.detection_skipped:
                    out.print(f"nobody enrolled: {report.detection_skipped}", markup=False)
            else:
                listeners = Listeners()
                _web_servers(listeners, settings, store, service)
                await _inbound_listener(listeners, settings, store, service)
                service.on_stop.append(listeners.stop)
                # What start-up built (modules, the web stack, compiled SQL) lives as long
                # as the process: set aside from the collector once it is all built.
                await listeners.started(5.0)
                await loopwatch.settle_startup()
                await service.run_forever()
                # Closing down has what the grace kept for it (see run_forever).
                await listeners.closed()
        finally:
            await within(mailer.close(), 0.5)
            store.close()

    asyncio.run(main_loop())


def _spool_problem(folder: Path) -> str | None:
    """Why the spool folder could not keep a result, or None when it can (tried for real)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".doctor-{os.getpid()}"
        probe.write_text("ok\n", encoding="utf-8")
        probe.unlink()
    except OSError as exc:
        return str(exc)
    return None


async def _inbound_listener(
    listeners: Listeners, settings: Settings, store: Store, service: Any
) -> None:
    """The inbound SMTP listener for bounces and replies (none when its port is 0)."""
    if not settings.inbound_port:
        return
    from reengage.inbound import InboundHandler, serve

    policy = service.response_policy(settings.soft_bounce_limit)
    handler = InboundHandler.from_settings(store, service.clock, policy, settings)
    host, port = settings.inbound_host, settings.inbound_port
    await listeners.inbound(host, port, lambda: serve(handler, host, port))


def _mailbox_poller(settings: Settings, store: Store, service: Any) -> Any:
    """The inbound mailbox's poller (REENGAGE_INBOUND_IMAP_URL or _POP3_URL), or None."""
    if settings.inbound_imap_url is None and settings.inbound_pop3_url is None:
        return None
    from reengage.inbound import InboundHandler
    from reengage.mailbox_poll import poller_from_settings

    policy = service.response_policy(settings.soft_bounce_limit)
    handler = InboundHandler.from_settings(store, service.clock, policy, settings)
    return poller_from_settings(settings, store, handler.receive, service.clock)


@app.command()
def web() -> None:
    """Serve the web app alone: links in mail, preferences page, the reps' outcome form,
    dashboard, ingest API; /healthz and /metrics on the operations address."""
    import signal

    from reengage import authoring
    from reengage.web import WebConfig, create_app, ops_app

    settings = _settings()
    # Loaded once: the daemon's library reloads campaigns as they change; this app alone
    # needs them only for a call outcome's follow-up and exits (restart to pick up edits).
    library = authoring.CampaignLibrary(_workspace())
    library.reload()
    config = WebConfig.from_settings(settings, campaigns=lambda: library.campaigns)
    port = settings.http_port or 8025
    public = listen(settings.http_host, port, "web", "REENGAGE_HTTP_PORT", quiet=True)
    if public is None:
        out.print(f"cannot listen on {settings.http_host}:{port}: it is taken", markup=False)
        raise typer.Exit(1)
    store = _store()
    servers = [(server(create_app(store, config), settings.http_max_connections), public)]
    if settings.ops_port:
        ops = listen(settings.ops_host, settings.ops_port, "operations", "REENGAGE_OPS_PORT")
        if ops is not None:
            servers.append((server(ops_app(store)), ops))

    def stop() -> None:
        for made, _ in servers:
            made.should_exit = True

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop)
        await asyncio.gather(*(s.serve(sockets=[sock]) for s, sock in servers))

    try:
        out.print(f"web app on http://{settings.http_host}:{port}", markup=False)
        asyncio.run(serve())
    finally:
        store.close()


def _web_servers(listeners: Listeners, settings: Settings, store: Store, service: Any) -> None:
    """Uvicorn beside the daemon: the public app on REENGAGE_HTTP_PORT and /healthz with
    /metrics on REENGAGE_OPS_PORT (either left out when its port is 0)."""
    from reengage.web import WebConfig, create_app, ops_app

    if settings.http_port:
        config = WebConfig.from_settings(
            settings,
            service.response_policy(settings.soft_bounce_limit),
            service.clock,
            campaigns=lambda: service.library.campaigns,
        )
        listeners.web(
            settings.http_host,
            settings.http_port,
            "web",
            "REENGAGE_HTTP_PORT",
            lambda: server(create_app(store, config), settings.http_max_connections),
        )
    if settings.ops_port:
        listeners.web(
            settings.ops_host,
            settings.ops_port,
            "operations",
            "REENGAGE_OPS_PORT",
            lambda: server(ops_app(store, alive=lambda: not service.stopping)),
        )


@app.command()
def doctor() -> None:
    """Check settings, database, migrations, SMTP, campaigns and sends of unknown outcome."""
    failures = 0

    def report(ok: bool, what: str, detail: str) -> None:
        nonlocal failures
        failures += 0 if ok else 1
        out.print(f"{'ok  ' if ok else 'FAIL'} {what}: {detail}", markup=False, highlight=False)

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
        "set" if settings.secret_key else "REENGAGE_SECRET_KEY is not set",
    )
    # Each check imports what it needs when it comes to it: the first lines show at once.
    from reengage.store import migrate
    from reengage.store.engine import check_connection, create_engine

    engine = create_engine(settings.database_url)
    try:
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

    result = authoring.validate(_workspace(), [settings.campaigns_dir], root=Path.cwd())
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
    if current == migrate.head_revision():
        store = _store()
        try:
            counts = store.sending.message_counts()
            digests = store.calls.digest_counts()
            _, unmatched = store.responses.unmatched(1)
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
    if failures:
        raise typer.Exit(1)
