"""One SQLAlchemy handle per table, for the store's SQL (SQLModel builds them from the
models in :mod:`reengage.models`); every store module takes its tables from here."""

from __future__ import annotations

import sqlalchemy as sa

from reengage.models import (
    Activity,
    CallOutcome,
    CallOutcomeChange,
    CallTask,
    Customer,
    CustomerStats,
    DetectionChunk,
    DetectionPass,
    DetectionState,
    Digest,
    Enrollment,
    InboundMail,
    InboundUnmatched,
    JobLock,
    LapseModelFit,
    LapseRefit,
    Message,
    Rep,
    Reply,
    Response,
    Suppression,
    UpliftRule,
    WebhookToken,
)


def _table(model: type) -> sa.Table:
    table: sa.Table = model.__table__  # type: ignore[attr-defined]  # sqlmodel sets it
    return table


ACTIVITIES = _table(Activity)
CALLS = _table(CallTask)
CUSTOMERS = _table(Customer)
DIGESTS = _table(Digest)
ENROLLMENTS = _table(Enrollment)
JOB_LOCKS = _table(JobLock)
LAPSE_MODELS = _table(LapseModelFit)
LAPSE_REFITS = _table(LapseRefit)
MESSAGES = _table(Message)
OUTCOMES = _table(CallOutcome)
OUTCOME_CHANGES = _table(CallOutcomeChange)
REPLIES = _table(Reply)
REPS = _table(Rep)
RESPONSES = _table(Response)
STATS = _table(CustomerStats)
DETECTION_STATE = _table(DetectionState)
DETECTION_PASSES = _table(DetectionPass)
DETECTION_CHUNKS = _table(DetectionChunk)
SUPPRESSIONS = _table(Suppression)
UNMATCHED = _table(InboundUnmatched)
INBOUND_MAILS = _table(InboundMail)
UPLIFT_RULES = _table(UpliftRule)
WEBHOOK_TOKENS = _table(WebhookToken)
