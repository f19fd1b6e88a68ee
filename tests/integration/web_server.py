"""The web app served for real: uvicorn on a free loopback port, in a thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn

from tests.integration.smtp_sink import free_port


@contextmanager
def running_app(app: Any) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1; yields its base URL and stops it afterwards."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the web app did not start")
        time.sleep(0.02)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def local(url: str, base: str) -> str:
    """A link from a mail (made for the configured base URL) pointed at the test server."""
    path = url.split("://", 1)[1].split("/", 1)[1]
    return f"{base}/{path}"


def client() -> httpx.Client:
    """An HTTP client that never follows redirects (tests look at them)."""
    return httpx.Client(follow_redirects=False, timeout=10)
