"""SPF record syntax (RFC 7208 §4.6, §5, §6): what makes a receiver give up on a record.

A record a receiver cannot parse — an unknown mechanism (``inclde:``), an address or prefix
that is no address (``ip4:999.1.1.1``, ``/99``), a domain that is no domain name
(``a:bad..name``), a modifier without its ``=value`` or given twice, bytes that are not
ASCII — is a permanent error: SPF fails for every mail, as if there were no record.
:func:`syntax_errors` names each such term, and :func:`corrected` offers the record with
what can be mended mended (a misspelt mechanism's name) and the rest left out.
"""

from __future__ import annotations

import difflib
import ipaddress
import re

MECHANISMS = ("all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists")
_NEEDS_DOMAIN = ("include", "exists")
_MODIFIERS_ONCE = ("redirect", "exp")
_ALL = re.compile(r"(?i)[+?~-]?all")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*")
_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")
_MACRO = re.compile(r"(?i)%\{[slodiphcrtv]\d*r?[-.+,/_=]*\}|%%|%_|%-")


def _domain_problem(domain: str) -> str | None:
    """Why ``domain`` (a domain-spec) is not one, or None when it is."""
    if "%" in domain:
        rest = _MACRO.sub("x.x", domain)
        if "%" in rest:
            return "has a % that starts no macro (write %% for a percent sign)"
        domain = rest
    labels = domain.rstrip(".").split(".")
    if len(domain) > 253 or any(not _LABEL.fullmatch(label) for label in labels):
        return "is not a domain name (an empty label, a space or a character DNS does not allow)"
    if len(labels) < 2 or labels[-1].isdigit():
        return "is not a fully qualified domain name"
    return None


def _cidr_problem(text: str) -> str | None:
    """Why a ``/24``, ``//64`` or ``/24//64`` suffix is wrong, or None."""
    if not text.startswith("/"):
        return f"{text!r} is no prefix length"
    if text.startswith("//"):
        four, six = "", text[2:]
    else:
        four, _, six = text[1:].partition("//")
    for value, top in ((four, 32), (six, 128)):
        if value and (not value.isdigit() or int(value) > top or value != str(int(value))):
            return f"the prefix /{value} is not 0 to {top}"
    return None


def term_problem(word: str) -> str | None:
    """Why one term of a record is one a receiver cannot parse, or None."""
    if not word.isascii():
        return "holds characters that are not ASCII (or bytes that are not text)"
    name, eq, value = word.partition("=")
    if eq and _NAME.fullmatch(name):  # a modifier
        problem = _domain_problem(value) if name.lower() in _MODIFIERS_ONCE else None
        return (
            f"its domain {value!r} {problem}" if problem else None
        )  # unknown modifiers are ignored (RFC 7208 §6)
    body = word[1:] if word[:1] in "+-~?" else word
    found = re.fullmatch(r"([A-Za-z][A-Za-z0-9_.-]*)(.*)", body)
    if not found:
        return "is neither a mechanism nor a modifier"
    mechanism, rest = found.group(1).lower(), found.group(2)
    if mechanism in _MODIFIERS_ONCE:
        return f"{mechanism} is a modifier: it needs =value ({mechanism}=domain), or remove it"
    if mechanism not in MECHANISMS:
        close = difflib.get_close_matches(mechanism, MECHANISMS, 1, 0.7)
        return f"{mechanism!r} is no SPF mechanism" + (f" (meant {close[0]}?)" if close else "")
    if mechanism == "all":
        return f"all takes no value ({rest!r})" if rest else None
    if mechanism in ("ip4", "ip6"):
        if not rest.startswith(":"):
            return f"{mechanism} needs an address ({mechanism}:…)"
        address, slash, prefix = rest[1:].partition("/")
        try:
            kind = ipaddress.ip_address(address)
        except ValueError:
            return f"{address!r} is not an IPv{mechanism[-1]} address"
        if kind.version != int(mechanism[-1]):
            return f"{address!r} is not an IPv{mechanism[-1]} address"
        top = 32 if mechanism == "ip4" else 128
        if slash and not (prefix.isdigit() and int(prefix) <= top and prefix == str(int(prefix))):
            return f"the prefix /{prefix} is not 0 to {top}"
        return None
    domain, cidr = rest, ""
    if rest.startswith(":"):
        domain, slash, tail = rest[1:].partition("/")
        cidr = slash + tail
    elif rest:
        domain, cidr = "", rest
    if mechanism in _NEEDS_DOMAIN and not domain:
        return f"{mechanism} needs a domain ({mechanism}:domain)"
    if rest.startswith(":") and (problem := _domain_problem(domain)):
        return f"its domain {domain!r} {problem}"
    if cidr and (mechanism in ("a", "mx")) and (problem := _cidr_problem(cidr)):
        return problem
    if cidr and mechanism not in ("a", "mx"):
        return f"{mechanism} takes no prefix length"
    return None


