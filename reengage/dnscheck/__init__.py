"""Checks of the sender's DNS records, as ``reengage doctor --sender`` reports them.

``lookup`` asks a DNS server (dnspython); ``spf``, ``dkimkey`` and ``dmarc`` each check one
kind of record and say what to publish; ``sender`` runs them all for the configured setup.
Every check returns :class:`~reengage.dnscheck.findings.Finding` lines and never raises for
what it finds in DNS: a server that does not answer is one of the findings.
"""

from __future__ import annotations

from reengage.dnscheck.findings import Finding, Level
from reengage.dnscheck.lookup import Dns, LookupFailed
from reengage.dnscheck.sender import SenderSetup, check_complaints, check_sender

__all__ = [
    "Dns",
    "Finding",
    "Level",
    "LookupFailed",
    "SenderSetup",
    "check_complaints",
    "check_sender",
]
