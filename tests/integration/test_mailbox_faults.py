"""What an independent tester broke in the inbound mailbox, against a real dovecot on
loopback: a done folder the server refuses stalls nothing (every mail is recorded, the
failure to mark is one logged event, on /healthz and /metrics, and `reengage doctor` says
which setting to fix); SIGTERM during a long poll stops it between mails, within the grace,
without a traceback, recording nothing twice; a too-large mail stays where it was; a
refused or reset connection and a locked database read as words, not numbers or SQL."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import json
import os
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from structlog.testing import capture_logs

from reengage import metrics
from reengage.config import load_settings
from reengage.errors import ConfigError, MailboxError, StoreError
from reengage.inbound import InboundHandler
from reengage.mailbox import MailboxOptions, open_mailbox, parse_url
from reengage.mailbox_poll import MailboxPoller, mailbox_from_settings, poller_from_settings
from reengage.store import Store
from reengage.web import ops_app
from tests.conftest import child_env
from tests.integration.dovecot import Dovecot, running_dovecot
from tests.integration.inprocess import cli
from tests.integration.smtp_sink import free_port
from tests.integration.test_inbound import inbound_world
from tests.integration.test_inbound_mailbox import (
    CUSTOMERS,
    NOW,
    REENGAGE,
    _settings,
    deliver_answers,
    stored,
    stray,
)


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    with running_dovecot() as server:
        yield server


def healthz(store: Store) -> dict[str, str]:
    """What the operations app's /healthz answers now."""

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=ops_app(store))
        async with httpx.AsyncClient(transport=transport, base_url="http://ops") as http:
            return await http.get("/healthz")

    found: dict[str, str] = asyncio.run(get()).json()
    return found


def test_a_done_folder_the_server_refuses_records_every_mail_and_says_so_once(
    store: Store, database_url: str, tmp_path: Path, dovecot: Dovecot
) -> None:
    account = dovecot.account()
    with inbound_world(store, tmp_path, CUSTOMERS) as world:
        deliver_answers(account, world.sink.received)
        account.deliver(stray(1))
        account.deliver(stray(2))
        env = {
            "env_file": None,
            "secret_key": "s" * 40,
            "inbound_mailbox_plaintext": True,
            "inbound_imap_url": account.url(),
            "inbound_mailbox_not_ours_folder": "reengage/not-ours",
        }
        # dovecot's separator is "/" and it refuses "." in a name: the folder cannot exist.
        refused = load_settings(**env, inbound_mailbox_done_folder="reengage.done")  # type: ignore[arg-type]
        world.service.mailbox = poller_from_settings(
            refused, store, world.handler.receive, world.service.clock
        )
        with capture_logs() as logs:
            reports = [world.service.poll_mailbox() for _ in range(3)]
        first = reports[0]
        assert first is not None and sum(first.recorded.values()) == 6  # none waits on another
        assert first.unmarked == 4 and first.error is None
        assert all(r is not None and r.duplicates == 4 and r.unmarked == 4 for r in reports[1:])
        events = [e["event"] for e in logs if e["event"].startswith("mailbox_")]
        assert events.count("mailbox_marking_failed") == 1  # once for the outage, not per poll
        assert "mailbox_poll_interrupted" not in events
        failed = next(e for e in logs if e["event"] == "mailbox_marking_failed")
        assert "REENGAGE_INBOUND_MAILBOX_DONE_FOLDER" in failed["error"]
        assert account.count("INBOX") == 4 and account.count("reengage/not-ours") == 2
        kinds = sorted(r.kind for r in store.responses.recent(NOW.replace(year=2000)))
        assert kinds == ["auto_reply", "bounce", "complaint", "reply"]  # each once

        assert metrics.REGISTRY.get_sample_value("reengage_mailbox_unmarked_mails") == 4
        health = healthz(store)
        assert health["status"] == "degraded" and "mailbox_marking_failed" in health["mailbox"]

        doctor_env = _settings(database_url, account.url(), tmp_path)
        doctor = cli(
            "doctor",
            cwd=tmp_path,
            env={**doctor_env, "REENGAGE_INBOUND_MAILBOX_DONE_FOLDER": "reengage.done"},
        )
        assert doctor.returncode == 1
        assert "FAIL inbound mailbox: REENGAGE_INBOUND_MAILBOX_DONE_FOLDER" in doctor.stdout
        polled = cli(  # for cron: says what it left, and exits 1 so cron mails a person
            "inbound",
            "poll",
            cwd=tmp_path,
            env={**doctor_env, "REENGAGE_INBOUND_MAILBOX_DONE_FOLDER": "reengage.done"},
        )
        assert polled.returncode == 1, polled.stdout + polled.stderr
        assert "4 mail(s) recorded but left in the mailbox" in polled.stdout
        assert "0 recorded" in polled.stdout and "duplicates 4" in polled.stdout
        assert "REENGAGE_INBOUND_MAILBOX_DONE_FOLDER" in polled.stdout

        # The setting fixed: the four are recognised by their receipts and only moved.
        fixed = load_settings(**env)  # type: ignore[arg-type]
        world.service.mailbox = poller_from_settings(
            fixed, store, world.handler.receive, world.service.clock
        )
        again = world.service.poll_mailbox()
        assert again is not None and again.duplicates == 4 and again.unmarked == 0
        assert sum(again.recorded.values()) == 0
    assert account.count("INBOX") == 0 and account.count("reengage/processed") == 4
    assert metrics.REGISTRY.get_sample_value("reengage_mailbox_unmarked_mails") == 0
    assert healthz(store).get("mailbox") is None