def syntax_errors(record: str) -> list[str]:
    """Each reason a receiver gives a permanent error for ``record`` (a ``v=spf1`` record),
    term by term; empty when it parses."""
    errors = []
    words = record.split()[1:]
    for word in words:
        if problem := term_problem(word):
            errors.append(f"{word!r}: {problem}")
    if not record.isascii() and all(w.isascii() for w in words):
        errors.append("the record holds characters that are not ASCII: receivers cannot read it")
    for name in _MODIFIERS_ONCE:
        given = [w for w in words if w.lower().startswith(name + "=")]
        if len(given) > 1:
            errors.append(f"{name}= is given {len(given)} times: at most once")
    return errors


def dead_terms(record: str) -> tuple[str, list[str]]:
    """The first ``all`` of ``record`` and the mechanisms after it (another ``all`` too),
    which receivers never evaluate (RFC 7208 §5.1); ``("", [])`` without an ``all``."""
    words = record.split()[1:]
    first = next((i for i, w in enumerate(words) if _ALL.fullmatch(w)), None)
    if first is None:
        return "", []
    return words[first], [w for w in words[first + 1 :] if "=" not in w]


def corrected(record: str) -> str | None:
    """``record`` with a misspelt mechanism's name or a broken prefix mended, one ``all``
    (the first, made ``~all`` when it is ``+all`` or ``?all``) at the end after the
    mechanisms that followed it, each modifier once and a bare ``exp`` left out; None when a
    term can only be dropped (the fixed record would authorise other servers)."""
    out: list[str] = []
    first_all = None
    modifiers: set[str] = set()
    for word in record.split()[1:]:
        if _ALL.fullmatch(word):
            first_all = first_all or word
            continue
        name = word.partition("=")[0].lower()
        if "=" in word and name in _MODIFIERS_ONCE:
            if name in modifiers:
                continue
            modifiers.add(name)
        if term_problem(word) is None:
            out.append(word)
            continue
        mended = mended_term(word)
        if mended is None and word.lower() != "exp":
            return None
        if mended is not None:
            out.append(mended)
    if not record.split()[0].isascii():
        return None
    if first_all and first_all[0] not in "-~":
        first_all = "~all"  # +all (or a bare all) and ?all protect nothing: never offered
    return " ".join(["v=spf1", *out, *([first_all] if first_all else [])])


def mended_term(word: str) -> str | None:
    """A misspelt mechanism with its name corrected, or None when it cannot be mended."""
    qualifier = word[0] if word[:1] in "+-~?" else ""
    body = word[len(qualifier) :]
    found = re.fullmatch(r"([A-Za-z][A-Za-z0-9_.-]*)(.*)", body)
    if not found or not word.isascii():
        return None
    name, rest = found.group(1).lower(), found.group(2)
    if name in ("ip4", "ip6", "a", "mx") and "/" in rest:  # a broken prefix: the host alone
        candidate = qualifier + name + rest.partition("/")[0]
        return candidate if term_problem(candidate) is None else None
    close = difflib.get_close_matches(name, MECHANISMS, 1, 0.7)
    if not close or close[0] == name:
        return None
    candidate = qualifier + close[0] + found.group(2)
    return candidate if term_problem(candidate) is None else None
