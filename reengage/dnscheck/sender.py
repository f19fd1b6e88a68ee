"""The whole sender check: the records Gmail's and Yahoo's bulk-sender rules (2024) ask for.

SPF on the envelope sender's domain (``bounces+…@`` the inbound domain, or the From domain
without one), DKIM for the configured selector and key, DMARC of every From domain with
the alignment of reengage's own mail, the inbound domain's MX, and one-click unsubscribe.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from reengage.dnscheck.dkimkey import check_dkim
from reengage.dnscheck.dmarc import check_dmarc
from reengage.dnscheck.findings import Finding, fail, ok, warn
from reengage.dnscheck.lookup import Dns, LookupFailed
from reengage.dnscheck.spf import check_spf
from reengage.i18n import days as plural_days

COMPLAINT_LIMIT, COMPLAINT_ADVISED = 0.003, 0.001  # Gmail's and Yahoo's bulk-sender rules


@dataclass(frozen=True)
class SenderSetup:
    """What the settings and campaigns say about how mail is sent."""

    from_domains: tuple[str, ...]
    inbound_domain: str | None  # the envelope sender's and the bounces' domain when set
    relay: str  # REENGAGE_SMTP_HOST
    dkim: tuple[str, str, bytes] | None  # (selector, domain, private key PEM)
    base_url: str  # where the one-click unsubscribe link leads
    mailbox: str | None = None  # the inbound mailbox's host when it, not the listener, reads
    listener: str = ""  # REENGAGE_INBOUND_HOST: the address the inbound listener binds


def check_sender(dns: Dns, setup: SenderSetup) -> list[Finding]:
    """Every finding, record by record; a lookup that fails is reported, never raised."""
    found: list[Finding] = []
    if not setup.from_domains:
        found.append(
            fail(
                "From",
                "no From domain to check: no campaign was found (REENGAGE_CAMPAIGNS_DIR) and "
                "REENGAGE_DIGEST_FROM has none; name one with --domain",
            )
        )
    relay = setup.relay if not _local(setup.relay) else None
    envelopes = [setup.inbound_domain] if setup.inbound_domain else list(setup.from_domains)
    spf_fails: set[str] = set()
    for domain in dict.fromkeys(envelopes):
        why = f"the envelope sender's domain: bounces+…@{domain}"
        spf = check_spf(dns, domain, relay, why)
        spf_fails |= {domain} if any(f.level == "FAIL" for f in spf) else set()
        found.extend(spf)
    dkim_passes = False
    if setup.dkim is None:
        found.append(
            fail(
                "DKIM",
                "not configured: mail goes out unsigned, and Gmail and Yahoo require DKIM of "
                "bulk senders. Make a key (openssl genrsa -out dkim.pem 2048), set "
                "REENGAGE_DKIM_SELECTOR, REENGAGE_DKIM_DOMAIN (the From domain) and "
                "REENGAGE_DKIM_PRIVATE_KEY_FILE, and run this again for the record to publish",
            )
        )
    else:
        dkim = check_dkim(dns, *setup.dkim)
        dkim_passes = not any(f.level == "FAIL" for f in dkim)
        found.extend(dkim)
    for domain in setup.from_domains:
        envelope = setup.inbound_domain or domain
        signer = setup.dkim[1] if setup.dkim else None
        passing = (envelope not in spf_fails, dkim_passes)
        found.extend(check_dmarc(dns, domain, envelope, signer, passing))
    found.extend(check_inbound(dns, setup))
    found.append(check_unsubscribe(setup.base_url))
    return found


def check_inbound(dns: Dns, setup: SenderSetup) -> list[Finding]:
    """The inbound domain's MX: where bounces, complaints and replies are delivered."""
    if not setup.inbound_domain:
        where = ", ".join(setup.from_domains) or "the From domain"
        if setup.mailbox:
            return [
                warn(
                    "inbound",
                    "REENGAGE_INBOUND_DOMAIN is not set: bounces+…@ and reply+…@ addresses "
                    f"are not used, and bounces go to {where}'s own mail server; set it to "
                    f"the domain whose mail lands in the inbound mailbox at {setup.mailbox}",
                )
            ]
        return [
            warn(
                "inbound",
                "REENGAGE_INBOUND_DOMAIN is not set: bounces, complaints and replies go to "
                f"{where}'s own mail server and reengage never sees them; set it to a domain "
                "whose MX reaches the inbound listener (see the README's going live)",
            )
        ]
    domain = setup.inbound_domain
    what = f"MX {domain}"
    if setup.mailbox:
        return _mailbox_mx(dns, domain, setup.mailbox)
    publish = _mx_to_publish(domain, setup.listener)
    try:
        records = dns.mx(domain)
    except LookupFailed as exc:
        return [fail(what, f"could not be checked: {exc}")]
    if not records.values:
        return [
            fail(
                what,
                f"no MX record ({records.absent}): bounces and replies to bounces+…@{domain} "
                "do not reach reengage; point an MX at the host whose port 25 reaches the "
                f"inbound listener (REENGAGE_INBOUND_PORT). {_MX_NAME.format(domain=domain)}",
                *publish,
            )
        ]
    hosts = [v.split()[-1] for v in records.values]
    found = []
    for exchange in hosts:
        if exchange == ".":
            said = f"a null MX (RFC 7505): {domain} says it takes no mail"
            return [fail(what, f"{said}. {_MX_NAME.format(domain=domain)}", *publish)]
        try:
            addresses = dns.addresses(exchange)
        except LookupFailed as exc:
            found.append(warn(what, f"{exchange}'s address could not be looked up: {exc}"))
            continue
        if not addresses:
            found.append(fail(what, f"{exchange} has no A or AAAA record: mail cannot reach it"))
    if not any(f.level == "FAIL" for f in found):
        found.insert(0, ok(what, ", ".join(records.values)))
    return found


