"""What the daemon listens on beside its passes: the public web app, the operations
endpoints (/healthz, /metrics) and the inbound SMTP listener.

Each takes its port when the worker starts. A port another process holds — a second worker
on the same machine, or the worker this one replaces, still finishing its stop — is logged
once (``port_in_use``) and tried again every :data:`RETRY_SECONDS`, so it is taken over as
soon as it is free (``port_taken_over``) instead of this worker running without it for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Any


def _log() -> Any:
    # Imported when a listener first speaks: the CLI imports this module for every command,
    # and the logging setup (structlog, the settings) is not needed to print `--help`.
    from reengage.logs import get_logger

    return get_logger(__name__)


RETRY_SECONDS = 5.0


def listen(host: str, port: int, what: str, setting: str, *, quiet: bool = False) -> Any:
    """A listening socket on ``host:port``, or None (with one warning unless ``quiet``)
    when another process has it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if not quiet:
            _in_use(what, host, port, setting, exc)
        return None
    return sock


def server(app: Any, max_connections: int | None = None) -> Any:
    """A uvicorn server for ``app`` that leaves SIGTERM/SIGINT to its caller; past
    ``max_connections`` at once it answers 503 (a client holding many open cannot use up
    the process's file descriptors, which the database needs too)."""
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield  # the caller owns SIGTERM/SIGINT and stops the server itself

    return Server(
        uvicorn.Config(
            app,
            log_level="warning",
            log_config=None,  # its lines go through ours: JSON off a terminal
            lifespan="off",
            limit_concurrency=max_connections,
        )
    )


def _in_use(what: str, host: str, port: int, setting: str, exc: OSError) -> None:
    _log().warning(
        "port_in_use",
        what=what,
        address=f"{host}:{port}",
        error=str(exc),
        hint=f"another process holds it; this worker takes it over once it is free "
        f"(checked every {RETRY_SECONDS:.0f} s). To run side by side for good, give this "
        f"one its own {setting}, or 0 for none",
    )


class Listeners:
    """The web servers and the inbound listener of one worker, and the ports it waits for."""

    def __init__(self) -> None:
        self._servers: list[Any] = []  # uvicorn servers serving
        self._serving: list[asyncio.Task[Any]] = []
        self._waiting: list[asyncio.Task[None]] = []  # ports held by another process
        self._inbound: list[asyncio.Server] = []
        self._stopping = False

    def web(self, host: str, port: int, what: str, setting: str, app: Callable[[], Any]) -> None:
        """Serve ``app()`` (a uvicorn server) on ``host:port``, now or once it is free."""
        sock = listen(host, port, what, setting)
        if sock is not None:
            self._serve(app(), sock)
            return

        async def take_over() -> None:
            while not self._stopping:
                await asyncio.sleep(RETRY_SECONDS)
                freed = listen(host, port, what, setting, quiet=True)
                if freed is not None and not self._stopping:
                    _log().warning("port_taken_over", what=what, address=f"{host}:{port}")
                    self._serve(app(), freed)
                    return
                if freed is not None:
                    freed.close()

        self._waiting.append(asyncio.create_task(take_over()))

    def _serve(self, made: Any, sock: socket.socket) -> None:
        self._servers.append(made)
        self._serving.append(asyncio.create_task(made.serve(sockets=[sock])))

    async def inbound(
        self, host: str, port: int, start: Callable[[], Awaitable[asyncio.Server]]
    ) -> None:
        """Listen for inbound mail with ``start()``, now or once ``host:port`` is free."""
        try:
            self._inbound.append(await start())
        except OSError as exc:
            _in_use("inbound mail", host, port, "REENGAGE_INBOUND_PORT", exc)
        else:
            _log().info("inbound_listening", address=f"{host}:{port}")
            return

        async def take_over() -> None:
            while not self._stopping:
                await asyncio.sleep(RETRY_SECONDS)
                try:
                    listener = await start()
                except OSError:
                    continue
                if self._stopping:
                    listener.close()
                    return
                self._inbound.append(listener)
                _log().warning("port_taken_over", what="inbound mail", address=f"{host}:{port}")
                return

        self._waiting.append(asyncio.create_task(take_over()))

    async def started(self, seconds: float) -> None:
        """Wait up to ``seconds`` for the web servers serving now to have started."""
        loop = asyncio.get_running_loop()
        until = loop.time() + seconds
        # uvicorn says so in a plain flag, not an event to wait on
        while not all(made.started for made in self._servers) and loop.time() < until:  # noqa: ASYNC110
            await asyncio.sleep(0.01)

    def stop(self) -> None:
        """Nothing new is served; the servers finish (see :meth:`closed`)."""
        self._stopping = True
        for waiting in self._waiting:
            waiting.cancel()
        for made in self._servers:
            made.should_exit = True
        for listener in self._inbound:
            listener.close()

    async def closed(self) -> None:
        """Wait a moment for the listeners to close: a client that holds a connection
        open, or a mail server that will not say goodbye, does not hold the process."""
        self.stop()
        for listener in self._inbound:
            await within(listener.wait_closed(), 0.5)
        if self._serving:
            await within(asyncio.gather(*self._serving, return_exceptions=True), 1.0)
        for waiting in self._waiting:
            with contextlib.suppress(asyncio.CancelledError):
                await waiting


async def within(step: Awaitable[Any], seconds: float) -> None:
    """Await ``step`` for at most ``seconds``, then go on without it."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(step, seconds)
