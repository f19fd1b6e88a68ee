"""What every provider's webhook shares: refusing a request, an event that is skipped,
stable event ids, the Message-ID an event names, and recording a batch of events one by
one (a malformed or failing event never stops the others)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.concurrency import run_in_threadpool

from reengage import responses
from reengage.logs import get_logger
from reengage.message import PROVIDER_METADATA_KEY
from reengage.store import Store

log = get_logger(__name__)

# A signed request older (or newer) than this is refused: a captured one cannot be sent
# again later. Providers sign each delivery attempt afresh, so their retries still pass.
MAX_AGE_SECONDS = 15 * 60
MAX_DETAIL = 500
METADATA_KEY = PROVIDER_METADATA_KEY  # reengage puts it there (REENGAGE_SMTP_PROVIDER)


class Refused(Exception):
    """A request refused whole (bad signature, wrong shape), with its status and why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class Skipped:
    """An item of a payload that is not acted on: ``problem`` set when it is malformed,
    otherwise an event kind reengage has no use for (a provider's "processed")."""

    id: str | None
    what: str
    problem: str | None = None


Parsed = responses.ProviderEvent | Skipped


def event_id(provider: str, *parts: object) -> str:
    """A provider's event id, prefixed with the provider so two providers' ids never meet;
    a long one is hashed to fit the 150 characters an event id may have."""
    joined = ":".join(str(p) for p in parts)
    if len(joined) > 120 or "\x00" in joined:
        joined = hashlib.sha256(joined.encode("utf-8", "replace")).hexdigest()
    return f"{provider}:{joined}"


def obj(value: Any) -> dict[str, Any]:
    """A JSON object from a payload, or an empty one for anything else."""
    return value if isinstance(value, dict) else {}


def text(value: Any, limit: int = MAX_DETAIL) -> str | None:
    """A string from a payload, cut to ``limit`` and without NULs (None for anything else)."""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        found = str(value).replace("\x00", "").strip()
        return found[:limit] or None
    return None


def recipient(value: Any) -> str | None:
    """An address from a payload (the recording normalizes it), or None when it is not one."""
    found = text(value, 320)
    return found if found and "@" in found else None


def message_id(value: Any) -> str | None:
    """A Message-ID (``<token@domain>`` or without brackets) or token from a payload."""
    found = text(value, 900)
    return found if found and " " not in found else None


def metadata_message(meta: Any) -> str | None:
    """Our Message-ID from a provider's custom metadata, when the sender put it there."""
    return message_id(meta.get(METADATA_KEY)) if isinstance(meta, Mapping) else None


def header(headers: Any, name: str) -> str | None:
    """A header's value from ``[{"name": ..., "value": ...}]`` or ``{"name": value}``."""
    if isinstance(headers, Mapping):
        for key, value in headers.items():
            if isinstance(key, str) and key.lower() == name.lower():
                return text(value, 900)
    if isinstance(headers, list):
        for item in headers:
            if isinstance(item, Mapping) and str(item.get("name", "")).lower() == name.lower():
                return text(item.get("value"), 900)
    return None


async def record_all(
    store: Store,
    items: list[Parsed],
    clock: Callable[[], datetime],
    policy: responses.Policy,
) -> list[dict[str, Any]]:
    """Record each event once (a replay is a duplicate) and say what became of each.
    A database failure propagates (the caller answers 503 and the provider retries)."""
    results: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        if isinstance(item, Skipped):
            answer: dict[str, Any] = {"index": index}
            if item.id:
                answer["id"] = item.id
            if item.problem:
                log.warning("provider_event_rejected", event_id=item.id, problem=item.problem)
                results.append(answer | {"action": "rejected", "problem": item.problem})
            else:
                results.append(answer | {"action": "ignored"})
            continue
        done = await run_in_threadpool(
            responses.record_provider_event, store, item, clock(), policy
        )
        results.append({"index": index, "id": item.id, "action": done.action})
    return results
