"""The ingest API and providers' webhooks, with the OpenAPI schema that documents them.

``POST /api/v1/customers``, ``/reps`` and ``/activities`` take ``{"items": [...]}`` (up to
10,000) behind a bearer token and go through the same batch importer as CSV files: a bad
item is reported with its index and field and the rest are stored; an id repeated within
one request is stored from its first item and reported at each later one; amounts and
margins are bounded like a file's; items are idempotent on their external ids.
``POST /api/v1/events`` takes bounce, complaint and delivery events in reengage's own shape,
idempotent on the event id (providers' native webhooks are in :mod:`reengage.web.hooks`).
"""

from __future__ import annotations

import hmac
import json
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from reengage import responses
from reengage.errors import ReengageError
from reengage.ingest import Kind, import_items
from reengage.ingest.fields import MAX_MONEY, looks_like_email
from reengage.ingest.records import OPTIONAL, REQUIRED
from reengage.logs import get_logger
from reengage.store import Store
from reengage.web.forms import TooLarge, TooSlow, read_limited
from reengage.web.providers.common import Parsed, Skipped, record_all

if TYPE_CHECKING:
    from reengage.web.config import WebConfig

log = get_logger(__name__)

MAX_ITEMS = 10_000
MAX_BODY = 20 * 1024 * 1024


class ApiProblem(Exception):
    """A request the API refuses, with its status and a sentence saying why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def routes(store: Store, config: WebConfig) -> list[Route]:
    """The API's routes; those whose token is not configured answer 404."""

    def authorize(request: Request, token: str | None, setting: str) -> None:
        if token is None:
            raise ApiProblem(404, f"this endpoint is off: set REENGAGE_{setting} to turn it on")
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
            raise ApiProblem(401, "missing or wrong bearer token (Authorization: Bearer ...)")

    async def body_list(request: Request, key: str) -> list[Any]:
        raw = await _read_body(request)
        try:
            body = json.loads(raw, parse_constant=_no_constant)
            # A lone surrogate (\ud800) parses but can be neither stored nor answered.
            json.dumps(body, ensure_ascii=False).encode("utf-8")
        except (ValueError, UnicodeError):
            raise ApiProblem(400, "the body is not JSON (UTF-8, no NaN)") from None
        except RecursionError:
            raise ApiProblem(400, "the body is JSON nested too deeply") from None
        if not isinstance(body, dict) or not isinstance(body.get(key), list):
            raise ApiProblem(422, f'expected a JSON object {{"{key}": [...]}}')
        found: list[Any] = body[key]
        if len(found) > MAX_ITEMS:
            raise ApiProblem(413, f"{len(found)} {key}: send at most {MAX_ITEMS} per request")
        return found

    def ingest(kind: Kind) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                authorize(request, config.api_token, "API_TOKEN")
                items = await body_list(request, "items")
                report = await run_in_threadpool(
                    lambda: import_items(
                        store,
                        kind,
                        items,
                        now=config.clock(),
                        zone=config.zone,
                        batch_size=config.import_batch_size,
                    )
                )
            except ApiProblem as exc:
                return _error(exc)
            except ReengageError as exc:
                log.error("api_import_failed", kind=kind.value, error=str(exc))
                return _error(ApiProblem(503, "the database is not available; try again"))
            c = report.counts
            return JSONResponse(
                {
                    "received": len(items),
                    "inserted": c.inserted,
                    "updated": c.updated,
                    "unchanged": c.unchanged,
                    "rejected": [
                        {"index": p.line, "field": p.column, "problem": p.problem}
                        for p in report.rejected
                    ],
                    "warnings": report.warnings,
                }
            )

        return endpoint

    async def events(request: Request) -> Response:
        try:
            authorize(request, config.webhook_token, "WEBHOOK_TOKEN")
            raw_events = await body_list(request, "events")
        except ApiProblem as exc:
            return _error(exc)
        items = [_event(raw) for raw in raw_events]
        try:
            results = await record_all(store, items, config.clock, config.policy)
        except ReengageError as exc:
            log.error("webhook_event_failed", error=str(exc))
            return _error(ApiProblem(503, "the database is not available; try again"))
        return JSONResponse({"results": results})

    async def openapi(request: Request) -> Response:
        # The API's description goes with the API: with both endpoints off, it is off too.
        if config.api_token is None and config.webhook_token is None:
            return _error(ApiProblem(404, "the API is off: set REENGAGE_API_TOKEN to turn it on"))
        return JSONResponse(schema())

    return [
        Route("/api/v1/customers", ingest(Kind.CUSTOMERS), methods=["POST"]),
        Route("/api/v1/reps", ingest(Kind.REPS), methods=["POST"]),
        Route("/api/v1/activities", ingest(Kind.ACTIVITIES), methods=["POST"]),
        Route("/api/v1/events", events, methods=["POST"]),
        Route("/api/v1/openapi.json", openapi),
    ]


