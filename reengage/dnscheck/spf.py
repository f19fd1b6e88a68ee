"""SPF (RFC 7208): the envelope sender's domain says which servers may send its mail.

Checked: there is exactly one ``v=spf1`` record (two are a permanent error, as if there were
none), every term parses (:mod:`~reengage.dnscheck.spfsyntax`; also in the records its includes
reach), ``redirect`` is not beside ``all`` (where it is ignored), it ends in ``-all`` or
``~all`` (``+all`` lets anyone send as the domain, ``?all`` says nothing), its DNS lookups —
``include``, ``a``, ``mx``, ``ptr``, ``exists`` and ``redirect``, counted through every include
— stay within RFC 7208's limit of 10, and, when the SMTP relay is a known host elsewhere, the
record plausibly covers it.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from reengage.dnscheck.findings import Finding, fail, ok, txt_line, warn
from reengage.dnscheck.lookup import Dns, LookupFailed
from reengage.dnscheck.spfmerge import merged
from reengage.dnscheck.spfsyntax import corrected, dead_terms, syntax_errors

LOOKUP_LIMIT = 10
_LOOKUPS = frozenset({"include", "a", "mx", "ptr", "exists"})
_TERM = re.compile(r"([+?~-]?)([A-Za-z][A-Za-z0-9_.-]*)(.*)")
_ALL = re.compile(r"(?i)[+?~-]?all")
_MODIFIER = re.compile(r"([A-Za-z][A-Za-z0-9_.-]*)=(.*)")
_ALL_MEANS = {
    "+": "+all lets every server on the internet send as the domain",
    "?": "?all says nothing about servers not listed (neutral): it protects nothing",
}


def spf_records(values: tuple[str, ...]) -> list[str]:
    """The TXT values that are SPF records (``v=spf1`` then a space or the end)."""
    return [v for v in values if re.match(r"(?i)v=spf1(\s|$)", v.strip())]


@dataclass(frozen=True)
class Term:
    """One term of a record: a mechanism (``-all``, ``include:x``) or a modifier
    (``redirect=x``)."""

    qualifier: str  # "+" when none was written
    name: str  # lower case: all, include, a, mx, ptr, ip4, ip6, exists, or a modifier's name
    domain: str  # include's, a's, mx's or exists's target, or a modifier's value; "" if none
    cidr4: int | None = None
    cidr6: int | None = None
    network: str = ""  # ip4's and ip6's value
    modifier: bool = False


def terms(record: str) -> list[Term]:
    """The terms of an SPF record after ``v=spf1`` (unparsable ones are left out)."""
    out = []
    for word in record.split()[1:]:
        if modifier := _MODIFIER.fullmatch(word):
            out.append(Term("+", modifier.group(1).lower(), modifier.group(2), modifier=True))
            continue
        found = _TERM.fullmatch(word)
        if not found:
            continue
        qualifier, name, rest = found.group(1) or "+", found.group(2).lower(), found.group(3)
        if name in ("ip4", "ip6"):
            out.append(Term(qualifier, name, "", network=rest.removeprefix(":")))
            continue
        domain, cidr4, cidr6 = "", None, None
        if rest.startswith(":"):
            domain, slash, rest = rest[1:].partition("/")
            rest = slash + rest
        if rest.startswith("//"):
            cidr6 = _int(rest[2:])
        elif rest.startswith("/"):
            four, _, six = rest[1:].partition("//")
            cidr4, cidr6 = _int(four), _int(six) if six else None
        out.append(Term(qualifier, name, domain, cidr4, cidr6))
    return out


def _int(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() else None


@dataclass
class Walk:
    """What following a record through its includes found."""

    lookups: int = 0
    problems: list[str] = field(default_factory=list)  # worth a look
    errors: list[str] = field(default_factory=list)  # permanent errors for a receiver
    names: set[str] = field(default_factory=set)  # every domain an include/a/mx named


def walk(dns: Dns, domain: str, record: str, seen: frozenset[str] = frozenset()) -> Walk:
    """Count the DNS lookups ``record`` costs a receiver, through includes and redirects."""
    result = Walk()
    seen = seen | {domain.lower()}
    parsed = terms(record)
    has_all = any(t.name == "all" and not t.modifier for t in parsed)
    for term in parsed:
        redirect = term.modifier and term.name == "redirect"
        if redirect and has_all:
            result.problems.append(
                f"redirect={term.domain} is ignored: the record has an all term, and a "
                "receiver never reaches redirect then (RFC 7208 §6.1); remove one of the two"
            )
            continue
        if not (term.name in _LOOKUPS or redirect):
            continue
        result.lookups += 1
        target = term.domain or domain
        result.names.add(target.lower())
        if term.name not in ("include", "redirect"):
            continue
        if "%" in target:
            result.problems.append(f"{term.name}:{target} uses a macro: not followed here")
            continue
        if target.lower() in seen:
            result.errors.append(
                f"{term.name}:{target} loops back to a record it came from: receivers give up "
                "(a permanent error)"
            )
            continue
        try:
            found = spf_records(dns.txt(target).values)
        except LookupFailed as exc:
            result.problems.append(f"{term.name}:{target} could not be looked up: {exc}")
            continue
        if len(found) != 1:
            result.errors.append(
                f"{term.name}:{target} has {'no' if not found else len(found)} SPF record"
                f"{'s' if len(found) > 1 else ''}: receivers treat that as a permanent error"
            )
            continue
        if broken := syntax_errors(found[0]):
            result.errors.append(
                f"{term.name}:{target}'s record {found[0]!r} is broken ({'; '.join(broken)}): "
                "receivers treat that as a permanent error"
            )
            continue
        inner = walk(dns, target, found[0], seen)
        result.lookups += inner.lookups
        result.problems.extend(inner.problems)
        result.errors.extend(inner.errors)
        result.names |= inner.names
    return result


def passes(dns: Dns, domain: str, record: str, ip: str, depth: int = 0) -> bool:
    """Whether ``record`` gives ``ip`` a pass (macros, ptr and exists are not evaluated)."""
    address = ipaddress.ip_address(ip)
    if depth > LOOKUP_LIMIT:
        return False
    redirect = None
    for term in terms(record):
        if term.modifier:
            redirect = term.domain if term.name == "redirect" else redirect
            continue
        if "%" in term.domain:
            continue
        if _matches(dns, domain, term, address, depth):
            return term.qualifier == "+"
    if redirect and "%" not in redirect:
        found = spf_records(dns.txt(redirect).values)
        return len(found) == 1 and passes(dns, redirect, found[0], ip, depth + 1)
    return False


def _matches(
    dns: Dns,
    domain: str,
    term: Term,
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
    depth: int,
) -> bool:
    if term.name == "all":
        return True
    if term.name in ("ip4", "ip6"):
        try:
            return address in ipaddress.ip_network(term.network, strict=False)
        except ValueError:
            return False
    if term.name == "include":
        found = spf_records(dns.txt(term.domain).values)
        return len(found) == 1 and passes(dns, term.domain, found[0], str(address), depth + 1)
    target = term.domain or domain
    if term.name == "a":
        hosts = [target]
    elif term.name == "mx":
        hosts = [v.split()[-1] for v in dns.mx(target).values]
    else:
        return False  # ptr and exists: not evaluated
    cidr = term.cidr4 if address.version == 4 else term.cidr6
    for host in hosts:
        for each in dns.addresses(host):
            try:
                net = ipaddress.ip_network(f"{each}/{cidr}" if cidr is not None else each, False)
            except ValueError:  # a prefix longer than the address: the term is broken
                return False
            if address in net:
                return True
    return False


def check_spf(dns: Dns, domain: str, relay: str | None, why: str) -> list[Finding]:
    """The findings about ``domain``'s SPF record; ``relay`` is the SMTP host mail leaves
    through when it is a known host elsewhere (None: this machine, or unknown)."""
    what = f"SPF {domain}"
    suggestion = txt_line(domain, _suggested(relay))
    try:
        records = spf_records(dns.txt(domain).values)
    except LookupFailed as exc:
        return [fail(what, f"could not be checked: {exc}")]
    if not records:
        return [
            fail(
                what,
                f"no SPF record ({why}): receivers cannot tell who may send; publish one "
                "(a mail provider documents its own include: to use instead)",
                suggestion,
            )
        ]
    if len(records) > 1:
        merge = merged(records)
        changes = f"; in it, {'; '.join(merge.changes)}" if merge.changes else ""
        weak = [fail(what, problem) for r in records for problem in _weak_alls(r, None)]
        return [
            *weak,
            fail(
                what,
                f"{len(records)} SPF records ({' | '.join(records)}): receivers treat two as a "
                "permanent error, as if there were none: publish this one record instead" + changes,
                txt_line(domain, merge.record),
            ),
        ]
    record = records[0]
    if errors := syntax_errors(record):
        return _broken(what, domain, record, errors)
    found = [fail(what, p) for p in _ending(record, _ended(record))]
    first_all, dead = dead_terms(record)
    if dead:
        found.insert(
            0,
            fail(
                what,
                f"{' '.join(dead)} after {first_all}: receivers never look past the first all "
                "(RFC 7208 §5.1), so these terms do nothing; end the record in one all",
                txt_line(domain, corrected(record) or record),
            ),
        )
    route = walk(dns, domain, record)
    found.extend(fail(what, error) for error in route.errors)
    found.extend(warn(what, problem) for problem in route.problems)
    if route.lookups > LOOKUP_LIMIT:
        found.append(
            fail(
                what,
                f"{route.lookups} DNS lookups (includes counted through): the limit is "
                f"{LOOKUP_LIMIT}, past it receivers treat the record as a permanent error; "
                "drop includes of services that no longer send for you, or replace one by "
                "the ip4:/ip6: ranges it lists",
            )
        )
    if not any(f.level == "FAIL" for f in found):
        found.insert(
            0, ok(what, f"{record} ({why}; {route.lookups} of {LOOKUP_LIMIT} DNS lookups)")
        )
    if relay:
        found.append(_coverage(dns, domain, record, relay, route))
    return found


def _broken(what: str, domain: str, record: str, errors: list[str]) -> list[Finding]:
    """A record receivers cannot parse: each reason, an ``all`` that protects nothing, and
    the mended record (ending in ``-all`` or ``~all``) when it can be derived."""
    fixed = corrected(record)
    found = [
        fail(
            what,
            f"{record!r}: {error}: receivers give a permanent error (RFC 7208), as if "
            "there were no record, and SPF fails for every mail",
        )
        for error in errors
    ]
    found.extend(fail(what, problem) for problem in _ending(record, fixed))
    last = found[-1]
    if fixed:
        found[-1] = fail(what, f"{last.detail}; publish it corrected", txt_line(domain, fixed))
    else:
        found[-1] = fail(what, f"{last.detail}; correct the term or remove it, then run this again")
    return found


def _ending(record: str, fixed: str | None) -> list[str]:
    """What is wrong with how ``record`` ends; ``fixed`` is the record to suggest instead."""
    parsed = terms(record)
    if any(t.name == "all" and not t.modifier for t in parsed):
        return _weak_alls(record, fixed)
    if any(t.modifier and t.name == "redirect" for t in parsed):
        return []
    return [f"{record!r} has no -all or ~all at its end: servers not listed are not refused"]


def _weak_alls(record: str, fixed: str | None) -> list[str]:
    """Each ``+all`` or ``?all`` in ``record``, wherever it stands."""
    alls = [t for t in terms(record) if t.name == "all" and not t.modifier]
    found = []
    for qualifier in dict.fromkeys(t.qualifier for t in alls if t.qualifier in _ALL_MEANS):
        where = "ends in" if alls[-1].qualifier == qualifier else "has"
        found.append(
            f"{record!r} {where} {qualifier}all: {_ALL_MEANS[qualifier]}; end it in ~all "
            "(or -all once every sender is listed)" + (f": {fixed}" if fixed else "")
        )
    return found


def _ended(record: str) -> str:
    """``record`` with its ``all`` terms replaced by one ``~all`` at the end."""
    return " ".join(w for w in record.split() if not _ALL.fullmatch(w)) + " ~all"


def _coverage(dns: Dns, domain: str, record: str, relay: str, route: Walk) -> Finding:
    what = f"SPF {domain}"
    try:
        addresses = (relay,) if _is_ip(relay) else dns.addresses(relay)
        covered = [ip for ip in addresses if passes(dns, domain, record, ip)]
    except LookupFailed as exc:
        return warn(what, f"whether it covers the SMTP relay {relay} could not be checked: {exc}")
    if covered:
        return ok(what, f"covers the SMTP relay {relay} ({', '.join(covered)})")
    parent = ".".join(relay.lower().rstrip(".").split(".")[-2:])
    named = sorted(n for n in route.names if n == parent or n.endswith("." + parent))
    if named and not _is_ip(relay):
        return ok(what, f"plausibly covers the SMTP relay {relay}: it includes {named[0]}")
    return warn(
        what,
        f"the SMTP relay {relay} ({', '.join(addresses) or 'no address'}) is not covered: if "
        "mail leaves from its addresses it fails SPF; add the include: your provider documents "
        "(or ip4: of your server)",
    )


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _suggested(relay: str | None) -> str:
    if relay is None:
        return "v=spf1 mx ~all"  # mail leaves from this server; mx when it is also the MX
    if _is_ip(relay):
        return f"v=spf1 ip{ipaddress.ip_address(relay).version}:{relay} ~all"
    return f"v=spf1 a:{relay} ~all"
