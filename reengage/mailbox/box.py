"""What every mailbox shares: its URL, what is done with its mails (the options), one
waiting mail (``Item``), the interface the poller reads through (``Mailbox``), and how a
protocol library's failure becomes a :class:`MailboxError` naming the setting."""

from __future__ import annotations

import errno
import imaplib
import ipaddress
import os
import poplib
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote, urlsplit

from reengage.errors import ConfigError, MailboxError

KEYWORD = "$Reengage"  # on every IMAP mail handled: the next poll's search leaves it out
DONE_MODES = ("move", "flag", "delete")
_PORTS = {"imap": 143, "imaps": 993, "pop3": 110, "pop3s": 995}
PLAINTEXT_SETTING = "REENGAGE_INBOUND_MAILBOX_PLAINTEXT"
DONE_FOLDER_SETTING = "REENGAGE_INBOUND_MAILBOX_DONE_FOLDER"
NOT_OURS_FOLDER_SETTING = "REENGAGE_INBOUND_MAILBOX_NOT_OURS_FOLDER"


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
        if url.protocol == "imap":
            if self.done == "move" and not self.done_folder:
                raise ConfigError(
                    f"{DONE_FOLDER_SETTING} is empty: name the folder recorded mail is moved "
                    "to (e.g. reengage/processed), or set REENGAGE_INBOUND_MAILBOX_DONE=flag"
                )
            for folder, setting in self.folders():
                _check_folder(folder, setting)
                if folder.upper() == "INBOX" or folder == url.folder:
                    raise ConfigError(
                        f"{setting}: {folder!r} is the folder being read ({url.setting}): "
                        "a mail moved there would be read again at every poll; name a "
                        "folder of its own, e.g. reengage/processed"
                    )
        if self.plaintext and not url.scheme.endswith("s") and not is_loopback(url.host):
            raise ConfigError(
                f"{PLAINTEXT_SETTING}: allowed only for a server on this machine; "
                f"{url.host} is not, and the password would cross the network in clear: "
                f"use {url.protocol}s:// or a server offering STARTTLS"
            )

    def folders(self) -> list[tuple[str, str]]:
        """The folders mail is moved to (IMAP), each with the setting naming it."""
        found = [(self.done_folder, DONE_FOLDER_SETTING)] if self.done == "move" else []
        if self.not_ours_folder:
            found.append((self.not_ours_folder, NOT_OURS_FOLDER_SETTING))
        return found


@dataclass(frozen=True)
class Item:
    """One mail waiting in the mailbox."""

    ref: str  # its IMAP UID, or its POP3 number in this session
    uid: str  # the mailbox's own lasting name for it (UIDVALIDITY:UID, or the POP3 UIDL)
    size: int


class Mailbox(Protocol):
    """The poller's view of a mailbox, signed in and open."""

    source: str  # imap or pop3
    problems: list[str]  # folders found unusable at sign-in, each naming its setting

    def items(self) -> list[Item]:
        """Mails not handled yet, oldest first."""

    def fetch(self, item: Item) -> bytes | None:
        """The mail's bytes, unchanged and unmarked; None when it vanished meanwhile."""

    def done(self, item: Item) -> None:
        """A recorded mail of ours: moved, flagged or deleted as the options say."""

    def leave(self, item: Item) -> None:
        """A mail that is not ours: left, or moved aside; never deleted."""

    def keep(self, item: Item) -> None:
        """A mail not read (too large): left where it is, unread, out of the next search."""

    def close(self) -> None:
        """Sign out (POP3: this is when deletions take effect); never raises."""


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
        raise MailboxError(f"{url.setting}: {url}: {doing} failed: {said(exc)}") from exc


def said(exc: BaseException) -> str:
    """What went wrong, in words: an OS error's meaning, never its bare number."""
    if isinstance(exc, OSError) and exc.errno is not None and not isinstance(exc, ssl.SSLError):
        if exc.errno == errno.ECONNRESET:
            return "connection reset by the server"
        return (exc.strerror or os.strerror(exc.errno)).lower()
    text = str(exc.args[0] if exc.args else exc)
    if text.startswith(("b'", 'b"')):
        text = text[2:-1]
    return text.strip()[:300] or type(exc).__name__


def refused_login(url: MailboxUrl, exc: BaseException) -> MailboxError:
    return MailboxError(
        f"{url.setting}: {url.host} refused the sign-in of {url.user!r} ({said(exc)}): "
        f"check the user name and password in {url.setting} (percent-encode @ : / in them)"
    )
