"""Prometheus metrics (prometheus-client), declared once; ``/metrics`` serves them."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry()

SENDS = Counter(
    "reengage_sends",
    "Steps carried out by the dispatcher, by result",
    ["result"],
    registry=REGISTRY,
)
SEND_SECONDS = Histogram(
    "reengage_send_seconds",
    "Time from claim to recorded outcome of one mail",
    registry=REGISTRY,
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
QUEUE_DEPTH = Gauge(
    "reengage_queue_depth",
    "Enrollments with a step due now",
    registry=REGISTRY,
)
UNKNOWN = Gauge(
    "reengage_unknown_messages",
    "Sends whose outcome is unknown (reengage sends list --status unknown)",
    registry=REGISTRY,
)
FAILED = Gauge(
    "reengage_failed_messages",
    "Mails never sent: a template failed, or the server refused the mail itself "
    "(reengage sends list --status failed)",
    registry=REGISTRY,
)


def exposition() -> bytes:
    """The text format Prometheus scrapes."""
    return bytes(generate_latest(REGISTRY))
