"""The suppression list: addresses never mailed again (a bounce, an unsubscribe, a
complaint). :func:`suppress` is the only writer; addresses are kept in their normal
spelling (see :mod:`reengage.addresses`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reengage.addresses import normalize_or_keep
from reengage.store.engine import upsert_insert
from reengage.store.tables import SUPPRESSIONS


def suppress(conn: Connection, email: str, reason: str, detail: str | None, now: datetime) -> None:
    """Never mail ``email`` again (idempotent)."""
    insert = upsert_insert(conn.dialect.name, SUPPRESSIONS)
    conn.execute(
        insert.values(
            email=normalize_or_keep(email),
            reason=reason,
            detail=(detail or "")[:500],
            created_at=now,
        ).on_conflict_do_nothing(index_elements=["email"])
    )


def is_suppressed(conn: Connection, email: str) -> bool:
    """Whether an address is on the suppression list."""
    found = conn.scalar(
        sa.select(SUPPRESSIONS.c.email).where(SUPPRESSIONS.c.email == normalize_or_keep(email))
    )
    return found is not None


def suppressed_among(conn: Connection, emails: Iterable[str]) -> set[str]:
    """Which of these addresses are suppressed (lower-cased as given), however each was
    spelled when it was suppressed (see :mod:`reengage.addresses`)."""
    spelled: dict[str, set[str]] = {}
    for email in emails:
        spelled.setdefault(normalize_or_keep(email), set()).add(email.lower())
    found = conn.execute(
        sa.select(SUPPRESSIONS.c.email).where(SUPPRESSIONS.c.email.in_(sorted(spelled)))
    )
    return {given for (email,) in found for given in spelled.get(email, ())}
