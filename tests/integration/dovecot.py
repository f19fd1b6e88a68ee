"""Debian's dovecot on loopback, for the inbound mailbox tests: IMAP and POP3 on free ports,
a passwd-file of users made at start, one per test (each its own empty maildir), no TLS (the
client allows plain text to loopback only). Started once per test module; run as root (the
mail is owned by ``nobody``) or as a normal user (everything runs as that user)."""

from __future__ import annotations

import contextlib
import imaplib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import IN_CI
from tests.integration.smtp_sink import free_port

DOVECOT = Path("/usr/sbin/dovecot")
ACCOUNTS = 30  # users made at start, one for each test that asks


@dataclass(frozen=True)
class Account:
    """One mailbox user on the server."""

    server: Dovecot
    user: str
    password: str
    maildir: Path

    def url(self, scheme: str = "imap", password: str | None = None) -> str:
        port = self.server.imap_port if scheme.startswith("imap") else self.server.pop3_port
        return f"{scheme}://{self.user}:{password or self.password}@127.0.0.1:{port}"

    def deliver(self, raw: bytes, *, delivered_to: str | None = None) -> None:
        """Put a mail into the inbox as a local delivery agent would (Maildir new/, with
        the Delivered-To trace header Postfix and dovecot-lda write)."""
        if delivered_to:
            raw = f"Delivered-To: {delivered_to}\r\n".encode() + raw
        name = f"{time.time_ns()}.{secrets.token_hex(6)}.reengage-test"
        tmp, new = self.maildir / "tmp" / name, self.maildir / "new" / name
        tmp.write_bytes(raw)
        self.server.own(tmp)
        tmp.rename(new)

    def imap(self) -> imaplib.IMAP4:
        conn = imaplib.IMAP4("127.0.0.1", self.server.imap_port, timeout=10)
        conn.login(self.user, self.password)
        return conn

    def count(self, folder: str = "INBOX") -> int:
        """How many mails a folder holds (0 for a folder that does not exist)."""
        conn = self.imap()
        try:
            typ, data = conn.select(f'"{folder}"', readonly=True)
            return int(data[0] or 0) if typ == "OK" else 0
        finally:
            conn.logout()


class Dovecot:
    """A running dovecot and its temporary home."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.imap_port, self.pop3_port = free_port(), free_port()
        self.passwd = root / "passwd"
        if os.geteuid() == 0:  # dovecot gives no mail to root: the mail belongs to nobody
            owner = pwd.getpwnam("nobody")
            self.uid, self.gid = owner.pw_uid, owner.pw_gid
            login_user, internal_user = "dovenull", "dovecot"
        else:
            self.uid, self.gid = os.getuid(), os.getgid()
            login_user = internal_user = pwd.getpwuid(self.uid).pw_name
        (root / "dovecot.conf").write_text(
            _CONFIG.format(
                root=root,
                imap=self.imap_port,
                pop3=self.pop3_port,
                login_user=login_user,
                internal_user=internal_user,
                first_uid=min(self.uid, 100) or 1,
            )
        )
        self.process: subprocess.Popen[bytes] | None = None
        self._accounts: list[Account] = []
        self._add_accounts(ACCOUNTS)

    def own(self, path: Path) -> None:
        if os.geteuid() == 0:
            os.chown(path, self.uid, self.gid)

    def account(self) -> Account:
        """A user of its own with an empty inbox (made before the server started: dovecot
        may not notice a passwd-file changed twice within a second)."""
        return self._accounts.pop()

    def _add_accounts(self, count: int) -> None:
        lines = []
        for _ in range(count):
            user, password = f"u{secrets.token_hex(4)}", secrets.token_urlsafe(12)
            home = self.root / "mail" / user
            maildir = home / "Maildir"
            for part in (home, maildir, *(maildir / d for d in ("cur", "new", "tmp"))):
                part.mkdir(parents=True, exist_ok=True)
                self.own(part)
            lines.append(f"{user}:{{PLAIN}}{password}:{self.uid}:{self.gid}::{home}\n")
            self._accounts.append(Account(self, user, password, maildir))
        self.passwd.write_text("".join(lines))

    def start(self) -> None:
        self.process = subprocess.Popen(
            [str(DOVECOT), "-F", "-c", str(self.root / "dovecot.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,  # it writes to its log_path
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dovecot exited: {self.log()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.pop3_port), timeout=1) as probe,
                socket.create_connection(("127.0.0.1", self.imap_port), timeout=1) as probe2,
            ):
                if probe.recv(100).startswith(b"+OK") and probe2.recv(100).startswith(b"* OK"):
                    return
            time.sleep(0.05)
        raise RuntimeError(f"dovecot did not answer within 15 s: {self.log()}")

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else "(no log)"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


_CONFIG = """\
protocols = imap pop3
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
ssl = no
auth_failure_delay = 0
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = {login_user}
default_internal_user = {internal_user}
first_valid_uid = {first_uid}
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {root}/passwd
}}
userdb {{
  driver = passwd-file
  args = {root}/passwd
}}
namespace inbox {{
  inbox = yes
  separator = /
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""


@contextlib.contextmanager
def running_dovecot() -> Iterator[Dovecot]:
    """Dovecot for a test module; skipped with a reason outside CI when it is missing."""
    if not DOVECOT.exists():
        reason = f"{DOVECOT} not found: the mailbox tests need Debian's dovecot-imapd, -pop3d"
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: .ci/run installs them; never skipped in CI)")
        pytest.skip(f"{reason} (apt-get install dovecot-imapd dovecot-pop3d)")
    root = Path(tempfile.mkdtemp(prefix="reengage-dovecot-"))
    root.chmod(0o755)  # the mail user (nobody, when run as root) walks into its home here
    server = Dovecot(root)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
