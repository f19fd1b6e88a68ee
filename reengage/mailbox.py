"""The inbound mailbox, for operators who cannot point an MX at reengage: IMAP (imaplib) and
POP3 (poplib) behind the one small interface the poller (:mod:`reengage.mailbox_poll`) uses.

A mailbox is a URL: ``imaps://user:password@host:993/INBOX`` or ``pop3s://user:password@host``
(characters like ``@ : /`` in the user or password percent-encoded). ``imaps://`` and
``pop3s://`` speak TLS from the first byte; ``imap://`` and ``pop3://`` must upgrade with
STARTTLS (STLS), the certificate checked, unless plain text is allowed, which it is only for
a server on this machine (loopback), where no password crosses a network.
"""

from __future__ import annotations

import contextlib
import imaplib
import ipaddress
import poplib
import re
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from reengage.errors import ConfigError, MailboxError

KEYWORD = "$Reengage"  # on every IMAP mail handled: the next poll's search leaves it out
DONE_MODES = ("move", "flag", "delete")
_PORTS = {"imap": 143, "imaps": 993, "pop3": 110, "pop3s": 995}
PLAINTEXT_SETTING = "REENGAGE_INBOUND_MAILBOX_PLAINTEXT"


@dataclass(frozen=True)
class MailboxUrl:
    """Where the mailbox is and how to sign in, read from ``setting``."""

    scheme: str  # imap, imaps, pop3, pop3s
    host: str
    port: int
    user: str
    password: str
    folder: str  # IMAP only; POP3 has the one mailbox
    setting: str

    @property
    def protocol(self) -> str:
        """``imap`` or ``pop3``."""
        return self.scheme.rstrip("s") if self.scheme != "imaps" else "imap"

    def __str__(self) -> str:  # never the password
        path = f"/{self.folder}" if self.protocol == "imap" else ""
        return f"{self.scheme}://{self.user}@{self.host}:{self.port}{path}"


def parse_url(url: str, setting: str) -> MailboxUrl:
    """Read a mailbox URL; a malformed one is a :class:`ConfigError` naming ``setting``."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in _PORTS:
        raise ConfigError(
            f"{setting}: {scheme or 'no scheme'}:// is not a mailbox; write "
            "imaps://user:password@host:993/INBOX (or imap://, pop3s://, pop3://)"
        )
    try:
        port = parts.port or _PORTS[scheme]
    except ValueError as exc:
        raise ConfigError(f"{setting}: the port is not a number from 1 to 65535") from exc
    if not parts.hostname or not parts.username or parts.password is None:
        raise ConfigError(
            f"{setting}: give the host, the user and the password, as in "
            f"{scheme}://user:password@mail.example.com"
        )
    folder = unquote(parts.path.lstrip("/")) or "INBOX"
    if scheme.startswith("pop3") and folder != "INBOX":
        raise ConfigError(f"{setting}: POP3 has one mailbox; leave the folder off the URL")
    _check_folder(folder, setting)
    user, password = unquote(parts.username), unquote(parts.password)
    return MailboxUrl(scheme, parts.hostname, port, user, password, folder, setting)


def _check_folder(name: str, setting: str) -> None:
    if not name or not name.isascii() or not name.isprintable() or '"' in name or "\\" in name:
        raise ConfigError(
            f"{setting}: folder {name!r}: use plain ASCII letters, digits, spaces, / . - _"
        )


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine (127.0.0.0/8, ::1 or localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class MailboxOptions:
    """What is done with each mail (the ``REENGAGE_INBOUND_MAILBOX_*`` settings)."""

    done: str = "move"  # a recorded mail of ours: move, flag (\\Seen + $Reengage) or delete
    done_folder: str = "reengage/processed"
    not_ours_folder: str = ""  # a mail naming no mail of ours: moved there; "" leaves it
    plaintext: bool = False
    timeout: float = 60.0

    def check(self, url: MailboxUrl) -> None:
        """Refuse a combination that would lose mail or leak the password."""
        if self.done not in DONE_MODES:
            raise ConfigError(
                f"REENGAGE_INBOUND_MAILBOX_DONE: {self.done!r}: choose move, flag or delete"
            )
        for folder, name in ((self.done_folder, "DONE"), (self.not_ours_folder, "NOT_OURS")):
            if folder:
                _check_folder(folder, f"REENGAGE_INBOUND_MAILBOX_{name}_FOLDER")
        if self.plaintext and not url.scheme.endswith("s") and not is_loopback(url.host):
            raise ConfigError(
                f"{PLAINTEXT_SETTING}: allowed only for a server on this machine; "
                f"{url.host} is not, and the password would cross the network in clear: "
                f"use {url.protocol}s:// or a server offering STARTTLS"
            )


@dataclass(frozen=True)
class Item:
    """One mail waiting in the mailbox."""

    ref: str  # its IMAP UID, or its POP3 number in this session
    uid: str  # the mailbox's own lasting name for it (UIDVALIDITY:UID, or the POP3 UIDL)
    size: int


class Mailbox(Protocol):
    """The poller's view of a mailbox, signed in and open."""

    source: str  # imap or pop3

    def items(self) -> list[Item]:
        """Mails not handled yet, oldest first."""

    def fetch(self, item: Item) -> bytes | None:
        """The mail's bytes, unchanged and unmarked; None when it vanished meanwhile."""

    def done(self, item: Item) -> None:
        """A recorded mail of ours: moved, flagged or deleted as the options say."""

    def leave(self, item: Item) -> None:
        """A mail that is not ours (or too large): left, or moved aside; never deleted."""

    def close(self) -> None:
        """Sign out (POP3: this is when deletions take effect); never raises."""


