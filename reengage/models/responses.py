"""Responses: what happened after a send, the replies people wrote, and inbound mail that
names no message of ours."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from reengage.models.base import UTCDateTime


class ResponseKind(StrEnum):
    """What a customer (or their mail server) did after a mail."""

    OPEN = "open"
    CLICK = "click"
    UNSUBSCRIBE = "unsubscribe"
    PAUSE = "pause"
    BOUNCE = "bounce"  # permanent: the address is suppressed
    SOFT_BOUNCE = "soft_bounce"  # temporary (mailbox full, delayed)
    COMPLAINT = "complaint"  # marked as spam (ARF feedback loop or a provider's webhook)
    REPLY = "reply"
    AUTO_REPLY = "auto_reply"  # out of office and friends: recorded, changes nothing
    DELIVERED = "delivered"  # a provider confirmed delivery
    CONVERSION = "conversion"  # an activity after enrollment, attributed to the campaign


class Response(SQLModel, table=True):
    """One thing that happened after a send: the raw material of funnels and lift."""

    __tablename__ = "responses"
    __table_args__ = (
        sa.Index("ix_responses_message", "message_id", "kind"),
        sa.Index("ix_responses_campaign", "campaign_id", "kind", "occurred_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    message_id: int | None = Field(default=None, foreign_key="messages.id", ondelete="SET NULL")
    enrollment_id: int | None = Field(
        default=None, foreign_key="enrollments.id", ondelete="SET NULL", index=True
    )
    customer_id: int | None = Field(
        default=None, foreign_key="customers.id", ondelete="CASCADE", index=True
    )
    campaign_id: str | None = Field(default=None, max_length=63)
    step_key: str | None = Field(default=None, max_length=63)
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    source: str = Field(max_length=16)  # web, mail, webhook, import
    detail: str | None = Field(default=None, max_length=500)  # URL, diagnostic, feedback type
    value: float | None = None  # a conversion's order value
    # A provider's event id or an activity's key: a repeat of the same event is ignored.
    dedupe_key: str | None = Field(default=None, max_length=200, unique=True)


class Reply(SQLModel, table=True):
    """A person's answer to a mail, kept for their rep with the quoted history stripped."""

    __tablename__ = "replies"
    # A rep's customers' waiting replies, for their list (migration 0007).
    __table_args__ = (
        sa.Index("ix_replies_customer_status", "customer_id", "status", "received_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    message_id: int | None = Field(default=None, foreign_key="messages.id", ondelete="SET NULL")
    customer_id: int | None = Field(
        default=None, foreign_key="customers.id", ondelete="CASCADE", index=True
    )
    campaign_id: str | None = Field(default=None, max_length=63)
    sender: str = Field(max_length=320)
    subject: str = Field(max_length=300)
    text: str = Field(sa_type=sa.Text)
    automatic: bool = False  # an out-of-office: shown, never acted on
    status: str = Field(default="new", max_length=16)  # new → seen by the rep
    received_at: datetime = Field(sa_type=UTCDateTime)


class InboundUnmatched(SQLModel, table=True):
    """A bounce, complaint, unsubscribe or reply that names no message of ours (or names
    one but another address): kept for the operator to review, never acted on."""

    __tablename__ = "inbound_unmatched"

    id: int | None = Field(default=None, primary_key=True)
    received_at: datetime = Field(sa_type=UTCDateTime, index=True)
    source: str = Field(max_length=16)  # mail, webhook
    kind: str = Field(max_length=16)  # bounce, soft_bounce, complaint, unsubscribe, reply
    reason: str = Field(max_length=32)  # no_message, other_address, bad_signature, not_verp, …
    message_id: int | None = Field(default=None, foreign_key="messages.id", ondelete="SET NULL")
    sender: str = Field(default="", max_length=320)
    subject: str = Field(default="", max_length=300)
    addresses: str = Field(default="", max_length=500)  # the addresses it named, cut short
    detail: str | None = Field(default=None, max_length=500)
    # A provider's event id: a webhook retried is kept once, like a response.
    dedupe_key: str | None = Field(default=None, max_length=200, unique=True)


class InboundMail(SQLModel, table=True):
    """A mail read from a mailbox (IMAP, POP3) and recorded: written in the same transaction
    as what the mail did, so a mail read again (the poller stopped before it could mark it)
    is recognised and never recorded twice."""

    __tablename__ = "inbound_mails"

    id: int | None = Field(default=None, primary_key=True)
    # "sha256:" and the hex digest of the mail's bytes, or the mailbox's own id of a mail
    # too large to read ("big:" + the mailbox and its id there).
    key: str = Field(max_length=200, unique=True)
    received_at: datetime = Field(sa_type=UTCDateTime, index=True)
    source: str = Field(max_length=16)  # imap, pop3
    outcome: str = Field(default="", max_length=48)  # kind/action, e.g. bounce/suppressed
    ours: bool = False  # it named a mail of ours: marked done, else left or moved aside


class WebhookToken(SQLModel, table=True):
    """A signature's one-time token a provider's webhook came with (Mailgun's signs the
    token, not the event), and the event it came with: shared by every process answering
    webhooks, so a token replayed with another event is refused wherever it lands."""

    __tablename__ = "webhook_tokens"

    provider: str = Field(primary_key=True, max_length=16)
    token: str = Field(primary_key=True, max_length=200)
    event: str = Field(default="", max_length=200)
    seen_at: datetime = Field(sa_type=UTCDateTime, index=True)
