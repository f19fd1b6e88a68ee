"""What a customer's mail is made of, built one way for every caller.

The daemon, ``preview``, ``validate``, ``simulate`` and the demo all put a mail together
here: the template context (the customer and their rhythm as of the send moment, from
:mod:`reengage.template_context`; the campaign, the step, the company and the signed
links), the rendered parts and the envelope. Nothing here reads the clock or the database;
callers pass ``now`` and the customer's assessment.
"""

from __future__ import annotations

import base64
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from jinja2 import StrictUndefined

from reengage.campaigns import Campaign
from reengage.config import Settings
from reengage.detect import Assessment
from reengage.errors import NotFound
from reengage.message import (
    DkimKey,
    Envelope,
    compose,
    compose_wire,
    dkim_sign,
    provider_headers,
    raw_header,
    wire,
)
from reengage.models import Customer
from reengage.render import Refused, Rendered, Renderer, Sender
from reengage.template_context import customer_context, rhythm_context
from reengage.tokens import sign, stamp

_WEB = re.compile(r"^https?://[^\s/?#]+", re.IGNORECASE)  # where a tracked link may lead
_URL_SAFE = ";/?:@&=+$,-_.!~*'()#[]%"  # what a URL may hold as it is (RFC 3986)
PREVIEW_SECRET = "preview-only-links-do-not-work-without-REENGAGE_SECRET_KEY"


@dataclass(frozen=True)
class Workspace:
    """Where campaigns and templates live and what links in mail point to."""

    campaigns_dir: Path
    renderer: Renderer
    base_url: str
    shop_url: str
    secret: str
    company_name: str
    company_address: str
    zone: ZoneInfo
    max_emails_per_week: int
    dkim: DkimKey | None = None
    inbound_domain: str | None = None  # bounces+TOKEN@ and reply+TOKEN@ go there when set
    smtp_provider: str = "none"  # sendgrid, postmark, mailgun: name each mail in its metadata

    @classmethod
    def from_settings(cls, settings: Settings) -> Workspace:
        """The workspace the settings describe (links are unsigned placeholders without a key)."""
        secret = settings.secret_key.get_secret_value() if settings.secret_key else PREVIEW_SECRET
        sender = Sender(settings.company_name, settings.company_address)
        return cls(
            settings.campaigns_dir,
            Renderer(settings.templates_dir, sender),
            settings.base_url.rstrip("/"),
            settings.shop_url.rstrip("/"),
            secret,
            settings.company_name,
            settings.company_address,
            settings.zone,
            settings.max_emails_per_week,
            DkimKey(*key) if (key := settings.dkim_key()) else None,
            settings.inbound_domain,
            settings.smtp_provider.value,
        )

    def links(self, message_key: str, issued: datetime | None = None) -> dict[str, Any]:
        """The link helpers a template sees for one message, stamped with when it was sent.

        Tokens carry only the message's opaque key (and, for a click, the destination), so a
        click link can only ever lead where the mail pointed.
        """
        t = stamp(issued) if issued else 0

        def link(path: str, purpose: str, **payload: Any) -> str:
            token = sign(self.secret, purpose, {"m": message_key, "t": t, **payload})
            return f"{self.base_url}/{path}/{token}"

        def track(url: str) -> str:
            if not isinstance(url, str) or not _WEB.match(url):
                raise Refused(f"track() takes a web address (http:// or https://), not {url!r}")
            # Customer data joined into an address (a product name with spaces, quotes or
            # <b>) is percent-encoded: the link leads exactly there, as one address.
            return link("c", "click", u=quote(url, safe=_URL_SAFE))

        unsubscribe = link("u", "unsubscribe")
        return {
            "shop": self.shop_url,
            "unsubscribe": unsubscribe,
            "pause": f"{unsubscribe}?pause=90",
            "pixel": link("o", "open") + ".gif",
            "track": track,
        }

    def bounce_domain(self, campaign: Campaign) -> str:
        """Where bounces and replies for this campaign's mail are received."""
        return self.inbound_domain or sender_domain(campaign)


# -- template context ---------------------------------------------------------------------


