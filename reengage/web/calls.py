"""The rep's outcome form, reached from each card of the morning digest: ``/call/TOKEN``.

GET shows who the client is, whom to ask for, why they are on the list and the two
questions, then the form. POST checks it (errors beside their fields, input kept, 422)
and saves it with :func:`reengage.digest.record_outcome`, which ends or re-routes the
customer's enrollments and may put a call on a later digest. The token names the client,
the rep and the digest's day, sealed (nobody reading the link learns them); one digest link
records one outcome, so a second submit (or a reload of the POST) changes nothing and says
so. A post must come from the form's own page (``Origin``) and stay within the form limit.
The page works without JavaScript.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reengage.digest import CallContext, CallReport, OutcomeError, record_outcome
from reengage.digest.calllist import candidate_for, day_start, rep_zone, why_now
from reengage.digest.outcomes import Acted
from reengage.digest.prompts import (
    ALWAYS_ASK,
    REASON_WORDS,
    Person,
    last_call_words,
    person_to_ask,
)
from reengage.logs import get_logger
from reengage.models import (
    CauseScope,
    Customer,
    NextStep,
    Reached,
    Rep,
    StopReason,
    WorthIt,
)
from reengage.store import Store
from reengage.tokens import BadToken, verify
from reengage.web.forms import form_or_page, refused_origin
from reengage.web.pages import page, problem

if TYPE_CHECKING:
    from reengage.web.config import WebConfig

log = get_logger(__name__)

# The choices as a rep would say them; the values are the enums', so nothing else parses.
REACHED_WORDS = {
    Reached.DECISION_MAKER: "The decision maker",
    Reached.SOMEONE_ELSE: "Someone else",
    Reached.NOBODY: "Nobody (no answer, voicemail)",
}
REASON_LABELS = {reason: REASON_WORDS[reason.value].capitalize() for reason in StopReason}
SCOPE_WORDS = {
    CauseScope.SPECIFIC: "Specific to this client",
    CauseScope.SYSTEMIC: "Systemic: other clients are likely hit too",
    CauseScope.UNSURE: "Not sure",
}
WORTH_WORDS = {WorthIt.YES: "Yes", WorthIt.NO: "No", WorthIt.LATER: "Later, not now"}
NEXT_WORDS = {
    NextStep.FOLLOW_UP: "Send the “here is what we changed” follow-up",
    NextStep.CALL_AGAIN: "Call again on",
    NextStep.REP_OFFER: "I make them a win-back offer myself",
    NextStep.DO_NOT_CONTACT: "Do not contact them again (no mail, no calls)",
    NextStep.NOTHING: "Nothing for now",
}
FIELDS = (
    "reached",
    "contact_name",
    "reason",
    "reason_text",
    "scope",
    "win_back",
    "worth",
    "next_step",
    "call_again_on",
)
E = TypeVar("E", bound=StrEnum)


@dataclass(frozen=True)
class CallLink:
    """What a digest link names: one client on one rep's list for one day."""

    customer_id: int
    rep: str
    day: date

    @property
    def dedupe_key(self) -> str:
        """One outcome per link: the same key however often the form is sent."""
        # Hashed: a rep's external id may be long; the key must fit its column.
        raw = f"{self.rep}\x1f{self.customer_id}\x1f{self.day.isoformat()}"
        return "digest:" + hashlib.sha256(raw.encode()).hexdigest()[:40]


@dataclass(frozen=True)
class Client:
    """The client as the form's header shows them, and the rep's today."""

    customer: Customer
    name: str
    person: Person
    why: list[str]
    last_call: str | None
    rep: Rep | None
    today: date  # the rep's local date: "call again" must be after it


