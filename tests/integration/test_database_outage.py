"""A database that goes away mid-dispatch: delivered mail is never forgotten.

The daemon talks to PostgreSQL through a TCP relay on loopback that the test can cut, as a
network partition or a database restart would. Mails the server accepted while the
database was away are kept in the spool on disk and recorded when it is back: none of them
becomes ``unknown``, none is sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from reengage.errors import StoreError
from reengage.spool import Spool
from reengage.store import Store
from tests.integration.smtp_sink import running_sink
from tests.integration.test_sending import run_days, setup

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


class Relay:
    """A TCP relay to PostgreSQL that can be cut (every connection dropped, new ones refused)
    and restored."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open = threading.Event()
        self.open.set()
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.open.is_set():
                client.close()
                continue
            server = socket.create_connection(self.target)
            with self.lock:
                self.pairs.append((client, server))
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.open.clear()
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for pair in pairs:
            for end in pair:
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                end.close()

    def restore(self) -> None:
        self.open.set()

    def close(self) -> None:
        self.cut()
        self.listener.close()


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_mail_delivered_while_the_database_is_away_is_recorded_when_it_is_back(
    database_url: str, tmp_path: Path
) -> None:
    url = make_url(database_url)
    relay = Relay((url.host or "127.0.0.1", url.port or 5432))
    direct = Store.open(database_url, upgrade=True)
    through = Store.open(url.set(host="127.0.0.1", port=relay.port).render_as_string(False))
    try:
        with running_sink(delay=0.05) as (sink, port):
            rows = "".join(f"c{i},u{i}@example.com,U{i}\n" for i in range(30))
            service = setup(through, tmp_path, port, "customer_id,email,first_name\n" + rows)
            service.spool = Spool(tmp_path / "spool", service.worker_id)
            service.batch = 30
            clock = service.clock_state  # type: ignore[attr-defined]
            clock["now"] += timedelta(days=1, hours=4)  # Tuesday 10:00: the window is open

            async def cut_midway() -> None:
                # The database goes away once a few mails are on their way.
                for _ in range(1000):
                    if len(sink.received) >= 5:
                        break
                    await asyncio.sleep(0.01)
                relay.cut()

            async def one_pass() -> None:
                service.reload()
                service.detect()
                cutter = asyncio.ensure_future(cut_midway())
                with pytest.raises(StoreError):
                    await service.dispatch()
                await cutter
                await asyncio.sleep(30 * 0.05 + 0.5)  # the sends on the wire finish
                await service.mailer.close()

            asyncio.run(one_pass())
            delivered = len(sink.received)
            assert delivered > 5
            relay.restore()
            # Back: the next passes record what was delivered meanwhile, then go on.
            run_days(service, 2, step_hours=6)
            ids = sink.message_ids()
        counts = Counter(direct.message_counts())
        assert len(ids) == len(set(ids)), "a mail was sent twice"
        assert counts["unknown"] == 0, counts  # nothing delivered was forgotten
        assert counts["sent"] == len(ids), counts
        assert not list((tmp_path / "spool").glob("*.jsonl"))  # all written, files gone
    finally:
        through.close()
        direct.close()
        relay.close()


def test_an_outage_is_one_event_when_it_starts_and_one_when_it_ends(tmp_path: Path) -> None:
    from structlog.testing import capture_logs

    from reengage.compose import Workspace
    from reengage.config import load_settings
    from reengage.mailer import SmtpMailer
    from reengage.scheduler import Service

    store = Store.open(f"sqlite:///{tmp_path / 'db.sqlite'}", upgrade=True)
    ws = Workspace.from_settings(load_settings(env_file=None, campaigns_dir=tmp_path))
    service = Service(store, SmtpMailer("127.0.0.1", 9), ws, clock=lambda: NOW)
    answers = iter([StoreError("gone"), StoreError("gone"), StoreError("gone"), None])

    def tick() -> None:
        trouble = next(answers)
        if trouble is not None:
            raise trouble

    job = service._guarded(tick)
    with capture_logs() as logs:
        for _ in range(4):
            job()
    events = [e["event"] for e in logs if e["log_level"] in ("error", "info")]
    assert events == ["database_unavailable", "database_back"]
    store.close()
