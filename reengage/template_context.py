"""What templates may know about the customer a mail is for: who they are and their rhythm
as of the send moment, as plain data (the sandbox sees no objects).

A value the customer lacks is :func:`~reengage.render.missing`, never ``None``; dates stay
dates for the ``date`` filter. :mod:`reengage.compose` puts these beside the campaign, the
company and the links. Pure: ``today`` and the assessment are passed in.
"""

from __future__ import annotations

import calendar
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from reengage.detect import Assessment
from reengage.models import Customer
from reengage.render import Yearly, missing
from reengage.timeutil import UNKNOWN_YEAR


def customer_context(
    customer: Customer, rep_name: str | None = None, *, today: date | None = None
) -> dict[str, Any]:
    """What templates may know about a customer (plain data: the sandbox sees no objects).

    A value the customer does not have is :func:`~reengage.render.missing`: falsy in an
    ``{% if %}``, an error naming the field when printed — never "None" in a mail. Dates
    are dates (for the ``date`` filter); a birthday, or a yearly date of unknown year, never
    shows a year. ``today`` gives each important date its ``next`` occurrence.
    """
    name = " ".join(p for p in (customer.first_name, customer.last_name) if p)
    dates = [_important_date(entry, today) for entry in customer.important_dates]
    birthday = next((d["date"] for d in dates if d["label"] == "birthday"), None)
    values: dict[str, Any] = {
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "name": name,
        "company": customer.company,
        "email": customer.email,
        "locale": customer.locale,
        "segment": customer.segment,
        "interests": list(customer.interests),
        "last_product": customer.last_product,
        "important_dates": [d for d in dates if d["date"] is not None],
        "birthday": birthday,
        "decision_maker": customer.decision_maker,
        "rep_name": rep_name,
    }
    return {k: _or_missing(f"customer.{k}", v) for k, v in values.items()}


def rhythm_context(assessment: Assessment | None, zone: ZoneInfo | None = None) -> dict[str, Any]:
    """The customer's rhythm and signals as of the send moment, for templates to mention.

    ``expected_gap_days`` is their *own* rhythm: missing for a one-time buyer, whose gap
    would only be the segment's. Everything is missing for a customer with no activity.
    """
    if assessment is None:
        values: dict[str, Any] = dict.fromkeys(RHYTHM_FIELDS)
        values["orders"] = 0
    else:
        p = assessment.profile
        last = p.last_order_at or p.last_activity_at
        values = {
            "days_silent": round(assessment.days_silent),
            "expected_gap_days": (
                assessment.expected_gap_days if p.typical_gap_days is not None else None
            ),
            "lapse_ratio": assessment.lapse_ratio,
            "lapse_score": assessment.lapse_score,
            "orders": p.order_count,
            "last_order": last.astimezone(zone or ZoneInfo("UTC")).date() if last else None,
            "why": assessment.why or None,
        }
    return {k: _or_missing(f"rhythm.{k}", v) for k, v in values.items()}


RHYTHM_FIELDS = (
    "days_silent",
    "expected_gap_days",
    "lapse_ratio",
    "lapse_score",
    "orders",
    "last_order",
    "why",
)


def _or_missing(name: str, value: Any) -> Any:
    return missing(name) if value is None or value == "" else value


def _important_date(entry: dict[str, str], today: date | None) -> dict[str, Any]:
    # Stored as ISO text; UNKNOWN_YEAR means "every year, year unknown". A birthday's year is
    # the customer's age: never shown in a mail.
    label = str(entry.get("label") or "important date")
    try:
        day = date.fromisoformat(str(entry.get("date", "")))
    except ValueError:
        return {"label": label, "date": None, "next": missing("next")}
    yearly = day.year == UNKNOWN_YEAR or label.lower() == "birthday"
    return {
        "label": label,
        "date": Yearly(day.month, day.day) if yearly else day,
        "next": _next_occurrence(day, today) if today else missing("next"),
    }


def _next_occurrence(day: date, today: date) -> date:
    for year in (today.year, today.year + 1):
        last = calendar.monthrange(year, day.month)[1]  # 29 Feb falls on 28 Feb
        when = date(year, day.month, min(day.day, last))
        if when >= today:
            return when
    return date(today.year + 1, day.month, min(day.day, 28))
