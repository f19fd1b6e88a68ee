"""The inbound mailbox, for operators who cannot point an MX at reengage: IMAP (``imap``)
and POP3 (``pop3``) behind the one small interface (``box``) the poller
(:mod:`reengage.mailbox_poll`) uses.

A mailbox is a URL: ``imaps://user:password@host:993/INBOX`` or ``pop3s://user:password@host``
(characters like ``@ : /`` in the user or password percent-encoded). ``imaps://`` and
``pop3s://`` speak TLS from the first byte; ``imap://`` and ``pop3://`` must upgrade with
STARTTLS (STLS), the certificate checked, unless plain text is allowed, which it is only for
a server on this machine (loopback), where no password crosses a network.
"""

from __future__ import annotations

from reengage.mailbox.box import (
    DONE_MODES,
    KEYWORD,
    Item,
    Mailbox,
    MailboxOptions,
    MailboxUrl,
    is_loopback,
    parse_url,
)
from reengage.mailbox.imap import ImapMailbox
from reengage.mailbox.pop3 import Pop3Mailbox

__all__ = [
    "DONE_MODES",
    "KEYWORD",
    "ImapMailbox",
    "Item",
    "Mailbox",
    "MailboxOptions",
    "MailboxUrl",
    "Pop3Mailbox",
    "is_loopback",
    "open_mailbox",
    "parse_url",
]


def open_mailbox(url: MailboxUrl, options: MailboxOptions) -> Mailbox:
    """Connect and sign in; a refusal is a :class:`MailboxError` naming the setting."""
    options.check(url)
    if url.protocol == "imap":
        return ImapMailbox(url, options)
    return Pop3Mailbox(url, options)
