"""DMARC (RFC 7489, and RFC 9989's DNS tree walk): the From domain's policy for mail that
fails SPF and DKIM alignment, where it wants reports, and whether reengage's mail aligns.

The policy is looked up at ``_dmarc.<From domain>``, then up the tree towards the
organisational domain (a subdomain without a record of its own follows its parent's ``sp=``
or ``p=``). The organisational domain, which relaxed alignment compares, is found by the
same walk (``psd=`` honoured; otherwise the highest domain with a record) rather than from a
copy of the public suffix list; the walk stops above two labels (no top-level domain).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from reengage.dnscheck.dkimkey import tags
from reengage.dnscheck.findings import Finding, fail, ok, txt_line, warn
from reengage.dnscheck.lookup import Dns, LookupFailed

_POLICIES = ("none", "quarantine", "reject")


@dataclass(frozen=True)
class Policy:
    """A DMARC record and the domain it was found at."""

    domain: str
    record: str
    tags: dict[str, str]


def _parents(domain: str) -> list[str]:
    """``domain`` and its parents with at least two labels, nearest first (at most 8)."""
    labels = domain.lower().rstrip(".").split(".")
    return [".".join(labels[i:]) for i in range(len(labels) - 1)][:8]


def _looks_dmarc(value: str) -> bool:
    """Whether a TXT value at ``_dmarc.`` is meant as DMARC: ``v=DMARC1`` first or anywhere."""
    return value.strip().lower().startswith("v=dmarc1") or (
        tags(value).get("v", "").upper() == "DMARC1"
    )


def _v_is_first(value: str) -> bool:
    """Whether ``value`` starts with ``v=DMARC1``, as receivers require (RFC 7489 §6.4)."""
    return value.strip().lower().startswith("v=dmarc1")


def _record_at(dns: Dns, domain: str) -> list[str]:
    """Every TXT value at ``_dmarc.domain`` meant as DMARC, in a stable order."""
    return sorted(v for v in dns.txt(f"_dmarc.{domain}").values if _looks_dmarc(v))


def discover(dns: Dns, domain: str) -> tuple[Policy | None, list[str], list[Policy]]:
    """The policy that applies to ``domain``, the problems met on the way (more than one
    record at one name, which counts as none) and those competing records. A lone record
    without ``v=DMARC1`` first is ignored, as receivers ignore it. Raises LookupFailed for
    the domain's own lookup."""
    problems = []
    for i, name in enumerate(_parents(domain)):
        try:
            found = _record_at(dns, name)
        except LookupFailed:
            if i == 0:
                raise
            continue  # a parent's server failing leaves the domain's own answer standing
        if len(found) > 1:
            problems.append(f"_dmarc.{name} has {len(found)} DMARC records")
            return None, problems, [Policy(name, r, tags(r)) for r in found]
        if found and _v_is_first(found[0]):
            return Policy(name, found[0], tags(found[0])), problems, []
    return None, problems, []


def organisational(dns: Dns, domain: str) -> str:
    """The organisational domain of ``domain`` by RFC 9989's tree walk."""
    path = _parents(domain)
    highest = None
    for i, name in enumerate(path):
        try:
            found = _record_at(dns, name)
        except LookupFailed:
            continue
        if len(found) != 1 or not _v_is_first(found[0]):
            continue
        psd = tags(found[0]).get("psd", "u").lower()
        if psd == "n":
            return name
        if psd == "y":
            return path[i - 1] if i > 0 else name
        highest = name
    return highest or domain.lower().rstrip(".")


def aligned(dns: Dns, one: str, other: str, strict: bool) -> bool:
    """Whether two domains align: the same name (strict) or organisational domain (relaxed)."""
    a, b = one.lower().rstrip("."), other.lower().rstrip(".")
    if a == b:
        return True
    return not strict and organisational(dns, a) == organisational(dns, b)