@pytest.mark.parametrize("folder", ["INBOX", "inbox", "Archive"])
def test_a_done_or_not_ours_folder_that_is_the_polled_one_is_a_configuration_error(
    folder: str,
) -> None:
    for setting in ("done_folder", "not_ours_folder"):
        settings = load_settings(
            env_file=None,
            secret_key="s" * 40,
            inbound_imap_url="imaps://u:p@mail.example.com/Archive",
            **{f"inbound_mailbox_{setting}": folder},  # type: ignore[arg-type]
        )
        with pytest.raises(ConfigError, match=f"REENGAGE_INBOUND_MAILBOX_{setting.upper()}"):
            mailbox_from_settings(settings)


def test_a_too_large_mail_stays_in_the_inbox_as_the_unmatched_list_says(
    store: Store, dovecot: Dovecot
) -> None:
    account = dovecot.account()
    account.deliver(stray(1))
    account.deliver(stray(2, size=20_000))
    url = parse_url(account.url(), "REENGAGE_INBOUND_IMAP_URL")
    options = MailboxOptions(not_ours_folder="reengage/not-ours", plaintext=True, timeout=10)
    handler = InboundHandler(store, lambda: NOW)

    def poll() -> None:
        MailboxPoller(
            store, lambda: open_mailbox(url, options), handler.receive, lambda: NOW, max_bytes=8000
        ).poll()

    poll()
    poll()  # a new process: the big one is not noted again
    rows, total = store.responses.unmatched(10)
    assert total == 2
    big = next(u for u in rows if u.reason == "too_large")
    assert "left there unread" in (big.detail or "")
    assert account.count("INBOX") == 1  # where the list says it is
    assert account.count("reengage/not-ours") == 1
    conn = account.imap()
    try:
        conn.select("INBOX", readonly=True)
        _, flags = conn.uid("FETCH", "1:*", "(FLAGS)")
    finally:
        conn.logout()
    assert b"\\Seen" not in flags[0]  # type: ignore[operator]  # unread for a person


def test_a_refused_or_reset_connection_is_said_in_words() -> None:
    closed = parse_url(f"imap://u:p@127.0.0.1:{free_port()}", "REENGAGE_INBOUND_IMAP_URL")
    with pytest.raises(MailboxError) as refused:
        open_mailbox(closed, MailboxOptions(plaintext=True, timeout=5))
    assert "connecting failed: connection refused" in str(refused.value)
    assert "111" not in str(refused.value)

    listener = socket.create_server(("127.0.0.1", 0))

    def reset() -> None:
        client, _ = listener.accept()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()  # an RST, not a FIN

    threading.Thread(target=reset, daemon=True).start()
    port = listener.getsockname()[1]
    resetting = dataclasses.replace(closed, port=port)
    try:
        with pytest.raises(MailboxError) as cut:
            open_mailbox(resetting, MailboxOptions(plaintext=True, timeout=5))
    finally:
        listener.close()
    assert "connection reset by the server" in str(cut.value)
    assert "104" not in str(cut.value)


def test_a_locked_database_is_one_clear_line_and_the_mail_stays(
    tmp_path: Path, dovecot: Dovecot
) -> None:
    account = dovecot.account()
    account.deliver(stray(1))
    store = Store.open(f"sqlite:///{tmp_path / 'locked.db'}", upgrade=True)
    try:
        with store.engine.connect() as conn:  # the pooled connection waits 0.2 s, not 30
            conn.exec_driver_sql("PRAGMA busy_timeout=200")
        holder = sa.create_engine(f"sqlite:///{tmp_path / 'locked.db'}")
        with holder.connect() as other:
            other.exec_driver_sql("BEGIN EXCLUSIVE")
            url = parse_url(account.url(), "REENGAGE_INBOUND_IMAP_URL")
            options = MailboxOptions(plaintext=True, timeout=10)
            handler = InboundHandler(store, lambda: NOW)
            poller = MailboxPoller(
                store,
                lambda: open_mailbox(url, options),
                handler.receive,
                lambda: NOW,
                max_bytes=1 << 20,
            )
            with pytest.raises(StoreError) as locked:
                poller.poll()
            other.exec_driver_sql("ROLLBACK")
        holder.dispose()
    finally:
        store.close()
    message = str(locked.value)
    assert "\n" not in message and "SELECT" not in message and "INSERT" not in message
    assert "database is locked" in message and "next poll" in message
    assert account.count("INBOX") == 1


