"""One exception tree for everything reengage raises on purpose.

    ReengageError                 anything reengage reports to a person
    ├── ConfigError               a setting is missing or malformed (names the variable)
    ├── StoreError                the database refused or is unreachable (wraps the driver error)
    │   ├── DatabaseUnreachable   no connection could be made (names the URL and the fix)
    │   └── MigrationError        the schema is behind, ahead, or a migration failed
    ├── InputError                a file or request a person supplied is unusable as a whole
    │   ├── RowError              one row of it is bad; the rest still count
    │   └── NotFound              a customer or step a person named does not exist
    ├── TemplateFailure           a template cannot be rendered for one customer (file:line)
    ├── MailboxError              the inbound mailbox (IMAP, POP3) refused or went away
    │   └── MarkRefused           it refused to move, flag or delete one mail (it answered)
    └── WindowNeverOpens          a send window with no open moment within a year

Wrap a driver's exception with ``raise StoreError(...) from exc`` so the cause survives.
Every message names the thing and the fix.
"""

from __future__ import annotations


class ReengageError(Exception):
    """Base of every error reengage raises deliberately; its message is for a person."""


class ConfigError(ReengageError):
    """A setting is missing or malformed; the message names the variable and the fix."""


class StoreError(ReengageError):
    """The database could not do what was asked."""


class DatabaseUnreachable(StoreError):
    """No connection to the database could be made: down, refused, no answer, or the URL's
    credentials or database name refused. The message names the URL without its password."""


class MigrationError(StoreError):
    """The database schema is not at the version this code expects."""


class InputError(ReengageError):
    """A whole input (file, request body) cannot be used; nothing from it was applied."""


class RowError(InputError):
    """One record of an input is bad: names the field and the problem."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class NotFound(InputError):
    """A customer, campaign or step a person named does not exist; the message says which."""


class MailboxError(ReengageError):
    """The inbound mailbox could not be read or marked; the message names the setting."""


class MarkRefused(MailboxError):
    """The mailbox answered but would not move, flag or delete a mail: the others go on."""


class TemplateFailure(ReengageError):
    """A template could not be rendered for one customer: where, and what to change.

    ``reengage validate`` finds these before a campaign goes live; at send time the mail is
    marked failed with this message and every other mail still goes.
    """

    def __init__(self, file: str, line: int, problem: str) -> None:
        super().__init__(f"{file}:{line}: {problem}")
        self.file = file
        self.line = line
        self.problem = problem


class WindowNeverOpens(ReengageError):
    """A send window never opens within a year (validation refuses such a campaign)."""
