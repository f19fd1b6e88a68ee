"""The settings of what goes out: the SMTP server and its provider, DKIM, the send rates
and the sending pass's batch, tick and leases. Part of :class:`reengage.config.Settings`
(``REENGAGE_<NAME>`` like every other setting), kept apart as the inbound side's are."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, Field, SecretStr

from reengage.errors import ConfigError


class SmtpSecurity(StrEnum):
    """How the SMTP connection is protected."""

    NONE = "none"
    STARTTLS = "starttls"
    TLS = "tls"


class SmtpProvider(StrEnum):
    """The email provider behind the SMTP server, whose webhook reports need our message
    named in a header of its own (``none`` and ``ses`` need none)."""

    NONE = "none"
    SES = "ses"
    SENDGRID = "sendgrid"
    POSTMARK = "postmark"
    MAILGUN = "mailgun"


class OutboundSettings(BaseModel):
    """SMTP, DKIM and sending-pass settings (see the README's Configuration section)."""

    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(25, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_security: SmtpSecurity = SmtpSecurity.NONE
    smtp_provider: SmtpProvider = Field(
        SmtpProvider.NONE,
        description="sendgrid, postmark or mailgun: each mail names itself in that "
        "provider's metadata header, so its webhook events find the mail",
    )
    smtp_connections: int = Field(4, ge=1, le=64, description="persistent SMTP connections")
    smtp_rate_per_second: float = Field(0.0, ge=0, description="global send rate; 0: no limit")
    smtp_rate_per_domain: float = Field(
        0.0, ge=0, description="sends per second to one recipient domain; 0: no limit"
    )
    dkim_selector: str | None = Field(None, description="DKIM selector, e.g. mail2026")
    dkim_domain: str | None = Field(None, description="signing domain, e.g. acme.example")
    dkim_private_key_file: Path | None = Field(None, description="PEM private key")
    send_batch_size: int = Field(100, ge=1, le=5000, description="enrollments claimed per pass")
    dispatch_every_seconds: int = Field(5, ge=1, le=3600, description="dispatch tick")
    send_lease_seconds: int = Field(
        600, ge=1, le=86_400, description="a send not finished by then is reported unknown"
    )
    claim_lease_seconds: int = Field(
        60,
        ge=1,
        le=3600,
        description="mails a dead worker claimed but never began are due again after this",
    )
    spool_dir: Path = Field(
        Path("reengage-spool"),
        description="where delivered sends wait to be recorded while the database is away",
    )
    shutdown_grace_seconds: float = Field(
        10, ge=0, le=3600, description="on SIGTERM, how long sends on the wire may finish"
    )

    def dkim_key(self) -> tuple[str, str, bytes] | None:
        """``(selector, domain, PEM)`` when DKIM is configured; stops with the fix if half is."""
        parts = (self.dkim_selector, self.dkim_domain, self.dkim_private_key_file)
        if not any(parts):
            return None
        if not all(parts):
            raise ConfigError(
                "REENGAGE_DKIM_SELECTOR, REENGAGE_DKIM_DOMAIN and "
                "REENGAGE_DKIM_PRIVATE_KEY_FILE go together: set all three or none"
            )
        assert self.dkim_private_key_file and self.dkim_selector and self.dkim_domain
        try:
            pem = self.dkim_private_key_file.read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"REENGAGE_DKIM_PRIVATE_KEY_FILE: cannot read {self.dkim_private_key_file}: "
                f"{exc.strerror}"
            ) from exc
        return self.dkim_selector, self.dkim_domain, pem
