"""Commands for the operator: run the service (`run`), or its web app alone (`web`)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
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
from reengage.timeutil import utcnow

if TYPE_CHECKING:
    from reengage.config import Settings
    from reengage.detection_process import DetectionProcess
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
    detection = None if once else _detection_process(settings)

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
            detection=detection,
            mailbox_every_s=settings.inbound_mailbox_poll_seconds,
            refit_every=settings.model_refit_every(),
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

    try:
        asyncio.run(main_loop())
    finally:
        if detection is not None:
            detection.close()


def _detection_process(settings: Settings) -> DetectionProcess | None:
    """The daemon's detection passes run in a child process, started here from the main
    thread before anything else (see :mod:`reengage.detection_process`). Where no child can
    start (no POSIX semaphores: a container without /dev/shm, say), None: they run in a
    thread of the daemon, as ``run --once`` runs them, and the log says so."""
    from reengage import timeutil
    from reengage.detection_process import ChildSetup, DetectionProcess
    from reengage.errors import StoreError
    from reengage.logs import get_logger

    setup = ChildSetup(
        settings.database_url,
        settings.attribution_days,
        settings.log_level,
        settings.log_format,
        timeutil._Origin.pinned,
        settings.database_connect_timeout,
    )
    detection = DetectionProcess(setup)
    try:
        detection.start()
    except (OSError, NotImplementedError, StoreError) as exc:
        detection.close()
        get_logger(__name__).warning(
            "detection_process_unavailable",
            error=str(exc) or type(exc).__name__,
            hint="detection passes run in a thread of the daemon instead: they work, but a "
            "pass over a large base pauses its sending (see docs/scale.md); give the "
            "container /dev/shm to run them in a process of their own",
        )
        return None
    return detection


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
    return poller_from_settings(
        settings, store, handler.receive, service.clock, lambda: service.stopping
    )


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
