"""The daemon's use cases, each taking ``now``: enroll the lapsed, send what is due, refit
the lapse model, tidy up.

The scheduler only calls these; the database decides what is due. They live in
``reengage.enroll`` (the detection pass), ``reengage.dispatch`` (claim, send, record) and
``reengage.refit``; this module is the one name the scheduler, the CLI and the tests use.
"""

from __future__ import annotations

from reengage.dispatch import DispatchReport, count_held, dispatch_due, expire_leases
from reengage.enroll import EnrollReport, detect_and_enroll
from reengage.recheck import PUT_OFF
from reengage.refit import (
    REFIT_CHECK_S,
    REFIT_LOCK,
    close_lost,
    refit_due,
    refit_lost,
    refit_model,
)
from reengage.retries import CLAIM_LEASE, LEASE, RETRY_BASE, RETRY_MAX
from reengage.spool import write_spooled

__all__ = [
    "CLAIM_LEASE",
    "LEASE",
    "PUT_OFF",
    "REFIT_CHECK_S",
    "REFIT_LOCK",
    "RETRY_BASE",
    "RETRY_MAX",
    "DispatchReport",
    "EnrollReport",
    "close_lost",
    "count_held",
    "detect_and_enroll",
    "dispatch_due",
    "expire_leases",
    "refit_due",
    "refit_lost",
    "refit_model",
    "write_spooled",
]