# No setting names the listener's public host (REENGAGE_INBOUND_HOST is the address it
# binds, often 0.0.0.0), and the web app's host (REENGAGE_BASE_URL) may be another machine
# or behind a proxy that does not pass port 25: so a name is suggested, and why.
_MX_NAME = (
    "reengage has no setting naming that host: mx.{domain} below is a suggested name; give "
    "it an A (or AAAA) record with the public address of the machine running the listener "
    "(not the web app's host unless the listener runs there too)"
)


def _mx_to_publish(domain: str, listener: str) -> tuple[str, ...]:
    """The MX line to publish, and the A/AAAA line when the listener binds a public address."""
    lines = [f"{domain}. MX 10 mx.{domain}."]
    try:
        address = ipaddress.ip_address(listener)
    except ValueError:
        return tuple(lines)
    if not _local(listener):
        lines.append(f"mx.{domain}. {'A' if address.version == 4 else 'AAAA'} {address}")
    return tuple(lines)


def _mailbox_mx(dns: Dns, domain: str, mailbox: str) -> list[Finding]:
    """With an inbound mailbox, the domain's MX belongs to the mailbox's provider: only
    that one exists is checked (whether it delivers into that mailbox cannot be seen)."""
    what = f"MX {domain}"
    try:
        records = dns.mx(domain)
    except LookupFailed as exc:
        return [fail(what, f"could not be checked: {exc}")]
    exchanges = [v.split()[-1] for v in records.values]
    if not exchanges or exchanges == ["."]:
        why = records.absent or f"a null MX (RFC 7505): {domain} says it takes no mail"
        return [
            fail(
                what,
                f"no MX record ({why}): bounces and replies to bounces+…@{domain} go nowhere. "
                f"The inbound mailbox at {mailbox} is read, not the listener: publish the MX "
                f"records your mailbox provider documents for {domain}, so that its mail "
                "lands in that mailbox",
            )
        ]
    return [
        ok(
            what,
            f"{', '.join(records.values)}: the inbound mailbox at {mailbox} is read; "
            f"checked only that {domain} has an MX (that it delivers into that mailbox is "
            "for your mailbox provider; `reengage doctor` signs in to the mailbox)",
        )
    ]


def check_unsubscribe(base_url: str) -> Finding:
    """One-click unsubscribe (RFC 8058): every campaign mail carries List-Unsubscribe with
    an https link and List-Unsubscribe-Post; the link must be one a provider can reach."""
    what = "one-click unsubscribe"
    parts = urlsplit(base_url)
    if parts.scheme != "https" or _local(parts.hostname or ""):
        return fail(
            what,
            f"REENGAGE_BASE_URL is {base_url}: the List-Unsubscribe link in every mail "
            "must be an https:// address on the internet, which Gmail and Yahoo post to "
            "(RFC 8058); set it to the web app's public https address",
        )
    return ok(
        what,
        "every campaign mail carries List-Unsubscribe (https and mailto) and "
        f"List-Unsubscribe-Post: List-Unsubscribe=One-Click; the link leads to {base_url}/u/…",
    )


def check_complaints(complaints: int, mails: int, days: int) -> Finding:
    """The share of the last ``days``' mail that recipients reported as spam, against the
    0.3 % Gmail and Yahoo hold bulk senders to (Gmail advises staying under 0.1 %)."""
    what = "complaint rate"
    if not mails:
        return ok(what, f"no mail sent in the last {plural_days(days)}")
    rate = complaints / mails
    detail = (
        f"{complaints} complaint(s) over {mails} mail(s) in the last {plural_days(days)}: "
        f"{rate:.2%}"
    )
    if rate >= COMPLAINT_LIMIT:
        return fail(
            what,
            f"{detail}, at or over Gmail's and Yahoo's limit of 0.3 %: send less to people "
            "who have not bought for long, and make the unsubscribe link easy to find",
        )
    if rate >= COMPLAINT_ADVISED:
        return warn(what, f"{detail}: under 0.3 %, but Gmail advises staying under 0.1 %")
    return ok(what, f"{detail} (under 0.1 %)")


# Networks no receiver can reach or see mail come from: RFC 1918, shared (CGNAT) and
# unique-local space. Not ipaddress's is_private, which also counts the documentation
# ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24) that examples use as public ones.
_PRIVATE = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)


def _local(host: str) -> bool:
    """Whether ``host`` is this machine or a private network (not a relay SPF can name)."""
    name = host.lower().rstrip(".")
    if name in ("", "localhost") or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    return (
        address.is_loopback
        or address.is_link_local
        or address.is_unspecified
        or any(address in network for network in _PRIVATE)
    )