def open_mailbox(url: MailboxUrl, options: MailboxOptions) -> Mailbox:
    """Connect and sign in; a refusal is a :class:`MailboxError` naming the setting."""
    options.check(url)
    if url.protocol == "imap":
        return ImapMailbox(url, options)
    return Pop3Mailbox(url, options)


@contextmanager
def talking(url: MailboxUrl, doing: str) -> Iterator[None]:
    """Turn what the protocol libraries raise into a :class:`MailboxError` saying what
    failed, on which server, and the setting to look at."""
    try:
        yield
    except MailboxError:
        raise
    except ssl.SSLError as exc:
        raise MailboxError(f"{url.setting}: {url}: TLS failed while {doing}: {exc}") from exc
    except (imaplib.IMAP4.error, poplib.error_proto, OSError, EOFError) as exc:
        raise MailboxError(f"{url.setting}: {url}: {doing} failed: {_said(exc)}") from exc


def _said(exc: BaseException) -> str:
    text = str(exc.args[0] if exc.args else exc)
    if text.startswith(("b'", 'b"')):
        text = text[2:-1]
    return text.strip()[:300] or type(exc).__name__


def _refused_login(url: MailboxUrl, exc: BaseException) -> MailboxError:
    return MailboxError(
        f"{url.setting}: {url.host} refused the sign-in of {url.user!r} ({_said(exc)}): "
        f"check the user name and password in {url.setting} (percent-encode @ : / in them)"
    )


def _quote(name: str) -> str:
    return '"' + name + '"'  # folder names are checked: no quote or backslash in them