def mail_context(
    ws: Workspace,
    customer: dict[str, Any],
    rhythm: dict[str, Any],
    campaign: Campaign,
    step_key: str,
    message_key: str,
    issued: datetime | None = None,
    links: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything a template can use (``links``: :meth:`Workspace.links`, if made already)."""
    links = links or ws.links(message_key, issued)
    shown = {k: v for k, v in links.items() if k not in ("track", "pixel")}
    # reengage carries the open pixel itself, only for a campaign that counts opens; a
    # layout made before that still printing links.pixel is told what to change.
    shown["pixel"] = StrictUndefined(hint=_PIXEL_GONE)
    return {
        "customer": customer,
        "rhythm": rhythm,
        "campaign": {"id": campaign.id, "name": campaign.name},
        "step": {"key": step_key},
        "company": {"name": ws.company_name, "address": ws.company_address},
        "links": shown,
        "track": links["track"],
    }


_PIXEL_GONE = (
    "links.pixel is no longer given to templates: remove the <img> that shows it (an image "
    "beside a short mail is what spam filters take for image spam); to count opens, add "
    "track_opens: true to the campaign and reengage adds the pixel itself"
)


def render_for(
    ws: Workspace,
    campaign: Campaign,
    step_key: str,
    customer: Customer,
    assessment: Assessment | None,
    *,
    message_key: str,
    now: datetime,
    rep_name: str | None,
) -> tuple[EmailMessage, Rendered]:
    """The exact message a customer would get for one step, as of ``now``.

    The daemon, ``preview``, ``simulate`` and the demo all call this (the daemon through
    :func:`wire_for`, its bytes) with the customer's assessment as of the send moment, so
    what is previewed is what is sent. Raises
    :class:`~reengage.errors.TemplateFailure` (file:line and what to change) when the
    templates cannot be rendered for this customer, and :class:`~reengage.errors.NotFound`
    (naming the campaign's mail steps) when ``step_key`` is not one of them.
    """
    rendered, envelope = _made(
        ws, campaign, step_key, customer, assessment, message_key, now, rep_name
    )
    message = compose(rendered.subject, rendered.text, rendered.html, envelope)
    return (dkim_sign(message, ws.dkim) if ws.dkim else message), rendered


def wire_for(
    ws: Workspace,
    campaign: Campaign,
    step_key: str,
    customer: Customer,
    assessment: Assessment | None,
    *,
    message_key: str,
    now: datetime,
    rep_name: str | None,
) -> tuple[bytes, str]:
    """:func:`render_for`'s message as it goes over SMTP (``wire(message)``), and its
    Message-ID header: written straight from the same parts, without the message object
    the daemon would only serialize (a DKIM-signed mail is still signed over that).

    The templates are taken as the daemon last looked at them (``ws.renderer.refresh()``,
    once per batch, off the event loop), not looked for on disk again for every mail."""
    rendered, envelope = _made(
        ws, campaign, step_key, customer, assessment, message_key, now, rep_name, pinned=True
    )
    if ws.dkim:
        message = compose(rendered.subject, rendered.text, rendered.html, envelope)
        signed = dkim_sign(message, ws.dkim)
        return wire(signed), raw_header(signed, "Message-ID") or ""
    return compose_wire(rendered.subject, rendered.text, rendered.html, envelope)


def _made(
    ws: Workspace,
    campaign: Campaign,
    step_key: str,
    customer: Customer,
    assessment: Assessment | None,
    message_key: str,
    now: datetime,
    rep_name: str | None,
    *,
    pinned: bool = False,
) -> tuple[Rendered, Envelope]:
    # The rendered parts and the envelope of one customer's mail for one step.
    step = campaign.step(step_key)
    if step is None or step.template is None or step.subject is None:
        known = ", ".join(s.key for s in campaign.steps if not s.is_call)
        raise NotFound(f"{campaign.id} has no mail step {step_key!r}; mail steps: {known}")
    links = ws.links(message_key, now)
    context = mail_context(
        ws,
        customer_context(customer, rep_name, today=now.astimezone(ws.zone).date()),
        rhythm_context(assessment, ws.zone),
        campaign,
        step.key,
        message_key,
        now,
        links,
    )
    rendered = ws.renderer.render(
        subject=step.subject_for(customer.locale),
        template=step.template,
        text_template=step.text_template,
        context=context,
        locale=customer.locale,
        unsubscribe_url=context["links"]["unsubscribe"],
        pause_url=context["links"]["pause"],
        pinned=pinned,
        open_pixel=links["pixel"] if campaign.track_opens else None,
    )
    domain = sender_domain(campaign)
    name = " ".join(p for p in (customer.first_name, customer.last_name) if p)
    envelope = Envelope(
        sender=campaign.sender,
        to_name=name,
        to_address=customer.email,
        message_id=f"{message_key}@{domain}",
        date=now,
        reply_to=reply_address(ws, campaign, message_key),
        list_id=f"{campaign.id}.{domain}",
        unsubscribe_url=context["links"]["unsubscribe"],
        unsubscribe_mailto=unsubscribe_mailto(message_key, ws.bounce_domain(campaign), ws.secret),
        return_path=bounce_address(message_key, ws.bounce_domain(campaign), ws.secret),
        provider_headers=provider_headers(ws.smtp_provider, f"<{message_key}@{domain}>"),
    )
    return rendered, envelope


def reply_address(ws: Workspace, campaign: Campaign, message_key: str) -> str | None:
    """Reply-To: per message (``reply+TOKEN@``) when inbound mail is received, so a reply
    names the mail it answers; otherwise the campaign's own reply address."""
    if not ws.inbound_domain:
        return campaign.reply_to
    # The name the campaign gave its replies (or its sender's), with our own address.
    named = campaign.reply_to or campaign.sender
    name = named.rsplit("<", 1)[0].strip().strip('"') if "<" in named else ""
    address = f"reply+{message_key}@{ws.inbound_domain}"
    return f"{name} <{address}>" if name else address


# Message keys of this length went out with an unsigned ``bounces+KEY@`` (before bounce
# addresses were signed); newer keys are 22 characters and their bounce address is signed.
UNSIGNED_BOUNCE_KEY_CHARS = 24


def bounce_address(message_key: str, domain: str, secret: str) -> str:
    """The per-message envelope sender (VERP), ``bounces+KEY.SIGNATURE@domain``: a bounce
    names the message it is about. The key is in our Message-ID, which every reply quotes,
    so only the signature (seen only in the Return-Path) proves a report came back to it."""
    return f"bounces+{message_key}.{mailto_signature(message_key, secret, 'bounce')}@{domain}"


def unsubscribe_mailto(message_key: str, domain: str, secret: str) -> str:
    """List-Unsubscribe's mailto address, ``unsubscribe+KEY.SIGNATURE@domain``: the key is
    in our Message-ID for all to see, so only the signature proves the mail was read."""
    return f"unsubscribe+{message_key}.{mailto_signature(message_key, secret)}@{domain}"


def mailto_signature(message_key: str, secret: str, purpose: str = "mailto-unsubscribe") -> str:
    """26 lower-case base32 characters (128 bits of HMAC-SHA256): the address stays within
    64 characters, and an MTA that lower-cases it (RFC 5321 allows it) loses nothing."""
    # hmac.digest: the same HMAC in one C call, without an HMAC object per mail.
    mac = hmac.digest(secret.encode(), f"{purpose}:{message_key.lower()}".encode(), "sha256")
    return base64.b32encode(mac[:16]).decode().rstrip("=").lower()


def signed_unsubscribe_key(
    token: str, secrets: Sequence[str], purpose: str = "mailto-unsubscribe"
) -> str | None:
    """The message key of a ``KEY.SIGNATURE`` signed for ``purpose`` (``bounce``: a bounce
    address) under any of ``secrets`` (the current key first, then older ones while they
    rotate out); None for anything else."""
    key, dot, signature = token.rpartition(".")
    if not dot or not key:
        return None
    given = signature.lower().encode()
    found = False
    for secret in secrets:  # every key is tried, so the answer takes as long either way
        found |= hmac.compare_digest(mailto_signature(key, secret, purpose).encode(), given)
    return key if found else None


def sender_domain(campaign: Campaign) -> str:
    """The domain of the campaign's From address."""
    return campaign.sender.rsplit("@", 1)[-1].rstrip(">").strip()
