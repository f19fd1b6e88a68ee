"""Send results written late: what a worker learned from the mail server while the
database was away, kept in its spool (``reengage.spool``) and written when it is back.

Each entry is one send's outcome: accepted (``sent``), a temporary refusal (``retry``), a
bounce, a refusal of the mail itself (``failed``), a lost reply (``unknown``), or a mail
that never went out because its ``sending`` mark got no answer (``unsent``). An entry is
written only while its message is still open — ``sending``, or ``unknown`` after its lease
ran out meanwhile — so writing one twice, or after a person settled it, changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reengage.models import MessageStatus
from reengage.store.enrollments import (
    COMPLETE,
    NEXT_STEP,
    due_again,
    end_enrollments,
    hold,
)
from reengage.store.messages import MARK_SENT
from reengage.store.suppressions import suppress
from reengage.store.tables import MESSAGES

_OPEN = MESSAGES.c.status.in_([MessageStatus.SENDING.value, MessageStatus.UNKNOWN.value])


def record_late(conn: Connection, entries: Sequence[dict[str, Any]]) -> int:
    """Write every entry whose message is still open; returns how many were written."""
    return sum(_record(conn, entry) for entry in entries)


def _record(conn: Connection, entry: dict[str, Any]) -> bool:
    outcome = entry.get("outcome", "sent")
    if outcome == "sent":
        return _sent(conn, entry)
    if outcome == "unsent":
        return _unsent(conn, entry)
    message = entry["message_id"]
    response = str(entry["response"])[:500]
    if outcome == "retry":
        moved = conn.execute(
            MESSAGES.update()
            .where(MESSAGES.c.id == message, _OPEN)
            .values(
                status=MessageStatus.RETRY.value,
                smtp_response=response,
                retry_at=entry["retry_at"],
                lease_until=None,
            )
        ).rowcount
        if moved:
            due_again(conn, entry["enrollment_id"], entry["retry_at"])
        return bool(moved)
    status = {
        "bounced": MessageStatus.BOUNCED,
        "failed": MessageStatus.FAILED,
        "unknown": MessageStatus.UNKNOWN,
    }[outcome]
    moved = conn.execute(
        MESSAGES.update()
        .where(MESSAGES.c.id == message, _OPEN)
        .values(status=status.value, smtp_response=response, lease_until=None, retry_at=None)
    ).rowcount
    if not moved:
        return False
    if outcome == "bounced":
        suppress(conn, entry["email"], "bounce", response, entry["now"])
        end_enrollments(conn, "bounce", entry["now"], enrollment_id=entry["enrollment_id"])
    else:  # a person settles it (``reengage sends``), as when it was recorded at once
        hold(conn, entry["enrollment_id"], f"send_{outcome}")
    return True


def _sent(conn: Connection, entry: dict[str, Any]) -> bool:
    done = conn.execute(
        MARK_SENT.where(_OPEN),
        {
            "b_id": entry["message_id"],
            "b_response": str(entry["response"])[:500],
            "b_smtp_id": entry["smtp_id"],
            "b_now": entry["now"],
        },
    )
    if not done.rowcount:
        return False
    step = entry["next_step"]
    if step is None:
        conn.execute(COMPLETE, {"b_id": entry["enrollment_id"], "b_now": entry["now"]})
    else:
        conn.execute(
            NEXT_STEP,
            {
                "b_id": entry["enrollment_id"],
                "b_now": entry["now"],
                "b_step": step[0],
                "b_key": step[1],
                "b_due": step[2],
            },
        )
    return True


def _unsent(conn: Connection, entry: dict[str, Any]) -> bool:
    # Only the row as that mark left it (``sending`` under the lease it wrote, or settled
    # ``unknown`` from there): a later try that holds it now is never touched. Due again.
    now = entry["now"]
    moved = conn.execute(
        MESSAGES.update()
        .where(
            MESSAGES.c.id == entry["message_id"],
            sa.or_(
                sa.and_(
                    MESSAGES.c.status == MessageStatus.SENDING.value,
                    MESSAGES.c.lease_until == entry["marked_until"],
                ),
                MESSAGES.c.status == MessageStatus.UNKNOWN.value,
            ),
        )
        .values(
            status=MessageStatus.RETRY.value,
            retry_at=now,
            lease_until=None,
            smtp_response=None,
            attempts=sa.case((MESSAGES.c.attempts > 0, MESSAGES.c.attempts - 1), else_=0),
        )
    ).rowcount
    if moved:
        due_again(conn, entry["enrollment_id"], now)
    return bool(moved)