async def _read_body(request: Request) -> bytes:
    """The body, refused with 413 as soon as it passes MAX_BODY (never held whole)."""
    try:
        return await read_limited(request, MAX_BODY)
    except TooLarge:
        raise ApiProblem(
            413, f"the body is over {MAX_BODY // 1024 // 1024} MB; send batches"
        ) from None
    except TooSlow as exc:
        raise ApiProblem(408, str(exc)) from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _error(exc: ApiProblem) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSONResponse({"error": exc.message}, status_code=exc.status, headers=headers)


def _event(raw: Any) -> Parsed:
    problem = _event_problem(raw)
    if problem:
        return Skipped(None, "unknown", problem)
    fields = ("id", "type", "message", "recipient", "detail")
    return responses.ProviderEvent(**{key: raw.get(key) for key in fields})


def _event_problem(raw: Any) -> str | None:
    if not isinstance(raw, dict):
        return "expected a JSON object"
    if not isinstance(raw.get("id"), str) or not raw["id"].strip() or len(raw["id"]) > 150:
        return "id: the provider's event id is required (a string of up to 150 characters)"
    if raw.get("type") not in responses.PROVIDER_TYPES:
        return f"type: use one of {', '.join(responses.PROVIDER_TYPES)}"
    for key in ("message", "recipient", "detail"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            return f"{key}: expected a string"
    for key in ("id", "message", "recipient", "detail"):
        if raw.get(key) and "\x00" in raw[key]:  # PostgreSQL cannot store it
            return f"{key}: contains a NUL character (\\x00)"
    if not raw.get("message") and not raw.get("recipient"):
        return "message or recipient: say which mail or address the event is about"
    if raw.get("recipient") and not looks_like_email(raw["recipient"]):
        return "recipient: expected an email address like ana@example.com"
    return None


# -- OpenAPI -------------------------------------------------------------------------------

_TYPES: dict[str, dict[str, Any]] = {
    "consent": {"type": ["boolean", "string", "null"]},
    # The bounds apply to a number; a string is held to the same ones when it is read.
    "amount": {"type": ["number", "string", "null"], "minimum": -MAX_MONEY, "maximum": MAX_MONEY},
    "margin": {"type": ["number", "string", "null"], "minimum": -MAX_MONEY, "maximum": MAX_MONEY},
    "interests": {"type": "array", "items": {"type": "string"}},
    "tags": {"type": "array", "items": {"type": "string"}},
    "contacts": {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {k: {"type": "string"} for k in ("name", "role", "phone", "email")},
            "required": ["name"],
        },
    },
    "important_dates": {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {"label": {"type": "string"}, "date": {"type": "string"}},
            "required": ["label", "date"],
        },
    },
    "occurred_at": {"type": "string", "description": "ISO 8601; naive times are local"},
}


