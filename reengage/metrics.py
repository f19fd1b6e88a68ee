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
MAILBOX_UNMARKED = Gauge(
    "reengage_mailbox_unmarked_mails",
    "Mails the last poll of the inbound mailbox recorded but could not move, flag or "
    "delete (they stay and are marked at a later poll; the log says why: "
    "mailbox_marking_failed)",
    registry=REGISTRY,
)
UNMARKED_SAMPLE = "reengage_mailbox_unmarked_mails"  # /healthz reads it too

LOOP_LAG = Histogram(
    "reengage_event_loop_lag_seconds",
    "How late the event loop (web app, inbound mail, sends) woke a timer: a database call "
    "or other work holding the loop shows up here as its length",
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
LOOP_LAG_MAX = Gauge(
    "reengage_event_loop_lag_max_seconds",
    "The longest the event loop was held since the service started",
    registry=REGISTRY,
)


def exposition() -> bytes:
    """The text format Prometheus scrapes."""
    return bytes(generate_latest(REGISTRY))
