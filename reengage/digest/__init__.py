"""The rep's morning: who to call today and why, the digest mail, and call outcomes.

``calllist`` ranks each rep's clients worth a call; ``prompts`` writes what to ask;
``mail`` composes the digest and sends it once per rep per day; ``outcomes`` records what
the rep learned, acts on it, and sums up why customers stopped.
"""

from reengage.digest.calllist import CallItem, CallList, ListPolicy, build_lists, local_day
from reengage.digest.mail import (
    DigestConfig,
    DigestReport,
    compose_digest,
    outcome_link,
    preview_digest,
    send_digests,
)
from reengage.digest.outcomes import (
    Acted,
    CallContext,
    CallReport,
    CausesReport,
    OutcomeError,
    causes,
    record_outcome,
)

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