def routes(store: Store, config: WebConfig) -> list[Route]:
    """``/call/TOKEN``: GET shows the outcome form, POST records it."""

    def read(token: str) -> CallLink:
        payload = verify(
            config.secret,
            "call",
            token,
            previous=config.previous_secrets,
            now=config.clock(),
            max_age=config.outcome_link_max_age,
        )
        try:
            return CallLink(int(payload["c"]), str(payload["r"]), date.fromisoformat(payload["d"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise BadToken("this link is not valid") from exc

    async def call(request: Request) -> Response:
        try:
            link = read(request.path_params["token"])
        except BadToken as exc:
            log.info("call_link_refused", reason=str(exc))
            said = str(exc)
            return problem(
                "This link does not work",
                f"{said[:1].upper()}{said[1:]}. Nothing was recorded. Use the link on a newer "
                "call list, or record the call on the terminal: reengage calls log CUSTOMER.",
                company=config.company_name,
            )
        posted: FormData | None = None
        if request.method == "POST":
            refused = refused_origin(request, config.base_url, config.company_name, "call")
            if refused is not None:
                return refused
            body = await form_or_page(request, config.form_max_bytes, config.company_name, "call")
            if isinstance(body, Response):
                return body
            posted = body
        now = config.clock()
        already = await run_in_threadpool(store.calls.outcome_by_key, link.dedupe_key)
        if already is not None:
            return recorded(Acted(False, already), None)
        client = await run_in_threadpool(_client, store, link, now)
        if client is None:
            return problem(
                "This client is no longer in reengage",
                "Their record was removed after your call list was made, so there is nothing "
                "to record the call against. Nothing was saved.",
                410,
                company=config.company_name,
            )
        if posted is None:
            return form(client, link, {}, {})
        values = {name: _value(posted.get(name)) for name in FIELDS}
        followup_ok = config.followup_campaign in config.campaigns()
        outcome, errors = parse(values, client.today, followup_ok, config.followup_campaign)
        if outcome is None:
            return form(client, link, values, errors, 422)
        ctx = CallContext(
            customer_id=link.customer_id,
            rep_external_id=link.rep,
            campaigns=dict(config.campaigns()),
            followup_campaign=config.followup_campaign,
            source="web",
            dedupe_key=link.dedupe_key,
            days=config.working_days,
        )
        try:
            acted = await run_in_threadpool(
                record_outcome, store, ctx, outcome, now, today=client.today
            )
        except OutcomeError as exc:  # the checks above should have caught it; say it anyway
            return form(client, link, values, {"form": str(exc)}, 422)
        log.info(
            "call_outcome_recorded" if acted.recorded else "call_outcome_repeated",
            customer_id=link.customer_id,
            rep=link.rep,
            next_step=outcome.next_step.value,
        )
        return recorded(acted, client)

    def form(
        client: Client,
        link: CallLink,
        values: Mapping[str, str],
        errors: Mapping[str, str],
        status: int = 200,
    ) -> Response:
        return page(
            "call.html.j2",
            status,
            company=config.company_name,
            client=client,
            day=link.day,
            questions=ALWAYS_ASK,
            values=values,
            errors=errors,
            reached=REACHED_WORDS,
            reasons=REASON_LABELS,
            scopes=SCOPE_WORDS,
            worth=WORTH_WORDS,
            steps=NEXT_WORDS,
            followup=config.followup_campaign,
            followup_ok=config.followup_campaign in config.campaigns(),
            earliest=(client.today + timedelta(days=1)).isoformat(),
            latest=(client.today + timedelta(days=366)).isoformat(),
        )

    def recorded(acted: Acted, client: Client | None) -> Response:
        return page(
            "call_done.html.j2",
            company=config.company_name,
            title="The call is recorded" if acted.recorded else "Already recorded",
            name=client.name if client else None,
            lines=acted.summary(),
        )

    return [Route("/call/{token}", call, methods=["GET", "POST"])]


def parse(
    values: Mapping[str, str], today: date, followup_ok: bool, followup: str
) -> tuple[CallReport | None, dict[str, str]]:
    """The outcome the form describes, or None and field → what to fix."""
    errors: dict[str, str] = {}
    reached = _choice(Reached, values, "reached", "choose whom you spoke to", errors)
    worth = _choice(WorthIt, values, "worth", "say whether they are worth winning back", errors)
    step = _choice(NextStep, values, "next_step", "choose what happens next", errors)
    reason = _choice(StopReason, values, "reason", None, errors)
    scope = _choice(CauseScope, values, "scope", None, errors)
    again: date | None = None
    if step is NextStep.CALL_AGAIN and values.get("call_again_on"):
        try:
            again = date.fromisoformat(values["call_again_on"])
        except ValueError:
            errors["call_again_on"] = "enter the day as YYYY-MM-DD"
    if step is NextStep.FOLLOW_UP and not followup_ok:
        errors["next_step"] = (
            f"the follow-up campaign {followup} is not running; choose another next step"
        )
    # Stand-ins for missing choices only let the other fields be checked in the same pass;
    # they are chosen so that they add no complaint of their own.
    outcome = CallReport(
        reached=reached or Reached.NOBODY,
        worth=worth or WorthIt.YES,
        next_step=step or NextStep.NOTHING,
        contact_name=values.get("contact_name") or None,
        reason=reason,
        reason_text=values.get("reason_text") or None,
        scope=scope,
        win_back=values.get("win_back") or None,
        call_again_on=again,
    )
    for name, text in outcome.problems(today).items():
        errors.setdefault(name, text)
    return (None, errors) if errors else (outcome, errors)


def _choice(
    kind: type[E],
    values: Mapping[str, str],
    name: str,
    missing: str | None,
    errors: dict[str, str],
) -> E | None:
    raw = values.get(name, "")
    if not raw:
        if missing:
            errors[name] = missing
        return None
    try:
        return kind(raw)
    except ValueError:
        errors[name] = "choose one of the options"
        return None


def _value(raw: Any) -> str:
    return raw.replace("\r\n", "\n").strip() if isinstance(raw, str) else ""


def _client(store: Store, link: CallLink, now: datetime) -> Client | None:
    """The header's facts (None when the customer is gone), read fresh for this request."""
    customer = store.customers.customers_by_ids([link.customer_id]).get(link.customer_id)
    if customer is None:
        return None
    found = store.calls.reps([link.rep])
    rep = found[0] if found else None
    zone = rep_zone(rep) if rep else ZoneInfo("UTC")
    today = now.astimezone(zone).date()
    why = why_now(
        candidate_for(store, link.customer_id, now, day_start(today + timedelta(days=1), zone)),
        zone,
    )
    last = store.calls.last_calls([link.customer_id]).get(link.customer_id)
    person = " ".join(p for p in (customer.first_name, customer.last_name) if p)
    return Client(
        customer=customer,
        name=person or customer.company or customer.email,
        person=person_to_ask(customer),
        why=why,
        last_call=last_call_words(last, zone),
        rep=rep,
        today=today,
    )
