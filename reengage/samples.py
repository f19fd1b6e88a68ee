"""The customers ``reengage validate`` renders every template for: what real data holds.

One sample customer with every field filled lets a template pass that breaks for half the
base (``{{ customer.company }}`` for someone without one, ``{{ rhythm.expected_gap_days |
round }}`` for a one-time buyer). These cover full and empty optional fields, steady and
one-time buyers, a customer with no activity at all, hostile names, and every locale a
template has a variant for. Each is a real :class:`Customer` with a real assessment, so
validate builds their context through the same functions as the daemon.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from reengage.detect import Assessment, Population, Profile, assess
from reengage.lapse_model import LapseModel
from reengage.models import Customer

# Sample customers are assessed as of a fixed moment, so validate says the same every day.
SAMPLE_MOMENT = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Sample:
    """A customer to render for, described for the person reading a problem."""

    label: str  # "a one-time buyer with only an email"
    customer: Customer
    assessment: Assessment | None
    rep_name: str | None


def samples(now: datetime, locales: list[str]) -> list[Sample]:
    """Every kind of customer a template must survive, as of ``now``; one full customer per
    locale in ``locales`` besides English."""
    full = _customer(
        "sample-full",
        first_name="Ana",
        last_name="Li",
        company="Ana's Bakery",
        segment="retail",
        interests=["espresso", "pastry"],
        last_product="espresso beans",
        important_dates=[
            {"label": "birthday", "date": "1980-04-12"},
            {"label": "founded", "date": "2012-09-01"},
            {"label": "anniversary", "date": "2000-02-29"},
        ],
        decision_maker="Ana Li",
    )
    found = [
        Sample("a steady customer with every field filled", full, _steady(full, now), "Kim"),
        Sample(
            "a one-time buyer with only an email",
            _customer("sample-bare"),
            _one_time(_customer("sample-bare"), now),
            None,
        ),
        Sample("a customer with no orders yet", _customer("sample-new"), None, None),
    ]
    hostile = _customer(
        "sample-hostile",
        first_name='<script>alert("x")</script>',
        last_name='O\'Brien "Bob" <bob@evil.example>\r\nBcc: all@example.com',
        company="{{ 7 * 7 }} & Söhne ‮cba",
        interests=["<b>bold</b>"],
        last_product="x" * 300,
    )
    found.append(Sample("a customer whose name and company hold markup", hostile, None, "Kim"))
    english = list(found)
    for locale in locales:
        if locale.lower() in ("en", ""):
            continue
        # Every kind of customer again in each language a template has a variant for: the
        # variant is a template of its own, with its own ways to break.
        for sample in english:
            local = sample.customer.model_copy(
                update={"external_id": f"{sample.customer.external_id}-{locale}", "locale": locale}
            )
            assessment = _steady(local, now) if sample.assessment is not None else None
            if sample.assessment is not None and sample.assessment.profile.order_count < 2:
                assessment = _one_time(local, now)
            found.append(Sample(f"{sample.label} ({locale})", local, assessment, sample.rep_name))
    return found


def _customer(external_id: str, **fields: object) -> Customer:
    values: dict[str, object] = {
        "id": 0,
        "external_id": external_id,
        "email": f"{external_id}@example.com",
        "locale": "en",
        **fields,
    }
    return Customer.model_validate(values)


def _steady(customer: Customer, now: datetime) -> Assessment | None:
    # Orders every 12 days for a year, silent for 41 days, orders shrinking lately.
    return _assessed(customer, now, orders=30, gap=12.0, silent=41.0, value=3600.0, aov=0.6)


def _one_time(customer: Customer, now: datetime) -> Assessment | None:
    return _assessed(customer, now, orders=1, gap=None, silent=75.0, value=40.0, aov=None)


def _assessed(
    customer: Customer,
    now: datetime,
    *,
    orders: int,
    gap: float | None,
    silent: float,
    value: float,
    aov: float | None,
) -> Assessment | None:
    last = now - timedelta(days=silent)
    first = last - timedelta(days=(gap or 0.0) * max(orders - 1, 0))
    profile = Profile(
        customer_id=0,
        external_id=customer.external_id,
        segment=customer.segment,
        activity_count=orders,
        order_count=orders,
        first_order_at=first,
        last_order_at=last,
        last_activity_at=last,
        total_value=value,
        total_margin=value * 0.3,
        typical_gap_days=gap,
        count_ratio=None,
        aov_ratio=aov,
        margin_ratio=aov,
        name=customer.first_name or customer.external_id,
    )
    return assess(profile, Population(), now, LapseModel())
