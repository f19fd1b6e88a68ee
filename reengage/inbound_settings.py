"""The settings of what comes back: inbound mail (an SMTP listener or a mailbox) and the
providers' webhooks. Part of :class:`reengage.config.Settings` (``REENGAGE_<NAME>`` like
every other setting), kept apart so neither file grows past reading."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, SecretStr, field_validator


class MailboxDone(StrEnum):
    """What becomes of an inbound mailbox's mail once it is recorded (IMAP)."""

    MOVE = "move"
    FLAG = "flag"
    DELETE = "delete"


class InboundSettings(BaseModel):
    """Inbound mail and webhook settings (see the README's Responses section)."""

    webhook_token: SecretStr | None = Field(
        None, description="bearer token an email provider's webhooks present; unset: off"
    )
    ses_topic_arns: str | None = Field(
        None,
        description="comma-separated SNS TopicArns whose signed SES notifications "
        "/api/v1/events/ses accepts; unset: off",
    )
    sendgrid_webhook_key: str | None = Field(
        None,
        description="SendGrid's signed Event Webhook verification key (base64 DER); "
        "unset: /api/v1/events/sendgrid is off",
    )
    postmark_webhook_auth: SecretStr | None = Field(
        None,
        description="USER:PASSWORD Postmark puts in the webhook URL (HTTP basic auth); "
        "unset: /api/v1/events/postmark is off",
    )
    mailgun_signing_key: SecretStr | None = Field(
        None, description="Mailgun's webhook signing key; unset: /api/v1/events/mailgun is off"
    )

    inbound_host: str = Field("127.0.0.1", description="where the inbound SMTP listener binds")
    inbound_port: int = Field(
        0, ge=0, le=65535, description="inbound SMTP for bounces and replies; 0: off"
    )
    inbound_domain: str | None = Field(
        None,
        description="domain whose MX points at the inbound listener; bounces and replies "
        "go to bounces+TOKEN.SIGNATURE@ and reply+TOKEN@ it",
    )
    complaint_reporters: str | None = Field(
        None,
        description="comma-separated domains of your feedback-loop providers: a complaint "
        "DKIM-signed by one (or a subdomain) acts wherever it arrives",
    )
    soft_bounce_limit: int = Field(
        3, ge=1, le=100, description="soft bounces within 30 days that suppress an address"
    )
    inbound_max_bytes: int = Field(
        4 * 1024 * 1024,
        ge=64 * 1024,
        le=50 * 1024 * 1024,
        description="largest inbound mail accepted (552 above it); a bounce quoting one of "
        "our mails (at most 1 MB) fits",
    )
    inbound_max_recipients: int = Field(
        20, ge=1, le=1000, description="recipients per inbound mail; more are refused with 452"
    )
    inbound_max_connections: int = Field(
        20, ge=1, le=1000, description="inbound SMTP connections at once; more get 421"
    )
    inbound_max_connections_per_client: int = Field(
        5,
        ge=1,
        le=1000,
        description="inbound SMTP connections at once from one address; more get 421 (one "
        "sender cannot take every place from the others)",
    )
    inbound_processing_seconds: float = Field(
        30, ge=1, le=600, description="time to classify and record one inbound mail; then 451"
    )
    inbound_imap_url: SecretStr | None = Field(
        None,
        description="a mailbox instead of an MX: imaps://user:password@host:993/INBOX "
        "(imap:// must offer STARTTLS); polled, each mail recorded as the listener would",
    )
    inbound_pop3_url: SecretStr | None = Field(
        None, description="or a POP3 mailbox: pop3s://user:password@host:995 (mails deleted)"
    )
    inbound_mailbox_poll_seconds: int = Field(
        60, ge=5, le=86_400, description="how often the daemon reads the inbound mailbox"
    )
    inbound_mailbox_done: MailboxDone = Field(
        MailboxDone.MOVE,
        description="IMAP: a recorded mail of ours is moved (to the folder below), flagged "
        "(read, keyword $Reengage) or deleted; POP3 always deletes it",
    )
    inbound_mailbox_done_folder: str = Field(
        "reengage/processed", min_length=1, description="IMAP folder recorded mails move to"
    )
    inbound_mailbox_not_ours_folder: str = Field(
        "",
        description="IMAP folder for mail naming no mail of ours; empty: left where it is "
        "(keyword $Reengage); never deleted",
    )
    inbound_mailbox_plaintext: bool = Field(
        False, description="imap:// or pop3:// without TLS: only to a server on this machine"
    )

    @field_validator("inbound_imap_url", "inbound_pop3_url", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        # `REENGAGE_INBOUND_IMAP_URL=` in a .env file means no mailbox, not an empty URL.
        return None if isinstance(value, str) and not value.strip() else value
