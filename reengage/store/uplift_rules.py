"""``store.uplift_rules``: the segments each campaign's ``min_uplift`` leaves out, as last
measured (``uplift_rules``).

Measuring them is a grouped query over every enrollment (seconds on millions), so the
detection pass measures at most once an hour and keeps the answer here
(:func:`reengage.uplift.with_min_uplift`). Several workers may find a rule stale at once:
each writes only over the rule it saw, so the first one's answer stands and every worker
reads that one back — their passes filter with the same list, and share one fingerprint.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reengage.store.engine import upsert_insert
from reengage.store.tables import UPLIFT_RULES


@dataclass(frozen=True)
class KeptRule:
    """What a campaign's ``min_uplift`` left out when measured at ``measured_at``:
    ``(segment or None, its uplift)`` of each segment below the bar."""

    campaign_id: str
    min_uplift: float
    measured_at: datetime
    segments: tuple[tuple[str | None, float], ...]


class UpliftRules:
    """Read and keep the measured ``min_uplift`` rules; one transaction a call."""

    def __init__(self, tx: Callable[[], AbstractContextManager[Connection]], dialect: str) -> None:
        self._tx = tx
        self._dialect = dialect

    def read(self, campaign_ids: Sequence[str]) -> dict[str, KeptRule]:
        """The kept rules of these campaigns (none for a campaign never measured)."""
        query = sa.select(UPLIFT_RULES).where(UPLIFT_RULES.c.campaign_id.in_(list(campaign_ids)))
        with self._tx() as conn:
            return {
                row.campaign_id: KeptRule(
                    row.campaign_id,
                    row.min_uplift,
                    row.measured_at,
                    tuple((segment, float(uplift)) for segment, uplift in row.segments),
                )
                for row in conn.execute(query)
            }

    def keep(self, rules: Sequence[KeptRule], seen: dict[str, datetime | None]) -> None:
        """Write each rule over the one measured at ``seen[campaign]`` (None: there was
        none); a rule another worker wrote meanwhile stays as it is."""
        with self._tx() as conn:
            for rule in rules:
                values = {
                    "min_uplift": rule.min_uplift,
                    "measured_at": rule.measured_at,
                    "segments": [list(pair) for pair in rule.segments],
                }
                before = seen.get(rule.campaign_id)
                if before is None:
                    insert = upsert_insert(self._dialect, UPLIFT_RULES).values(
                        campaign_id=rule.campaign_id, **values
                    )
                    conn.execute(insert.on_conflict_do_nothing(index_elements=["campaign_id"]))
                else:
                    conn.execute(
                        UPLIFT_RULES.update()
                        .where(
                            UPLIFT_RULES.c.campaign_id == rule.campaign_id,
                            UPLIFT_RULES.c.measured_at == before,
                        )
                        .values(**values)
                    )
