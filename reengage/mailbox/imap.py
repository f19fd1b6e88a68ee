"""One folder of an IMAP server (imaplib): listed, fetched unmarked, then moved, flagged or
deleted one mail at a time by UID, never touching another mail."""

from __future__ import annotations

import contextlib
import imaplib
import re
import ssl
from typing import Any

from reengage.errors import MailboxError, MarkRefused
from reengage.mailbox.box import (
    KEYWORD,
    PLAINTEXT_SETTING,
    Item,
    MailboxOptions,
    MailboxUrl,
    refused_login,
    said,
    talking,
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
        try:
            with talking(url, "signing in"):
                if url.scheme == "imap" and not options.plaintext:
                    if "STARTTLS" not in self.conn.capabilities:
                        raise MailboxError(
                            f"{url.setting}: {url.host} offers no STARTTLS, so the password "
                            f"would cross the network in clear: use imaps://, or for a "
                            f"server on this machine set {PLAINTEXT_SETTING}=true"
                        )
                    self.conn.starttls(context)
                try:
                    self.conn.login(url.user, url.password)
                except imaplib.IMAP4.error as exc:
                    raise refused_login(url, exc) from exc
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
        # A folder the server will not make (a name it refuses) is found now, not mail by
        # mail: each mail is still recorded, and the failure to move it names the setting.
        self.problems: list[str] = []
        self._unusable: dict[str, str] = {}
        for folder, setting in self.options.folders():
            folder = folder.replace("/", separator)
            typ, data = self.conn.create(_quote(folder))  # NO when it exists already: fine
            if typ != "OK" and not self._exists(folder):
                problem = (
                    f"{setting}: {self.url.host} will not make folder {folder!r} "
                    f"({said(MailboxError(data[0] if data else ''))}); its folders nest "
                    f"with {separator!r}: name one it accepts, e.g. reengage{separator}processed"
                )
                self.problems.append(problem)
                self._unusable[folder] = problem
        typ, data = self.conn.select(_quote(self.url.folder))
        if typ != "OK":
            raise MailboxError(
                f"{self.url.setting}: cannot open folder {self.url.folder!r} on "
                f"{self.url.host} ({said(MailboxError(data[0] if data else ''))}): name an "
                "existing folder after the host, e.g. /INBOX"
            )
        # A server that keeps no keywords of ours (no \* among its PERMANENTFLAGS) cannot
        # be told what was handled: such mails are read again each poll, and the receipts
        # say they were recorded.
        _, permanent = self.conn.response("PERMANENTFLAGS")
        self.keywords = any(b"\\*" in p for p in permanent if isinstance(p, bytes))
        _, validity = self.conn.response("UIDVALIDITY")
        self.validity = (validity[0] or b"0").decode() if validity else "0"

    def _exists(self, folder: str) -> bool:
        typ, data = self.conn.list('""', _quote(folder))
        return typ == "OK" and any(isinstance(line, bytes) and line for line in data)

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
                self._store(item, f"(\\Seen {KEYWORD})" if self.keywords else "(\\Seen)")
            else:
                self._store(item, f"(\\Deleted {KEYWORD})" if self.keywords else "(\\Deleted)")
                if "UIDPLUS" in self.caps:  # expunge this one only, never another's \\Deleted
                    self._ok(*self.conn.uid("EXPUNGE", item.ref), "expunging")

    def leave(self, item: Item) -> None:
        if self.not_ours_folder:
            with talking(self.url, f"setting aside mail {item.ref}"):
                self._move(item, self.not_ours_folder)
        else:
            self.keep(item)

    def keep(self, item: Item) -> None:
        if self.keywords:
            with talking(self.url, f"marking mail {item.ref} as seen by reengage"):
                self._store(item, f"({KEYWORD})")  # unread stays unread for a person

    def _move(self, item: Item, folder: str) -> None:
        if folder in self._unusable:
            raise MarkRefused(f"mail {item.ref} not moved: {self._unusable[folder]}")
        if "MOVE" in self.caps:
            self._ok(*self.conn.uid("MOVE", item.ref, _quote(folder)), "moving", MarkRefused)
            return
        self._ok(*self.conn.uid("COPY", item.ref, _quote(folder)), "copying", MarkRefused)
        self._store(item, f"(\\Deleted {KEYWORD})" if self.keywords else "(\\Deleted)")
        if "UIDPLUS" in self.caps:
            self._ok(*self.conn.uid("EXPUNGE", item.ref), "expunging")

    def _store(self, item: Item, flags: str) -> None:
        self._ok(*self.conn.uid("STORE", item.ref, "+FLAGS.SILENT", flags), "flagging", MarkRefused)

    def _ok(
        self, typ: str, data: Any, doing: str, refused: type[MailboxError] = MailboxError
    ) -> None:
        if typ == "NO" and b"EXPUNGEISSUED" in b" ".join(d for d in data if isinstance(d, bytes)):
            return  # another client removed the mail since we listed it: nothing left to mark
        if typ != "OK":
            raise refused(f"{self.url.setting}: {self.url}: {doing} refused: {data!r:.300}")

    def close(self) -> None:
        try:
            self.conn.logout()
        except Exception:  # a connection already gone: nothing to sign out of, only to close
            with contextlib.suppress(Exception):
                self.conn.shutdown()
