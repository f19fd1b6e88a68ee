"""The data model: reps, customers and their file, activities, and per-customer stats.

Declarative only (sqlmodel on SQLAlchemy 2); all queries live in ``reengage.store``.
Timestamps are aware UTC in Python and naive UTC in the database (portable to SQLite).
Schema changes go through an Alembic migration in ``reengage/store/migrations``.

One module per concern: :mod:`.customers` (reps, customers, activities, stats, the lapse
model), :mod:`.sending` (enrollments, messages, suppressions, job locks), :mod:`.calls`
(call lists, call outcomes, digests), :mod:`.responses` (responses, replies, unmatched
inbound mail), over :mod:`.base` (the UTC column type, constraint names). Importers use
the names re-exported here.
"""

from __future__ import annotations

from sqlmodel import SQLModel

from reengage.models.base import UTCDateTime
from reengage.models.calls import (
    CallOutcome,
    CallOutcomeChange,
    CallTask,
    CallTaskStatus,
    CauseScope,
    Digest,
    DigestStatus,
    NextStep,
    Reached,
    StopReason,
    WorthIt,
)
from reengage.models.customers import (
    NO_SEGMENT,
    Activity,
    ActivityKind,
    Customer,
    CustomerStats,
    CustomerStatus,
    DetectionChunk,
    DetectionPass,
    DetectionState,
    LapseModelFit,
    LapseRefit,
    Rep,
)
from reengage.models.responses import (
    InboundMail,
    InboundUnmatched,
    Reply,
    Response,
    ResponseKind,
    WebhookToken,
)
from reengage.models.sending import (
    RUNNING,
    Enrollment,
    EnrollmentStatus,
    JobLock,
    Message,
    MessageStatus,
    Suppression,
    UpliftRule,
)

TABLES = (
    Rep,
    Customer,
    Activity,
    CustomerStats,
    DetectionState,
    DetectionPass,
    DetectionChunk,
    LapseModelFit,
    LapseRefit,
    Enrollment,
    Message,
    Suppression,
    CallTask,
    JobLock,
    Response,
    Reply,
    CallOutcome,
    CallOutcomeChange,
    Digest,
    InboundUnmatched,
    InboundMail,
    UpliftRule,
    WebhookToken,
)

__all__ = [
    "NO_SEGMENT",
    "RUNNING",
    "TABLES",
    "Activity",
    "ActivityKind",
    "CallOutcome",
    "CallOutcomeChange",
    "CallTask",
    "CallTaskStatus",
    "CauseScope",
    "Customer",
    "CustomerStats",
    "CustomerStatus",
    "DetectionChunk",
    "DetectionPass",
    "DetectionState",
    "Digest",
    "DigestStatus",
    "Enrollment",
    "EnrollmentStatus",
    "InboundMail",
    "InboundUnmatched",
    "JobLock",
    "LapseModelFit",
    "LapseRefit",
    "Message",
    "MessageStatus",
    "NextStep",
    "Reached",
    "Rep",
    "Reply",
    "Response",
    "ResponseKind",
    "SQLModel",
    "StopReason",
    "Suppression",
    "UTCDateTime",
    "UpliftRule",
    "WebhookToken",
    "WorthIt",
]
