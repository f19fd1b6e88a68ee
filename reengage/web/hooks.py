"""The email providers' own webhooks, each on when its secret is set:

- ``POST /api/v1/events/ses``: Amazon SES notifications through SNS (signature checked
  against the certificate at an SNS address; subscriptions confirmed; configured topics
  only), ``REENGAGE_SES_TOPIC_ARNS``;
- ``POST /api/v1/events/sendgrid``: SendGrid's signed Event Webhook,
  ``REENGAGE_SENDGRID_WEBHOOK_KEY``;
- ``POST /api/v1/events/postmark``: Postmark's webhooks behind basic auth,
  ``REENGAGE_POSTMARK_WEBHOOK_AUTH``;
- ``POST /api/v1/events/mailgun``: Mailgun's HMAC-signed webhooks,
  ``REENGAGE_MAILGUN_SIGNING_KEY``.

A call that is unsigned or badly signed is refused (401/403) and records nothing. The
events of a genuine one are recorded like ``POST /api/v1/events``'s, once per provider
event id; a malformed event is reported by its index and the others are still recorded.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from reengage.errors import ReengageError
from reengage.logs import get_logger
from reengage.store import Store
from reengage.web.forms import TooLarge, TooSlow, read_limited
from reengage.web.providers import mailgun, postmark, sendgrid, ses, sns
from reengage.web.providers.common import Parsed, Refused, record_all

if TYPE_CHECKING:
    from reengage.web.config import WebConfig

log = get_logger(__name__)

MAX_BODY = 10 * 1024 * 1024
Handler = Callable[[Request, bytes], Awaitable[list[Parsed] | Response]]


def routes(store: Store, config: WebConfig) -> list[Route]:
    """The four providers' endpoints; one whose secret is unset answers 404."""
    fetch = config.fetch_url or sns.fetch_https
    verifier = sns.Verifier(config.ses_topic_arns, fetch)
    sendgrid_key = sendgrid.public_key(config.sendgrid_key) if config.sendgrid_key else None

    async def from_ses(request: Request, raw: bytes) -> list[Parsed] | Response:
        message = await run_in_threadpool(verifier.check, _json(raw))
        kind = message["Type"]
        if kind == "SubscriptionConfirmation":
            url = message.get("SubscribeURL")
            if not sns.sns_url(url):
                raise Refused(403, "SubscribeURL is not an https URL on sns.<region>.amazonaws.com")
            try:
                await run_in_threadpool(fetch, str(url))
            except OSError as exc:
                log.error(
                    "sns_subscription_not_confirmed", topic=message["TopicArn"], error=str(exc)
                )
                raise Refused(502, f"the subscription could not be confirmed: {exc}") from None
            log.info("sns_subscription_confirmed", topic=message["TopicArn"])
            return JSONResponse({"confirmed": message["TopicArn"]})
        if kind == "UnsubscribeConfirmation":
            log.warning("sns_unsubscribed", topic=message["TopicArn"])
            return JSONResponse({"results": []})
        return ses.events(message)

    async def from_sendgrid(request: Request, raw: bytes) -> list[Parsed] | Response:
        assert sendgrid_key is not None
        sendgrid.verify(sendgrid_key, request.headers, raw, config.clock())
        return sendgrid.events(_json(raw))

    async def from_postmark(request: Request, raw: bytes) -> list[Parsed] | Response:
        return postmark.events(_json(raw))

    async def from_mailgun(request: Request, raw: bytes) -> list[Parsed] | Response:
        assert config.mailgun_key is not None
        body, now = _json(raw), config.clock()
        data = await run_in_threadpool(
            mailgun.verify, config.mailgun_key, body, now, store.webhook_tokens
        )
        return mailgun.events(data)

    def endpoint(
        setting: str, on: object, handler: Handler
    ) -> Callable[[Request], Awaitable[Response]]:
        async def serve(request: Request) -> Response:
            try:
                if not on:
                    raise Refused(
                        404, f"this endpoint is off: set REENGAGE_{setting} to turn it on"
                    )
                if handler is from_postmark:  # before the body is read: it may be anyone's
                    postmark.authorize(
                        str(config.postmark_auth), request.headers.get("authorization", "")
                    )
                raw = await _read(request)
                found = await handler(request, raw)
                if isinstance(found, Response):
                    return found
                results = await record_all(store, found, config.clock, config.policy)
            except Refused as exc:
                if exc.status in (401, 403):
                    log.warning(
                        "webhook_refused", endpoint=setting, status=exc.status, reason=exc.message
                    )
                return _refused(exc, basic=handler is from_postmark)
            except ReengageError as exc:
                log.error("webhook_event_failed", endpoint=setting, error=str(exc))
                return _refused(Refused(503, "the database is not available; try again"))
            return JSONResponse({"results": results})

        return serve

    return [
        Route(
            "/api/v1/events/ses",
            endpoint("SES_TOPIC_ARNS", config.ses_topic_arns, from_ses),
            methods=["POST"],
        ),
        Route(
            "/api/v1/events/sendgrid",
            endpoint("SENDGRID_WEBHOOK_KEY", sendgrid_key, from_sendgrid),
            methods=["POST"],
        ),
        Route(
            "/api/v1/events/postmark",
            endpoint("POSTMARK_WEBHOOK_AUTH", config.postmark_auth, from_postmark),
            methods=["POST"],
        ),
        Route(
            "/api/v1/events/mailgun",
            endpoint("MAILGUN_SIGNING_KEY", config.mailgun_key, from_mailgun),
            methods=["POST"],
        ),
    ]


async def _read(request: Request) -> bytes:
    try:
        return await read_limited(request, MAX_BODY)
    except TooLarge:
        raise Refused(413, f"the body is over {MAX_BODY // 1024 // 1024} MB") from None
    except TooSlow as exc:
        raise Refused(408, str(exc)) from None


def _json(raw: bytes) -> Any:
    try:
        body = json.loads(raw, parse_constant=_no_constant)
        # A lone surrogate (\ud800) parses but can be neither stored nor answered.
        json.dumps(body, ensure_ascii=False).encode("utf-8")
        return body
    except (ValueError, UnicodeError):
        raise Refused(400, "the body is not JSON (UTF-8)") from None
    except RecursionError:
        raise Refused(400, "the body is JSON nested too deeply") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _refused(exc: Refused, *, basic: bool = False) -> Response:
    # Only Postmark's endpoint asks for credentials; the others want a signature.
    headers = (
        {"WWW-Authenticate": 'Basic realm="reengage"'} if basic and exc.status == 401 else None
    )
    return JSONResponse({"error": exc.message}, status_code=exc.status, headers=headers)