def check_dmarc(
    dns: Dns,
    domain: str,
    envelope_domain: str,
    dkim_domain: str | None,
    passing: tuple[bool, bool] = (True, True),
) -> list[Finding]:
    """The findings about the DMARC policy of the From ``domain`` and the alignment of
    reengage's mail with it (SPF through ``envelope_domain``, DKIM through ``dkim_domain``);
    ``passing`` says whether SPF and DKIM themselves passed their checks (no FAIL)."""
    what = f"DMARC _dmarc.{domain}"
    start = f"v=DMARC1; p=none; rua=mailto:dmarc-reports@{domain}"
    try:
        policy, problems, competing = discover(dns, domain)
    except LookupFailed as exc:
        return [fail(what, f"could not be checked: {exc}")]
    if competing:
        return [_one_of(what, problems, competing)]
    if (policy is None or policy.domain != domain.lower()) and (
        misordered := _misordered(dns, domain)
    ):
        return [
            fail(
                what,
                f"{misordered!r} is invalid: v=DMARC1 must be the first tag, and receivers "
                "ignore a record that does not start with it (RFC 7489 §6.4); publish the "
                "same policy with v first",
                txt_line(f"_dmarc.{domain}", _v_first(misordered)),
            )
        ]
    if policy is None:
        detail = "; ".join(problems) or "no DMARC record, here or at a parent domain"
        return [
            fail(
                what,
                f"{detail}: Gmail and Yahoo require one of bulk senders. Start with p=none and "
                "reports, then move to p=quarantine once the reports show only your own mail",
                txt_line(f"_dmarc.{domain}", start),
            )
        ]
    t = policy.tags
    where = (
        policy.record
        if policy.domain == domain.lower()
        else f"no record here: _dmarc.{policy.domain}'s applies (the organisational domain): "
        + policy.record
    )
    applied = t.get("p", "").lower()
    if policy.domain != domain.lower() and "sp" in t:
        applied = t["sp"].lower()
    if t.get("p", "").lower() not in _POLICIES:
        return [
            fail(
                what,
                f"_dmarc.{policy.domain}: {policy.record!r} has no valid p= (none, quarantine or "
                "reject): receivers ignore it",
                txt_line(f"_dmarc.{policy.domain}", _with_policy(policy.record, t.get("p", ""))),
            )
        ]
    found = [ok(what, where)]
    if applied == "none":
        enforced = policy.record.replace(f"p={t['p']}", "p=quarantine", 1)
        found.append(
            warn(
                what,
                "p=none gives no protection: mail that fails DMARC is "
                "delivered as usual. Gmail and Yahoo accept it but advise "
                "enforcement once the reports show only your own mail",
                txt_line(f"_dmarc.{policy.domain}", enforced),
            )
        )
    if t.get("pct", "100") != "100":
        found.append(warn(what, f"pct={t['pct']}: the policy applies to part of the mail only"))
    for key in ("rua", "ruf"):
        wrong = [u for u in t.get(key, "").split(",") if u and not u.lower().startswith("mailto:")]
        if wrong:
            found.append(
                warn(
                    what,
                    f"{key}={','.join(wrong)}: reports go to mailto: addresses only, receivers "
                    f"skip anything else; use {key}=mailto:dmarc-reports@{domain}",
                )
            )
    if not t.get("rua"):
        found.append(
            warn(
                what,
                "no rua=: nobody receives the aggregate reports that show "
                f"who sends as {domain}; add rua=mailto:dmarc-reports@{domain}",
            )
        )
    found.extend(_alignment(dns, domain, (envelope_domain, dkim_domain), t, passing))
    return found


def _one_of(what: str, problems: list[str], competing: list[Policy]) -> Finding:
    """Several records at one name: each named, and the one to keep — the strongest
    policy, ``v=DMARC1`` first."""
    name = competing[0].domain
    first = [c.record for c in competing if _v_is_first(c.record)]
    later = [c.record for c in competing if not _v_is_first(c.record)]
    if len(first) > 1:
        why = f"receivers apply none of {', '.join(map(repr, first))} (RFC 7489 §6.6.3)"
    elif first:
        why = f"receivers apply {first[0]!r} alone"
    else:
        why = "receivers apply none"
    if later:
        why += (
            f"; {', '.join(map(repr, later))} {'is' if len(later) == 1 else 'are'} ignored: "
            "v=DMARC1 must be the first tag"
        )
    valid = [c for c in competing if c.tags.get("p", "").lower() in _POLICIES]
    if not valid:
        return fail(what, f"{'; '.join(problems)}: {why}; keep one, with a valid p=")
    keep = max(valid, key=lambda c: (_POLICIES.index(c.tags["p"].lower()), c.record in first))
    return fail(
        what,
        f"{'; '.join(problems)}: {why}. Keep one record, the one with the strongest policy "
        f"(p={keep.tags['p'].lower()}) with v=DMARC1 first, and remove the other(s)",
        txt_line(f"_dmarc.{name}", _v_first(keep.record)),
    )


