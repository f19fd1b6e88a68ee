"""What the web side is told when it is built: secrets, tokens, limits, the clock and the
campaigns. Every route module takes a :class:`WebConfig`; none of them imports the app."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from pydantic import SecretStr

from reengage.campaigns import Campaign
from reengage.config import Settings
from reengage.responses import Policy
from reengage.timeutil import utcnow
from reengage.workdays import WorkingDays


@dataclass(frozen=True)
class WebConfig:
    """What the web side needs to know; ``from_settings`` builds it for the daemon."""

    secret: str
    # Keys links were signed with before the secret key: still accepted, never used to sign.
    previous_secrets: tuple[str, ...] = ()
    base_url: str = ""  # the public address: a form posted from its origin is ours
    company_name: str = "reengage"
    company_address: str = ""
    currency: str = "EUR"  # the dashboard's money (REENGAGE_CURRENCY)
    link_max_age: timedelta = timedelta(days=730)
    api_token: str | None = None
    webhook_token: str | None = None
    dashboard_token: str | None = None
    # Providers' own webhooks (reengage.web.hooks): each is on when its secret is set.
    ses_topic_arns: tuple[str, ...] = ()
    sendgrid_key: str | None = None  # base64 DER of SendGrid's P-256 verification key
    postmark_auth: str | None = None  # USER:PASSWORD of the webhook URL's basic auth
    mailgun_key: str | None = None
    # Fetches an https URL (SNS signing certificates, subscription confirmations); None:
    # the real internet. Tests serve their own certificate from loopback through it.
    fetch_url: Callable[[str], bytes] | None = None
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    import_batch_size: int = 5000
    policy: Policy = field(default_factory=Policy)
    clock: Callable[[], datetime] = utcnow  # the demo runs simulated days
    # The campaigns running now (the daemon's library reloads them): a call outcome's
    # follow-up enrolls into one, and their exit_on decides which enrollments a call ends.
    campaigns: Callable[[], dict[str, Campaign]] = dict
    followup_campaign: str = "what-we-changed"
    outcome_link_max_age: timedelta = timedelta(days=30)  # the digest's /call/ links
    form_max_bytes: int = 65_536  # a form body past this is refused unread
    dashboard_session: timedelta = timedelta(hours=12)  # how long a dashboard sign-in lasts
    working_days: WorkingDays = field(default_factory=WorkingDays)  # where a call-again lands

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        policy: Policy | None = None,
        clock: Callable[[], datetime] = utcnow,
        campaigns: Callable[[], dict[str, Campaign]] = dict,
    ) -> WebConfig:
        """The web side as the settings describe it (the secret key is required)."""
        return cls(
            secret=settings.require_secret_key(),
            previous_secrets=settings.previous_secrets(),
            base_url=settings.base_url,
            company_name=settings.company_name,
            company_address=settings.company_address,
            currency=settings.currency,
            link_max_age=timedelta(days=settings.link_max_age_days),
            api_token=settings.api_token.get_secret_value() if settings.api_token else None,
            webhook_token=(
                settings.webhook_token.get_secret_value() if settings.webhook_token else None
            ),
            dashboard_token=(
                settings.dashboard_token.get_secret_value() if settings.dashboard_token else None
            ),
            ses_topic_arns=tuple(
                arn.strip() for arn in (settings.ses_topic_arns or "").split(",") if arn.strip()
            ),
            sendgrid_key=settings.sendgrid_webhook_key or None,
            postmark_auth=_secret(settings.postmark_webhook_auth),
            mailgun_key=_secret(settings.mailgun_signing_key),
            zone=settings.zone,
            import_batch_size=settings.import_batch_size,
            policy=policy or Policy(soft_bounce_limit=settings.soft_bounce_limit),
            clock=clock,
            campaigns=campaigns,
            followup_campaign=settings.followup_campaign,
            outcome_link_max_age=timedelta(days=settings.outcome_link_days),
            form_max_bytes=settings.form_max_bytes,
            dashboard_session=timedelta(hours=settings.dashboard_session_hours),
            working_days=settings.working_days(),
        )


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None
