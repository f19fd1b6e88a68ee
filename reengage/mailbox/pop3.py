"""A POP3 mailbox (poplib): mails are listed with their UIDL, read, and deleted (DELE) once
recorded; the deletions take effect at QUIT, so a connection lost midway deletes nothing."""

from __future__ import annotations

import contextlib
import poplib
import ssl

from reengage.errors import MailboxError
from reengage.mailbox.box import (
    PLAINTEXT_SETTING,
    Item,
    MailboxOptions,
    MailboxUrl,
    refused_login,
    talking,
)


class _Pop3Lines:
    """poplib reads lines of at most 2048 bytes; a mail may carry longer ones."""

    max_line = 2048

    def _getline(self) -> tuple[bytes, int]:
        line: bytes = self.file.readline(self.max_line + 1)  # type: ignore[attr-defined]
        if len(line) > self.max_line:
            raise poplib.error_proto("line too long")
        if not line:
            raise poplib.error_proto("-ERR EOF")
        if line[-2:] == b"\r\n":
            return line[:-2], len(line)
        if line[:1] == b"\r":
            return line[1:-1], len(line)
        return line[:-1], len(line)


class _POP3(_Pop3Lines, poplib.POP3):
    pass


class _POP3_SSL(_Pop3Lines, poplib.POP3_SSL):
    pass


class Pop3Mailbox:
    """A POP3 mailbox: mails are read, and deleted (DELE) once recorded."""

    source = "pop3"
    problems: list[str] = []  # noqa: RUF012  # POP3 has no folders to be wrong about

    def __init__(self, url: MailboxUrl, options: MailboxOptions, max_line: int = 1 << 20) -> None:
        self.url, self.options = url, options
        context = ssl.create_default_context()
        with talking(url, "connecting"):
            if url.scheme == "pop3s":
                self.conn: poplib.POP3 = _POP3_SSL(
                    url.host, url.port, context=context, timeout=options.timeout
                )
            else:
                self.conn = _POP3(url.host, url.port, timeout=options.timeout)
            self.conn.max_line = max_line
        try:
            with talking(url, "signing in"):
                if url.scheme == "pop3" and not options.plaintext:
                    if "STLS" not in self.conn.capa():
                        raise MailboxError(
                            f"{url.setting}: {url.host} offers no STLS, so the password "
                            f"would cross the network in clear: use pop3s://, or for a "
                            f"server on this machine set {PLAINTEXT_SETTING}=true"
                        )
                    self.conn.stls(context)
                try:
                    self.conn.user(url.user)
                    self.conn.pass_(url.password)
                except poplib.error_proto as exc:
                    raise refused_login(url, exc) from exc
        except BaseException:
            self.close()
            raise

    def items(self) -> list[Item]:
        with talking(self.url, "listing the mails"):
            _, uidls, _ = self.conn.uidl()
            _, sizes, _ = self.conn.list()
        size_of = dict(line.split()[:2] for line in sizes if len(line.split()) >= 2)
        found = []
        for line in uidls:
            number, _, uidl = line.decode("ascii", "replace").partition(" ")
            size = int(size_of.get(number.encode(), b"0"))
            found.append(Item(number, f"{self.url.host}/{self.url.user}:{uidl.strip()}", size))
        return found

    def fetch(self, item: Item) -> bytes | None:
        with talking(self.url, f"fetching mail {item.ref}"):
            _, lines, _ = self.conn.retr(int(item.ref))
        return b"\r\n".join(lines) + b"\r\n"

    def done(self, item: Item) -> None:
        with talking(self.url, f"deleting mail {item.ref}"):
            self.conn.dele(int(item.ref))

    def leave(self, item: Item) -> None:
        return  # POP3 has no folders or flags: the mail stays where it is

    def keep(self, item: Item) -> None:
        return  # nor can it be flagged: the poller remembers it while it runs

    def close(self) -> None:
        try:
            self.conn.quit()  # the deletions take effect now, or (if it fails) never
        except Exception:  # a connection already gone: its deletions did not happen
            with contextlib.suppress(Exception):  # nothing more to release
                self.conn.close()
