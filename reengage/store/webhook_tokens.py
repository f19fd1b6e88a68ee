"""``store.webhook_tokens``: the one-time tokens of providers' webhook signatures, shared by
every process that answers webhooks.

Mailgun signs a timestamp and a token, not the event: a signature seen once could be sent
again with another event inside its fifteen minutes. The first event a token comes with is
kept here; the same token with the same event again (the provider's retry) is fine, with
any other event it is a replay, whichever worker it reaches.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reengage.store.engine import upsert_insert
from reengage.store.tables import WEBHOOK_TOKENS


class WebhookTokens:
    """``store.webhook_tokens.claim(...)``: whether a signature's token may carry an event."""

    def __init__(self, tx: Callable[[], AbstractContextManager[Connection]]) -> None:
        self._tx = tx

    def claim(
        self, provider: str, token: str, event: str, now: datetime, *, keep: timedelta
    ) -> bool:
        """Whether ``token`` may come with ``event``: its first use, or the same event
        again. Tokens older than ``keep`` (beyond which their signatures are refused as
        stale anyway) are forgotten."""
        with self._tx() as conn:
            conn.execute(WEBHOOK_TOKENS.delete().where(WEBHOOK_TOKENS.c.seen_at < now - keep))
            conn.execute(
                upsert_insert(conn.dialect.name, WEBHOOK_TOKENS)
                .values(provider=provider, token=token, event=event, seen_at=now)
                .on_conflict_do_nothing(index_elements=["provider", "token"])
            )
            first = conn.execute(
                sa.select(WEBHOOK_TOKENS.c.event).where(
                    WEBHOOK_TOKENS.c.provider == provider, WEBHOOK_TOKENS.c.token == token
                )
            ).scalar_one()
        return bool(first == event)