@pytest.mark.alone  # it times an exit against the grace
def test_sigterm_during_a_long_poll_stops_between_mails_within_the_grace(
    dovecot: Dovecot, tmp_path: Path
) -> None:
    # One backend: how a poll stops is the scheduler's; the receipts on both backends are
    # what the SIGKILL test in test_inbound_mailbox.py checks. A daemon takes ~15 s here.
    database_url = f"sqlite:///{tmp_path / 'run.db'}"
    store = Store.open(database_url, upgrade=True)
    try:
        _sigterm_mid_poll(store, database_url, dovecot, tmp_path)
    finally:
        store.close()


def _sigterm_mid_poll(store: Store, database_url: str, dovecot: Dovecot, tmp_path: Path) -> None:
    account = dovecot.account()
    total = 200
    for n in range(total):
        account.deliver(stray(n))
    settings = {
        **_settings(database_url, account.url(), tmp_path),
        "REENGAGE_INBOUND_MAILBOX_POLL_SECONDS": "5",
        "REENGAGE_SHUTDOWN_GRACE_SECONDS": "4",
        "REENGAGE_HTTP_PORT": "0",
        "REENGAGE_OPS_PORT": "0",
        "REENGAGE_SMTP_PORT": str(free_port()),
        "REENGAGE_SPOOL_DIR": str(tmp_path / "spool"),
    }
    log = tmp_path / "run.log"
    with log.open("wb") as sink:
        child = subprocess.Popen(
            [REENGAGE, "run"], env=child_env(**settings), stdout=sink, stderr=sink
        )
        try:
            deadline = time.monotonic() + 30
            while stored(store)[2] < 5 and time.monotonic() < deadline and child.poll() is None:
                time.sleep(0.01)
            child.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            code = child.wait(15)
            took = time.monotonic() - signalled
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGKILL)
    output = log.read_text(errors="replace")
    at_exit = stored(store)[2]
    assert code == 0, output[-3000:]
    assert took < 4, f"exit {took:.1f} s after SIGTERM, grace 4 s"
    assert 5 <= at_exit < total, f"stopped after {at_exit} of {total}: not mid-poll"
    assert "Traceback" not in output and "Error running job" not in output, output[-3000:]
    events = [json.loads(line)["event"] for line in output.splitlines() if line.startswith("{")]
    assert "service_stopped" in events
    assert not {"mailbox_polled", "mailbox_poll_stopped"} & set(
        events[events.index("service_stopped") :]
    )  # nothing of the poll after the service said it stopped

    again = cli("inbound", "poll", cwd=tmp_path, env=settings)  # the rest, next time
    assert again.returncode == 0, again.stderr
    assert stored(store) == (total, total, total)  # every mail once
    assert account.count("INBOX") == 0


def private_ca_server(tmp_path: Path, target: int) -> tuple[int, Path, socket.socket]:
    """A TLS front (a certificate of a private CA, for 127.0.0.1) to dovecot's plain IMAP
    port: what imaps:// to a company's own mail server looks like. Returns its port, the CA
    file a person would give SSL_CERT_FILE, and the listener to close."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Private Test CA")])
    cert = (  # its own CA; a fixed, wide validity: no dependence on the wall clock
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(datetime(2000, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2999, 1, 1, tzinfo=UTC))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    ca, pem_key = tmp_path / "private-ca.pem", tmp_path / "server.key"
    ca.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem_key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(ca, pem_key)
    listener = socket.create_server(("127.0.0.1", 0))

    def pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := src.recv(4096):
                dst.sendall(chunk)
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.close()

    def serve() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                secure = context.wrap_socket(client, server_side=True)
            except (OSError, ssl.SSLError):  # the client refused our certificate
                client.close()
                continue
            server = socket.create_connection(("127.0.0.1", target))
            threading.Thread(target=pipe, args=(secure, server), daemon=True).start()
            threading.Thread(target=pipe, args=(server, secure), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1], ca, listener


def test_ssl_cert_file_makes_a_private_ca_trusted_for_imaps(
    dovecot: Dovecot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = dovecot.account()
    account.deliver(stray(1))
    port, ca, listener = private_ca_server(tmp_path, dovecot.imap_port)
    try:
        url = parse_url(account.url("imaps"), "REENGAGE_INBOUND_IMAP_URL")
        url = dataclasses.replace(url, port=port)
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        with pytest.raises(MailboxError, match=r"TLS failed while connecting.*certificate verify"):
            open_mailbox(url, MailboxOptions(timeout=5))
        monkeypatch.setenv("SSL_CERT_FILE", str(ca))  # as README says, for a private CA
        box = open_mailbox(url, MailboxOptions(timeout=5))
        try:
            assert len(box.items()) == 1
        finally:
            box.close()
    finally:
        listener.close()