class ImapMailbox:
    """One folder of an IMAP server."""

    source = "imap"

    def __init__(self, url: MailboxUrl, options: MailboxOptions) -> None:
        self.url, self.options = url, options
        context = ssl.create_default_context()
        with talking(url, "connecting"):
            if url.scheme == "imaps":
                self.conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                    url.host, url.port, ssl_context=context, timeout=options.timeout
                )
            else:
                self.conn = imaplib.IMAP4(url.host, url.port, timeout=options.timeout)
                if not options.plaintext:
                    if "STARTTLS" not in self.conn.capabilities:
                        raise MailboxError(
                            f"{url.setting}: {url.host} offers no STARTTLS, so the password "
                            f"would cross the network in clear: use imaps://, or for a "
                            f"server on this machine set {PLAINTEXT_SETTING}=true"
                        )
                    self.conn.starttls(context)
        try:
            with talking(url, "signing in"):
                try:
                    self.conn.login(url.user, url.password)
                except imaplib.IMAP4.error as exc:
                    raise _refused_login(url, exc) from exc
                self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        typ, data = self.conn.capability()
        self.caps = set(data[0].decode().upper().split()) if data and data[0] else set()
        typ, data = self.conn.list('""', '""')
        first = data[0] if data and isinstance(data[0], bytes) else b""
        found = re.search(rb'\) (?:"(.)"|NIL)', first)
        separator = found.group(1).decode() if found and found.group(1) else "/"
        self.done_folder = self.options.done_folder.replace("/", separator)
        self.not_ours_folder = self.options.not_ours_folder.replace("/", separator)
        for folder in (
            self.done_folder if self.options.done == "move" else "",
            self.not_ours_folder,
        ):
            if folder:
                self.conn.create(_quote(folder))  # NO when it exists already: fine
        typ, data = self.conn.select(_quote(self.url.folder))
        if typ != "OK":
            raise MailboxError(
                f"{self.url.setting}: cannot open folder {self.url.folder!r} on "
                f"{self.url.host} ({_said(MailboxError(data[0] if data else ''))}): name an "
                "existing folder after the host, e.g. /INBOX"
            )
        _, validity = self.conn.response("UIDVALIDITY")
        self.validity = (validity[0] or b"0").decode() if validity else "0"

    def items(self) -> list[Item]:
        with talking(self.url, "listing the mails"):
            typ, data = self.conn.uid("SEARCH", "UNKEYWORD", KEYWORD)
            self._ok(typ, data, "searching")
            uids = data[0].split() if data and data[0] else []
            sizes: dict[str, int] = {}
            for start in range(0, len(uids), 500):
                chunk = b",".join(uids[start : start + 500]).decode()
                typ, data = self.conn.uid("FETCH", chunk, "(RFC822.SIZE)")
                self._ok(typ, data, "reading sizes")
                for line in data:
                    text = line if isinstance(line, bytes) else line[0]
                    uid, size = re.search(rb"UID (\d+)", text), re.search(rb"SIZE (\d+)", text)
                    if uid and size:
                        sizes[uid.group(1).decode()] = int(size.group(1))
        where = f"{self.url.host}/{self.url.user}/{self.url.folder}:{self.validity}"
        return [
            Item(uid, f"{where}:{uid}", size)
            for uid, size in sorted(sizes.items(), key=lambda kv: int(kv[0]))
        ]

    def fetch(self, item: Item) -> bytes | None:
        with talking(self.url, f"fetching mail {item.ref}"):
            typ, data = self.conn.uid("FETCH", item.ref, "(BODY.PEEK[])")
            self._ok(typ, data, "fetching")
        for part in data:
            if isinstance(part, tuple) and len(part) == 2:
                body: bytes = part[1]
                return body
        return None  # expunged by another client since the listing

    def done(self, item: Item) -> None:
        mode = self.options.done
        with talking(self.url, f"marking mail {item.ref} ({mode})"):
            if mode == "move":
                self._move(item, self.done_folder)
            elif mode == "flag":
                self._store(item, f"(\\Seen {KEYWORD})")
            else:
                self._store(item, f"(\\Deleted {KEYWORD})")
                if "UIDPLUS" in self.caps:  # expunge this one only, never another's \\Deleted
                    self._ok(*self.conn.uid("EXPUNGE", item.ref), "expunging")

    def leave(self, item: Item) -> None:
        with talking(self.url, f"setting aside mail {item.ref}"):
            if self.not_ours_folder:
                self._move(item, self.not_ours_folder)
            else:
                self._store(item, f"({KEYWORD})")  # unread stays unread for a person

    def _move(self, item: Item, folder: str) -> None:
        if "MOVE" in self.caps:
            self._ok(*self.conn.uid("MOVE", item.ref, _quote(folder)), "moving")
            return
        self._ok(*self.conn.uid("COPY", item.ref, _quote(folder)), "copying")
        self._store(item, f"(\\Deleted {KEYWORD})")
        if "UIDPLUS" in self.caps:
            self._ok(*self.conn.uid("EXPUNGE", item.ref), "expunging")

    def _store(self, item: Item, flags: str) -> None:
        self._ok(*self.conn.uid("STORE", item.ref, "+FLAGS.SILENT", flags), "flagging")

    def _ok(self, typ: str, data: Any, doing: str) -> None:
        if typ != "OK":
            raise MailboxError(f"{self.url.setting}: {self.url}: {doing} refused: {data!r:.300}")

    def close(self) -> None:
        try:
            self.conn.logout()
        except Exception:  # a connection already gone: nothing to sign out of, only to close
            with contextlib.suppress(Exception):
                self.conn.shutdown()


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
                    raise _refused_login(url, exc) from exc
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

    def close(self) -> None:
        try:
            self.conn.quit()  # the deletions take effect now, or (if it fails) never
        except Exception:  # a connection already gone: its deletions did not happen
            with contextlib.suppress(Exception):  # nothing more to release
                self.conn.close()
