"""The HTTP side (Starlette, served by uvicorn): tracking links, the preferences page with
unsubscribe and pause, the reps' call outcome form, the ingest API and providers' webhooks,
``/healthz`` and ``/metrics``."""

from reengage.web.app import WebConfig, create_app

__all__ = ["WebConfig", "create_app"]
