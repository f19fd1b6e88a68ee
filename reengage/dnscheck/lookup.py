"""Asking a DNS server for what a sender publishes: TXT (its strings joined), MX, addresses.
Every DNS lookup reengage makes is made here, with the server ``REENGAGE_DNS_SERVER`` names
(or the system's resolver): ``doctor --sender``'s checks, and the keys of the DKIM
signatures on complaint reports (:func:`dkim_txt`).

A lookup gives the records, or says plainly why there are none (the name does not exist,
or it has none of that type). A server that does not answer, or answers with an error
(SERVFAIL, REFUSED), raises :class:`LookupFailed` with one line naming the server, the
name and the type: the checks report it against the record they were looking at and go on
with the others.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver

from reengage.errors import ReengageError

_RCODE = re.compile(r"answered (\w+)")


class LookupFailed(ReengageError):
    """The DNS server gave no usable answer: it timed out, or answered SERVFAIL or REFUSED."""


@dataclass(frozen=True)
class Records:
    """What one lookup found: the values (TXT strings joined), or why there are none."""

    values: tuple[str, ...]
    absent: str = ""  # "does not exist (NXDOMAIN)" or "has no TXT record" when values is empty


@dataclass
class Dns:
    """A resolver for one run of checks: each name and type is asked once."""

    resolver: dns.resolver.Resolver
    where: str
    _seen: dict[tuple[str, str], Records | LookupFailed] = field(default_factory=dict)

    @classmethod
    def make(cls, server: tuple[str, int] | None, timeout: float) -> Dns:
        """Ask ``server`` (address, port), or the system's resolvers when it is None."""
        if server:
            host, port = server
            resolver = dns.resolver.Resolver(configure=False)
            resolver.nameservers = [host]
            resolver.port = port
            where = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
        else:
            try:
                resolver = dns.resolver.Resolver()
            except dns.resolver.NoResolverConfiguration as exc:
                raise LookupFailed(
                    "this machine has no DNS resolver configured (/etc/resolv.conf): set "
                    "REENGAGE_DNS_SERVER to one, e.g. 9.9.9.9"
                ) from exc
            where = "the system's DNS resolver (" + ", ".join(map(str, resolver.nameservers)) + ")"
        resolver.lifetime = timeout
        resolver.timeout = timeout
        return cls(resolver, where)

    def txt(self, name: str) -> Records:
        """The TXT records at ``name``, each record's strings joined into one value."""
        return self._ask(name, "TXT")

    def mx(self, name: str) -> Records:
        """The MX records at ``name`` as ``"10 mail.example."``, lowest preference first."""
        return self._ask(name, "MX")

    def addresses(self, name: str) -> tuple[str, ...]:
        """The IPv4 and IPv6 addresses of ``name`` (none when it has none)."""
        return self._ask(name, "A").values + self._ask(name, "AAAA").values

    def _ask(self, name: str, kind: str) -> Records:
        key = (name.lower().rstrip("."), kind)
        if key not in self._seen:
            try:
                self._seen[key] = self._lookup(key[0], kind)
            except LookupFailed as exc:
                self._seen[key] = exc
        found = self._seen[key]
        if isinstance(found, LookupFailed):
            raise found
        return found

    def _lookup(self, name: str, kind: str) -> Records:
        what = f"{kind} {name}"
        try:
            qname = dns.name.from_text(name)
        except dns.exception.DNSException as exc:
            raise LookupFailed(f"{name!r} is not a domain name: {exc}") from exc
        try:
            answer = self.resolver.resolve(qname, kind, search=False)
        except dns.resolver.NXDOMAIN:
            return Records((), f"{name} does not exist (NXDOMAIN)")
        except dns.resolver.NoAnswer:
            return Records((), f"{name} has no {kind} record")
        except dns.exception.Timeout as exc:
            raise LookupFailed(
                f"asking {self.where} for {what}: no answer within "
                f"{self.resolver.lifetime:g} s (is the DNS server up and reachable?)"
            ) from exc
        except dns.resolver.NoNameservers as exc:
            found = _RCODE.search(str(exc))
            rcode = found.group(1) if found else "an error"
            raise LookupFailed(
                f"asking {self.where} for {what}: the server answered {rcode} "
                + (
                    "(it could not resolve the name: the domain's own DNS servers may be "
                    "down or misconfigured)"
                    if rcode == "SERVFAIL"
                    else "(it would not answer this question)"
                )
            ) from exc
        except dns.exception.DNSException as exc:
            raise LookupFailed(f"asking {self.where} for {what}: {exc}") from exc
        if answer.rdtype == dns.rdatatype.TXT:
            # A long record is sent as several strings of at most 255 bytes: one value.
            values = [b"".join(r.strings).decode("utf-8", "replace") for r in answer]
        elif answer.rdtype == dns.rdatatype.MX:
            ordered = sorted(answer, key=lambda r: r.preference)
            values = [f"{r.preference} {r.exchange.to_text()}" for r in ordered]
        else:
            values = [r.to_text() for r in answer]
        return Records(tuple(values))


def dkim_txt(server: tuple[str, int] | None, timeout: float) -> Callable[..., bytes | None]:
    """dkimpy's DNS hook (``(name, timeout=...)`` -> the first TXT record at ``name``, its
    strings joined, or None when there is none), asking ``server`` (or the system's
    resolver) and waiting ``timeout`` seconds, whatever dkimpy asks for. Each call asks
    afresh: a daemon must see a key the reporter rotates. A server that does not answer
    raises :class:`LookupFailed`, naming it."""

    def lookup(name: bytes | str, **_: object) -> bytes | None:
        text = name.decode("ascii", "replace") if isinstance(name, bytes) else name
        found = Dns.make(server, timeout).txt(text)
        return found.values[0].encode() if found.values else None

    return lookup
