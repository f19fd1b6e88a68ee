"""`reengage doctor --sender`: is the sender set up to land?

The From domains' DNS (SPF, DKIM, DMARC, the inbound MX) and what Gmail and Yahoo ask of
bulk senders (see :mod:`reengage.dnscheck`), one line each, with the records to publish;
and the last 30 days' complaint rate from the database.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from reengage.cli.app import _settings, _store, out
from reengage.errors import ReengageError
from reengage.timeutil import utcnow

if TYPE_CHECKING:
    from reengage.config import Settings
    from reengage.dnscheck import Finding


def doctor_sender(domains: list[str]) -> None:
    """`doctor --sender`: the sender's DNS records, one line each, and what to publish."""
    from email.utils import parseaddr
    from urllib.parse import urlsplit

    from reengage.campaigns import load_campaigns
    from reengage.dnscheck import Dns, Level, SenderSetup, check_sender

    wanted = [_domain_option(d) for d in domains]  # before anything is printed
    settings = _settings()
    if not domains:
        result = load_campaigns([settings.campaigns_dir], Path.cwd())
        senders = [c.sender for c in result.campaigns.values()] + [settings.digest_from]
        addresses = [parseaddr(s)[1] for s in senders]
        domains = [a.rpartition("@")[2] for a in addresses if "@" in a]
        wanted = [d.strip().lower().rstrip(".") for d in domains]
    mailbox = settings.inbound_imap_url or settings.inbound_pop3_url
    setup = SenderSetup(
        from_domains=tuple(dict.fromkeys(d for d in wanted if d)),
        inbound_domain=settings.inbound_domain,
        relay=settings.smtp_host,
        dkim=settings.dkim_key(),
        base_url=settings.base_url,
        listener=settings.inbound_host,
        mailbox=urlsplit(mailbox.get_secret_value()).hostname or "?"
        if mailbox is not None and settings.inbound_port == 0
        else None,
    )
    resolver = Dns.make(settings.dns_address(), settings.dns_timeout_seconds)
    out.print(
        f"sender: From {', '.join(setup.from_domains) or '(no domain)'}, asking {resolver.where}",
        markup=False,
        highlight=False,
    )
    findings = check_sender(resolver, setup)
    findings.append(_complaint_rate(settings))
    for found in findings:
        out.print(
            f"{found.level.value:<4} {found.what}: {found.detail}", markup=False, highlight=False
        )
        for line in found.publish:
            out.print(f"     publish: {line}", markup=False, highlight=False, soft_wrap=True)
    if any(f.level is Level.FAIL for f in findings):
        raise typer.Exit(1)


_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def _domain_option(value: str) -> str:
    """One ``--domain`` value as the domain to check (``hello@acme.example`` means its
    domain, as a campaign's From address would); a usage error naming it when it is none."""
    domain = value.rpartition("@")[2].strip().lower().rstrip(".")
    try:
        ascii_name = domain.encode("idna").decode("ascii")
    except UnicodeError:
        ascii_name = domain
    labels = ascii_name.split(".")
    if not domain:
        why = "is empty"
    elif len(labels) < 2 or len(ascii_name) > 253 or not all(map(_LABEL.fullmatch, labels)):
        why = (
            "is not a domain name (letters, digits and hyphens in dot-separated labels, "
            "none empty or starting or ending with a hyphen; no spaces, *, quotes or ;)"
        )
    else:
        return domain
    raise typer.BadParameter(
        f"{value!r} {why}: give a From domain such as acme.example", param_hint="--domain"
    )


def _complaint_rate(settings: Settings) -> Finding:
    """The last 30 days' complaint rate from the database, or why it could not be read."""
    from reengage.dnscheck import Finding, Level, check_complaints
    from reengage.store import migrate
    from reengage.store.engine import absent_sqlite_file, check_connection, create_engine

    days = 30
    if (absent := absent_sqlite_file(settings.database_url)) is not None:
        return Finding(Level.WARN, "complaint rate", f"not checked: no database file at {absent}")
    engine = create_engine(settings.database_url, connect_timeout=settings.database_connect_timeout)
    try:
        check_connection(engine)
        if migrate.current_revision(engine) != migrate.head_revision():
            return Finding(
                Level.WARN,
                "complaint rate",
                "not checked: the database is not set up or not upgraded (`reengage db upgrade`)",
            )
    except ReengageError as exc:
        return Finding(Level.WARN, "complaint rate", f"not checked: {exc}")
    finally:
        engine.dispose()
    store = _store()
    try:
        complaints, mails = store.stats.complaints_since(utcnow() - timedelta(days=days))
    finally:
        store.close()
    return check_complaints(complaints, mails, days)
