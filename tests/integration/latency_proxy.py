"""A TCP proxy on loopback that delivers every chunk ``delay`` seconds after it arrived, in
both directions and in order: a database that is far away, so every query a pass makes
takes at least twice ``delay``. Run in a thread with a loop of its own."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

from tests.integration.smtp_sink import free_port


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, chunk = await queue.get()
            await asyncio.sleep(max(due - loop.time(), 0))
            if not chunk:
                writer.close()
                return
            writer.write(chunk)
            await writer.drain()

    sender = asyncio.create_task(deliver())
    try:
        while True:
            chunk = await reader.read(65536)
            queue.put_nowait((loop.time() + delay, chunk))
            if not chunk:
                break
        await sender
    except (ConnectionError, OSError):
        writer.close()
    finally:
        sender.cancel()  # cancelled with its pipe too: no task outlives the proxy's loop


@contextlib.contextmanager
def latency_proxy(host: str, port: int, delay: float) -> Iterator[int]:
    """Listen on a free loopback port for as long as the block runs; yields the port."""
    listen_port = free_port()
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    writers: set[asyncio.StreamWriter] = set()
    server: asyncio.Server | None = None

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        writers.add(client_w)
        try:
            server_r, server_w = await asyncio.open_connection(host, port)
        except OSError:
            client_w.close()
            return
        writers.add(server_w)
        await asyncio.gather(
            _pipe(client_r, server_w, delay),
            _pipe(server_r, client_w, delay),
            return_exceptions=True,
        )

    async def serve() -> None:
        nonlocal server
        server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
        ready.set()

    async def shutdown() -> None:
        assert server is not None
        server.close()
        for writer in writers:
            writer.close()
        # Every task still running (handlers and the pipes' senders): cancelled and awaited
        # here, so none is left pending when the loop closes and none is garbage-collected
        # later as "Task was destroyed but it is pending" inside another test.
        pending = asyncio.all_tasks() - {asyncio.current_task()}
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for writer in writers:
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        await server.wait_closed()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(serve())
        loop.run_forever()
        loop.run_until_complete(shutdown())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    thread = threading.Thread(target=run, name="latency-proxy", daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield listen_port
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
