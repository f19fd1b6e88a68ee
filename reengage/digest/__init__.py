"""The rep's morning: who to call today and why, the digest mail, and call outcomes.

``calllist`` ranks each rep's clients worth a call; ``prompts`` writes what to ask;
``mail`` composes the digest and ``sending`` sends it once per rep per day; ``outcomes``
records what the rep learned, acts on it, and sums up why customers stopped.
"""

from reengage.digest.calllist import CallItem, CallList, ListPolicy, build_lists, local_day
from reengage.digest.mail import DigestConfig, compose_digest, outcome_link, preview_digest
from reengage.digest.outcomes import (
    Acted,
    CallContext,
    CallReport,
    CausesReport,
    OutcomeError,
    causes,
    record_outcome,
)
from reengage.digest.sending import DigestReport, send_digests

__all__ = [
    "Acted",
    "CallContext",
    "CallItem",
    "CallList",
    "CallReport",
    "CausesReport",
    "DigestConfig",
    "DigestReport",
    "ListPolicy",
    "OutcomeError",
    "build_lists",
    "causes",
    "compose_digest",
    "local_day",
    "outcome_link",
    "preview_digest",
    "record_outcome",
    "send_digests",
]
