"""The sending protocol's SQL, by concern, gathered here under the names other layers use.

Never twice: a message row ``(enrollment, step)`` is unique and is written — and committed
— as ``queued`` before SMTP is touched, and turned ``sending`` (committed) just before its
bytes go to the server. Never lost: a ``queued`` row whose worker died is due again at once
(nothing went out); a ``sending`` one becomes ``unknown``, its enrollment is held for a
person (``reengage sends resolve``), and it is never re-sent blindly.

Where each part lives: :mod:`~reengage.store.enrollments` (entering, moving on, ending),
:mod:`~reengage.store.enrollment_reads` (what is read of enrollments),
:mod:`~reengage.store.claims` (claims and leases), :mod:`~reengage.store.messages` (message
rows and their outcomes), :mod:`~reengage.store.settling` (held messages a person settles)
and :mod:`~reengage.store.suppressions` (the suppression list).
"""

from __future__ import annotations

from reengage.store.claims import Claimed, Started
from reengage.store.enrollment_reads import EnrollmentLine, Running
from reengage.store.enrollments import NewEnrollment, end_enrollments
from reengage.store.messages import Sent
from reengage.store.settling import Held, HeldMessage
from reengage.store.suppressions import suppress
from reengage.store.tables import ENROLLMENTS, MESSAGES

__all__ = [
    "ENROLLMENTS",
    "MESSAGES",
    "Claimed",
    "EnrollmentLine",
    "Held",
    "HeldMessage",
    "NewEnrollment",
    "Running",
    "Sent",
    "Started",
    "end_enrollments",
    "suppress",
]
