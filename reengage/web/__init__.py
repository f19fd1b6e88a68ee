"""The HTTP side (Starlette, served by uvicorn): tracking links, the preferences page with
unsubscribe and pause, the reps' call outcome form, the dashboard, the ingest API and
providers' webhooks; ``/healthz`` and ``/metrics`` on their own (operations) address."""

from reengage.web.app import create_app, ops_app
from reengage.web.config import WebConfig

__all__ = ["WebConfig", "create_app", "ops_app"]
