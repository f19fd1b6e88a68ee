"""`validate` and `doctor` against a PostgreSQL server that is not there, as a person meets it.

A closed port (nothing listens) and a port that takes the connection and never answers (a
server hung, or a firewall that swallows packets behind a proxy): each command ends within
seconds, not the driver's minutes, exits 1 and says the database cannot be reached, naming
the URL without its password and what to do. Loopback only.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_cli import cli

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "hunter2-secret"


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts TCP connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(5)
    for conn in held:
        conn.close()
    server.close()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then let go)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def env_for(port: int) -> dict[str, str]:
    return {
        "REENGAGE_DATABASE_URL": f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1:{port}/x",
        "REENGAGE_CAMPAIGNS_DIR": str(ROOT / "campaigns"),
        "REENGAGE_TEMPLATES_DIR": str(ROOT / "templates"),
        "REENGAGE_SMTP_PORT": str(closed_port()),
    }


def assert_told_clearly(output: str, port: int) -> None:
    assert PASSWORD not in output
    url = f"postgresql+psycopg://postgres:***@127.0.0.1:{port}/x"
    assert f"cannot reach the database at {url}" in output
    assert "REENGAGE_DATABASE_URL" in output
    assert "Traceback" not in output


@pytest.mark.parametrize("command", ["validate", "doctor"])
def test_a_closed_port_is_said_at_once(tmp_path: Path, command: str) -> None:
    port = closed_port()
    started = time.monotonic()
    result = cli(command, cwd=tmp_path, env=env_for(port))
    assert time.monotonic() - started < 10
    assert result.returncode == 1, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert_told_clearly(output, port)
    assert "nothing answers there" in output and "start the server" in output


@pytest.mark.parametrize("command", ["validate", "doctor"])
def test_a_server_that_never_answers_is_given_up_on_within_seconds(
    tmp_path: Path, silent_port: int, command: str
) -> None:
    started = time.monotonic()
    result = cli(command, cwd=tmp_path, env=env_for(silent_port))
    took = time.monotonic() - started
    assert took < 10, f"{command} waited {took:.1f} s for a server that never answers"
    assert result.returncode == 1, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert_told_clearly(output, silent_port)
    assert "no answer within 5 s" in output
    assert "REENGAGE_DATABASE_CONNECT_TIMEOUT" in output


def test_the_connect_timeout_is_a_setting(tmp_path: Path, silent_port: int) -> None:
    env = env_for(silent_port) | {"REENGAGE_DATABASE_CONNECT_TIMEOUT": "2"}
    started = time.monotonic()
    result = cli("validate", cwd=tmp_path, env=env)
    assert time.monotonic() - started < 8  # 2 s, and a loaded machine's start-up: never 5
    assert result.returncode == 1 and "no answer within 2 s" in result.stderr
