"""``FakeDetectionReads``: what :func:`reengage.scoring.assess_customers` reads from
:class:`reengage.store.detection.DetectionReads` (profiles, the gap and rhythm samples,
the fitted model), served from profiles a test hands it. The outcome use case reads these
to keep the customer's value at risk with the call."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from reengage.detect import Profile
from reengage.horizon import REGULAR_ORDERS, HorizonChoice
from reengage.lapse_model import LapseModel
from reengage.store.looks import PassState
from tests.fakes.tables import FakeTables


class FakeDetectionReads:
    """``store.detection`` for a handful of customers; no model is fitted unless given."""

    def __init__(self, tables: FakeTables) -> None:
        self._t = tables
        self.by_customer: dict[int, Profile] = {}
        self.model: LapseModel | None = None

    def profiles(
        self,
        *,
        last_order_between: tuple[datetime, datetime] | None = None,
        customer_ids: Sequence[int] | None = None,
        rep_external_ids: Sequence[str] | None = None,
    ) -> Iterator[Profile]:
        for customer_id, profile in sorted(self.by_customer.items()):
            if customer_ids is not None and customer_id not in customer_ids:
                continue
            if last_order_between is not None:
                low, high = last_order_between
                if profile.last_order_at is None or not low <= profile.last_order_at <= high:
                    continue
            if rep_external_ids is not None:
                customer = self._t.customers.get(customer_id)
                if customer is None or customer.rep_external_id not in rep_external_ids:
                    continue
            yield profile

    def gap_sample(self, size: int = 5000) -> list[tuple[str | None, float]]:
        return [
            (p.segment, p.typical_gap_days)
            for _, p in sorted(self.by_customer.items())
            if p.typical_gap_days is not None
        ][:size]

    def rhythm_sample(self, size: int = 2000) -> list[tuple[int, float]]:
        return [
            (p.order_count, p.typical_gap_days)
            for _, p in sorted(self.by_customer.items())
            if p.typical_gap_days is not None
        ][:size]

    def regular_buyers(self) -> int:
        return sum(
            p.order_count >= REGULAR_ORDERS and (p.typical_gap_days or 0) > 0
            for p in self.by_customer.values()
        )

    def regular_sample(self, size: int = 2000) -> list[tuple[int, float]]:
        return [
            (orders, gap)
            for orders, gap in self.rhythm_sample(len(self.by_customer))
            if orders >= REGULAR_ORDERS and gap > 0
        ][:size]

    def latest_lapse_model(self) -> LapseModel | None:
        return self.model

    def kept_horizon(self) -> HorizonChoice | None:
        """No detection pass has run in a fake world: the horizon comes from the sample."""
        return None

    def pass_state(self) -> PassState | None:
        """No detection pass has run in a fake world: the population comes from the sample."""
        return None
