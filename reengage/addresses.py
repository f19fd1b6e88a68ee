"""One spelling per email address, wherever an address enters or is compared.

An address arrives from a customer import, a provider's webhook, a bounce report or a
reply, each spelled its own way: ``Ana@Example.COM``, ``ana@example.com\\n``,
``ana@bücher.example`` or ``ana@xn--bcher-kva.example``. The suppression list, the
customer table and every match between them use :func:`normalize`, so a suppressed
address is never mailed again because it was written differently.

The rule: surrounding whitespace goes, the address is lower-cased (as reengage has always
stored it; no mail provider in practice treats the local part's case as meaningful), and
an internationalized domain is written as its ASCII form (IDNA, UTS #46), the form SMTP
uses. The local part is kept as it is otherwise.
"""

from __future__ import annotations

import idna


class AddressError(ValueError):
    """An address that cannot be written in one spelling (no ``@``, or a domain that is not
    a valid international domain name)."""


def normalize(address: str) -> str:
    """The one spelling of ``address``; raises :class:`AddressError` when it has none."""
    text = address.strip().lower()
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        raise AddressError(f"{address.strip()!r} is not an email address like ana@example.com")
    if domain.isascii():
        return text
    try:
        ascii_domain = idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise AddressError(
            f"{address.strip()!r}: the domain {domain!r} is not a valid international "
            f"domain name ({exc})"
        ) from exc
    return f"{local}@{ascii_domain}"


def normalize_or_keep(address: str) -> str:
    """:func:`normalize`, or the address stripped and lower-cased when it has no one
    spelling (for comparing what is already stored, never for accepting new input)."""
    try:
        return normalize(address)
    except AddressError:
        return address.strip().lower()