def _misordered(dns: Dns, domain: str) -> str | None:
    """A record at ``_dmarc.domain`` that has v=DMARC1, but not first."""
    try:
        values = dns.txt(f"_dmarc.{domain}").values
    except LookupFailed:
        return None
    found = [v for v in values if _looks_dmarc(v)]
    return found[0] if len(found) == 1 and not _v_is_first(found[0]) else None


def _with_policy(record: str, given: str) -> str:
    """``record`` with a valid ``p=``: the policy ``given`` misspells, or ``none`` (a record
    without one, or one that names no policy, applies none)."""
    close = difflib.get_close_matches(given.lower(), _POLICIES, 1, 0.6)
    parts = [p.strip() for p in record.split(";") if p.strip()]
    rest = [p for p in parts[1:] if p.partition("=")[0].strip().lower() != "p"]
    return "; ".join(["v=DMARC1", f"p={close[0] if close else 'none'}", *rest])


def _v_first(record: str) -> str:
    """``record``'s tags with ``v=DMARC1`` moved to the front."""
    parts = [p.strip() for p in record.split(";") if p.strip()]
    rest = [p for p in parts if p.partition("=")[0].strip().lower() != "v"]
    return "; ".join(["v=DMARC1", *rest])


def _alignment(
    dns: Dns,
    domain: str,
    signers: tuple[str, str | None],
    t: dict[str, str],
    passing: tuple[bool, bool],
) -> list[Finding]:
    """Whether SPF or DKIM both passes and aligns with From: only then does it count."""
    what = f"DMARC _dmarc.{domain}"
    envelope, dkim_domain = signers
    spf_strict, dkim_strict = t.get("aspf", "r") == "s", t.get("adkim", "r") == "s"
    mode = {True: "strict", False: "relaxed"}
    spf_aligns = aligned(dns, envelope, domain, spf_strict)
    dkim_aligns = dkim_domain is not None and aligned(dns, dkim_domain, domain, dkim_strict)
    spf_ok, dkim_ok = spf_aligns and passing[0], dkim_aligns and passing[1]
    spf_says = f"SPF of the envelope sender bounces+…@{envelope} " + _says(
        spf_aligns, passing[0], f"({mode[spf_strict]}, aspf)", "SPF"
    )
    dkim_says = (
        "no DKIM signature (REENGAGE_DKIM_* not set)"
        if dkim_domain is None
        else f"DKIM d={dkim_domain} "
        + _says(dkim_aligns, passing[1], f"({mode[dkim_strict]}, adkim)", "DKIM")
    )
    said = f"with From @{domain}: {spf_says}; {dkim_says}"
    broken = [
        n
        for n, a, p in (("SPF", spf_aligns, passing[0]), ("DKIM", dkim_aligns, passing[1]))
        if a and not p
    ]
    if not (spf_ok or dkim_ok):
        mend = (
            f"mend the {' and '.join(broken)} record{'s' if len(broken) > 1 else ''} above"
            if broken
            else f"sign with d={domain} (REENGAGE_DKIM_DOMAIN)"
        )
        return [fail(what, f"{said}: every mail fails DMARC; {mend}")]
    if broken:
        return [
            warn(
                what,
                f"{said}: DMARC passes through {'DKIM' if dkim_ok else 'SPF'} alone until the "
                f"{broken[0]} record above is mended",
            )
        ]
    found = [ok(what, said)]
    if not dkim_ok:
        found.append(
            warn(
                what,
                "only SPF aligns: a forwarded mail fails DMARC; sign with "
                f"d={domain} (REENGAGE_DKIM_DOMAIN) so DKIM aligns too",
            )
        )
    return found


def _says(aligns: bool, passes: bool, how: str, name: str) -> str:
    if not aligns:
        return f"does not align {how}"
    if not passes:
        return f"would align {how} but does not pass: see the {name} FAIL above"
    return f"aligns {how}"
