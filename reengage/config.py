"""Settings, read once from the environment and an optional ``.env`` file.

Every setting is ``REENGAGE_<NAME>``; ``.env.example`` lists them all with comments.
A missing or malformed setting stops start-up with one line naming the variable
and the fix (:class:`~reengage.errors.ConfigError`).
"""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.numbers import list_currencies
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from reengage.errors import ConfigError
from reengage.inbound_settings import InboundSettings
from reengage.outbound_settings import OutboundSettings
from reengage.workdays import WorkingDays, parse_skip_dates, parse_weekdays

ENV_PREFIX = "REENGAGE_"
DEFAULT_DATABASE_URL = "sqlite:///reengage.db"


class LogFormat(StrEnum):
    """How log lines are written: ``auto`` picks console on a terminal, JSON otherwise."""

    AUTO = "auto"
    JSON = "json"
    CONSOLE = "console"


class Settings(BaseSettings, OutboundSettings, InboundSettings):
    """Every knob of reengage; the field name upper-cased and prefixed is the variable."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL: sqlite:///path.db or postgresql+psycopg://user@host/db",
    )
    database_connect_timeout: int = Field(
        5,
        ge=1,
        le=300,
        description="seconds a PostgreSQL server has to answer a new connection before the "
        "command or the daemon's attempt fails, saying the database cannot be reached",
    )
    timezone: str = Field("UTC", description="IANA zone for naive timestamps in imports")
    log_level: str = Field("info", description="debug, info, warning or error")
    log_format: LogFormat = LogFormat.AUTO

    secret_key: SecretStr | None = Field(
        None, description="signs links and tokens; at least 32 characters"
    )
    previous_secret_keys: SecretStr | None = Field(
        None,
        description="comma-separated keys used before the secret key: links made with them "
        "still work (rotation); nothing new is made with them",
    )
    http_host: str = Field("127.0.0.1", description="where the web app listens")
    http_port: int = Field(8025, ge=0, le=65535, description="0 turns the HTTP side off")
    ops_host: str = Field(
        "127.0.0.1", description="where /healthz and /metrics listen (never the public app)"
    )
    ops_port: int = Field(8026, ge=0, le=65535, description="/healthz and /metrics; 0: off")
    http_max_connections: int = Field(
        500,
        ge=10,
        le=100_000,
        description="connections the web app serves at once; more are answered 503",
    )
    form_max_bytes: int = Field(
        65_536,
        ge=4096,
        le=1_048_576,
        description="a form post (preferences, outcome form, sign-in) larger than this is "
        "refused unread (413)",
    )
    dashboard_session_hours: int = Field(
        12, ge=1, le=720, description="a dashboard sign-in lasts this long"
    )
    base_url: str = Field("http://127.0.0.1:8025", description="public address of the web app")
    link_max_age_days: int = Field(
        730, ge=30, le=3650, description="links in mail stop working after this many days"
    )
    api_token: SecretStr | None = Field(
        None, description="bearer token for the ingest API (/api/v1/...); unset turns it off"
    )
    dashboard_token: SecretStr | None = Field(
        None, description="signs in to /dashboard (or a bearer token); unset: no dashboard"
    )

    attribution_days: int = Field(
        30, ge=1, le=365, description="an activity this soon after a mail is credited to it"
    )

    dns_server: str | None = Field(
        None,
        description="DNS server every lookup asks (`doctor --sender`, complaint reports' "
        "DKIM keys), as 127.0.0.1:5353; unset: the system's resolver",
    )
    dns_timeout_seconds: float = Field(
        5.0, gt=0, le=60, description="how long one DNS lookup may take"
    )

    import_batch_size: int = Field(5000, ge=1, le=100_000)
    model_refit_every_hours: int = Field(
        24,
        ge=0,
        le=24 * 90,
        description="how often the daemon refits the lapse model (kept only when it backtests "
        "better than the model in force); 0: never",
    )

    digest_hour: int = Field(
        7, ge=0, le=23, description="each rep's call list is sent from this hour, their local time"
    )
    digest_window_hours: int = Field(
        8,
        ge=1,
        le=24,
        description="and only within this many hours of it: a daemon started in the evening "
        "sends the list the next morning, not a 'good morning' at 23:30",
    )
    digest_days: str = Field(
        "mon-fri",
        description="the reps' working days, their local dates: mon-fri, mon,tue,thu or "
        "mon-sat; no digest on other days, and calls due then are on the next working day's",
    )
    digest_skip_dates: str = Field(
        "",
        description="holidays: no digest, calls move to the next working day; "
        "2026-12-25,2026-12-26 or the path of a file with one date a line",
    )
    digest_size: int = Field(10, ge=1, le=100, description="clients listed in full per digest")
    digest_from: str = Field(
        "Acme call list <calls@acme.example>", description="From address of the reps' digest"
    )
    call_cooldown_days: int = Field(
        14, ge=1, le=365, description="a customer called this recently is left off the list"
    )
    followup_campaign: str = Field(
        "what-we-changed", description="campaign a call outcome of 'follow-up' enrolls into"
    )
    outcome_link_days: int = Field(
        30, ge=1, le=365, description="the digest's outcome links work this many days"
    )
    currency: str = Field("EUR", description="ISO 4217 code of the money shown (EUR, USD, CNY)")

    campaigns_dir: Path = Field(Path("campaigns"), description="campaign YAML files")
    templates_dir: Path = Field(Path("templates"), description="email templates")
    company_name: str = Field("Acme Supplies", min_length=1, max_length=200)
    company_address: str = Field(
        "1 Example Street, 10115 Berlin, Germany",
        min_length=5,
        description="postal address printed in every mail's footer (required by law)",
    )
    shop_url: str = Field("https://shop.example", description="links.shop in templates")
    max_emails_per_week: int = Field(
        2, ge=0, le=50, description="frequency cap per customer across all campaigns (0: none)"
    )
    now: datetime | None = Field(
        None,
        description="tests and rehearsals only: the clock starts at this moment, then runs on",
    )

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "postgresql")):
            raise ValueError(
                "must start with sqlite:/// (a file) or postgresql+psycopg:// (a server)"
            )
        if value.startswith("postgresql") and not value.startswith("postgresql+psycopg"):
            # The psycopg2 default driver is not installed; say so at start-up, not first query.
            raise ValueError("use the psycopg 3 driver: postgresql+psycopg://user@host:5432/db")
        return value

    @field_validator("now", mode="before")
    @classmethod
    def _aware_moment(cls, value: Any) -> Any:
        if value in (None, ""):
            return None
        try:
            moment = datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise ValueError(f"{value!r} is not a moment like 2026-03-29T00:30:00+01:00") from None
        if moment.tzinfo is None:
            raise ValueError(f"{value!r} needs an offset, like 2026-03-29T00:30:00+01:00")
        return moment

    @field_validator("dns_server")
    @classmethod
    def _dns_address(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        dns_address(value)  # its ValueError names the form expected
        return value.strip()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone like Europe/Berlin") from None
        return value

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        code = value.strip().upper()
        if len(code) != 3 or code not in list_currencies():
            raise ValueError(f"{value!r} is not an ISO 4217 currency code like EUR or USD")
        return code

    @field_validator("digest_days")
    @classmethod
    def _known_days(cls, value: str) -> str:
        parse_weekdays(value)  # its ValueError names the part not understood and the form
        return value.strip().lower()

    @field_validator("digest_skip_dates")
    @classmethod
    def _known_dates(cls, value: str) -> str:
        parse_skip_dates(value)  # a date not understood, or a file not readable, stops here
        return value.strip()

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.lower() not in {"debug", "info", "warning", "error"}:
            raise ValueError("must be one of debug, info, warning, error")
        return value.lower()

    @field_validator("secret_key")
    @classmethod
    def _long_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError(
                "is too short: use at least 32 random characters, e.g. "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return value

    @field_validator("previous_secret_keys")
    @classmethod
    def _long_previous_secrets(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and any(
            len(key.strip()) < 32 for key in value.get_secret_value().split(",") if key.strip()
        ):
            raise ValueError("each key (comma-separated) must be at least 32 characters")
        return value

    @field_validator("dashboard_token")
    @classmethod
    def _long_dashboard_token(cls, value: SecretStr | None) -> SecretStr | None:
        # It travels in a browser's address bar: long enough that guessing is hopeless.
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError(
                "is too short: use at least 16 random characters, e.g. "
                "python -c 'import secrets; print(secrets.token_urlsafe(24))'"
            )
        return value

    @property
    def zone(self) -> ZoneInfo:
        """The business time zone as a ``ZoneInfo``."""
        return ZoneInfo(self.timezone)

    def working_days(self) -> WorkingDays:
        """The reps' working days (``DIGEST_DAYS`` less ``DIGEST_SKIP_DATES``)."""
        return WorkingDays(
            parse_weekdays(self.digest_days), parse_skip_dates(self.digest_skip_dates)
        )

    def model_refit_every(self) -> timedelta | None:
        """How often the daemon refits the lapse model, or None when it never does."""
        hours = self.model_refit_every_hours
        return timedelta(hours=hours) if hours else None

    def require_secret_key(self) -> str:
        """Return the secret key, or stop with the fix when it is not set."""
        if self.secret_key is None:
            raise ConfigError(
                f"{ENV_PREFIX}SECRET_KEY is not set: put 32+ random characters in it "
                "(python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        return self.secret_key.get_secret_value()

    def dns_address(self) -> tuple[str, int] | None:
        """``(address, port)`` of the DNS server to ask, or None for the system's resolver."""
        return dns_address(self.dns_server) if self.dns_server else None

    def previous_secrets(self) -> tuple[str, ...]:
        """The keys links may still be signed with (newest first), for verification only."""
        if self.previous_secret_keys is None:
            return ()
        keys = self.previous_secret_keys.get_secret_value().split(",")
        return tuple(key.strip() for key in keys if key.strip())


def dns_address(value: str) -> tuple[str, int]:
    """``127.0.0.1``, ``127.0.0.1:5353`` or ``[::1]:5353`` as ``(address, port)``; a
    ValueError names the form expected when it is not an IP address (and port)."""
    text = value.strip()
    host, port = text, "53"
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":") if rest.startswith(":") else ("53" if not rest else "")
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"{value!r} is not an IP address (and port) like 127.0.0.1:5353 or [::1]:53"
        ) from None
    if not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r}: the port must be a number from 1 to 65535")
    return host, int(port)


def load_settings(env_file: Path | None = Path(".env"), **overrides: Any) -> Settings:
    """Read settings from the environment (and ``env_file`` if it exists).

    Raises :class:`ConfigError` with one line per bad variable, naming it and the fix.
    """
    try:
        return Settings(_env_file=env_file, **overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from exc


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "?"
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"{ENV_PREFIX}{field.upper()}: {message}")
    return "\n".join(lines)