def _record_schema(kind: Kind) -> dict[str, Any]:
    fields = (*REQUIRED[kind], *OPTIONAL[kind])
    return {
        "type": "object",
        "required": list(REQUIRED[kind]),
        "properties": {f: _TYPES.get(f, {"type": ["string", "null"]}) for f in fields},
        "additionalProperties": False,
    }


def schema() -> dict[str, Any]:
    """The OpenAPI 3.1 description of the API, built from the same field lists the
    importer checks, so the two cannot drift."""
    error = {"$ref": "#/components/schemas/Error"}
    responses_common = {
        "400": {
            "description": "not JSON (or not UTF-8, NaN, nested too deeply)",
            "content": {"application/json": {"schema": error}},
        },
        "401": {
            "description": "no or wrong token",
            "content": {"application/json": {"schema": error}},
        },
        "404": {
            "description": "endpoint turned off",
            "content": {"application/json": {"schema": error}},
        },
        "413": {"description": "too big", "content": {"application/json": {"schema": error}}},
        "422": {"description": "wrong shape", "content": {"application/json": {"schema": error}}},
        "503": {"description": "database down", "content": {"application/json": {"schema": error}}},
    }
    paths: dict[str, Any] = {}
    for kind in Kind:
        paths[f"/api/v1/{kind.value}"] = {
            "post": {
                "summary": f"Create or update {kind.value} (idempotent on external ids)",
                "operationId": f"import_{kind.value}",
                "security": [{"bearer": []}],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["items"],
                                "properties": {
                                    "items": {
                                        "type": "array",
                                        "maxItems": MAX_ITEMS,
                                        "items": _record_schema(kind),
                                    }
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": {
                        "description": "what was stored; bad items are listed, the rest kept",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/ImportResult"}
                            }
                        },
                    },
                    **responses_common,
                },
            }
        }
    paths["/api/v1/events"] = {
        "post": {
            "summary": "Bounce, complaint and delivery events from an email provider",
            "operationId": "provider_events",
            "security": [{"bearer": []}],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["events"],
                            "properties": {
                                "events": {
                                    "type": "array",
                                    "maxItems": MAX_ITEMS,
                                    "items": {"$ref": "#/components/schemas/ProviderEvent"},
                                }
                            },
                        }
                    }
                },
            },
            "responses": {
                "200": {
                    "description": "what became of each event",
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/EventResults"}
                        }
                    },
                },
                **responses_common,
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "reengage ingest API", "version": "1"},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string"}},
                },
                "ImportResult": {
                    "type": "object",
                    "required": ["received", "inserted", "updated", "unchanged", "rejected"],
                    "properties": {
                        "received": {"type": "integer"},
                        "inserted": {"type": "integer"},
                        "updated": {"type": "integer"},
                        "unchanged": {"type": "integer"},
                        "rejected": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["index", "field", "problem"],
                                "properties": {
                                    "index": {"type": "integer"},
                                    "field": {"type": "string"},
                                    "problem": {"type": "string"},
                                },
                            },
                        },
                        "warnings": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "ProviderEvent": {
                    "type": "object",
                    "required": ["id", "type"],
                    "properties": {
                        "id": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": 150,
                            "description": "the provider's event id",
                        },
                        "type": {"type": "string", "enum": list(responses.PROVIDER_TYPES)},
                        "message": {
                            "type": ["string", "null"],
                            "description": "our Message-ID (<TOKEN@domain>) or token",
                        },
                        "recipient": {"type": ["string", "null"], "maxLength": 320},
                        "detail": {"type": ["string", "null"]},
                    },
                },
                "EventResults": {
                    "type": "object",
                    "required": ["results"],
                    "properties": {
                        "results": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["index", "action"],
                                "properties": {
                                    "index": {"type": "integer"},
                                    "id": {"type": "string"},
                                    "action": {"type": "string"},
                                    "problem": {"type": "string"},
                                },
                            },
                        }
                    },
                },
            },
        },
    }
