"""The rep's outcome form, reached from each card of the morning digest: ``/call/TOKEN``.

GET shows who the client is, whom to ask for, why they are on the list and what to ask,
then the form (a one-tap "No answer" first, the common answers next, the rest folded).
POST checks it (an error summary on top, taking focus; errors beside their fields; input
kept; 422) and saves it with :func:`reengage.digest.record_outcome`. The confirmation
repeats what was saved, links to the next client on the rep's list and, for
:data:`reengage.digest.corrections.EDIT_WINDOW`, offers "correct this" (``?correct=1``),
whose post goes through :func:`reengage.digest.corrections.correct_outcome`. Everything is
in the rep's language (``Rep.locale``). The token names the client, the rep and the
digest's day, sealed; one digest link records one outcome. A post must come from the
form's own page (``Origin``) and stay within the form limit. The page runs no script.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reengage.digest import CallContext, CallReport, OutcomeError, record_outcome
from reengage.digest.calllist import candidate_for, card_inputs, day_start, rep_zone, why_now
from reengage.digest.corrections import EDIT_WINDOW, can_correct, correct_outcome
from reengage.digest.outcomes import Acted, already_recorded
from reengage.digest.prompts import Person, last_call_words, person_to_ask, questions
from reengage.i18n import Texts, texts
from reengage.logs import get_logger
from reengage.models import CallOutcome, Customer, NextStep, Rep
from reengage.store import Store
from reengage.store.corrections import ACTING_FIELDS, Change
from reengage.tokens import BadToken, sign, verify
from reengage.web.call_form import (
    FIELDS,
    NEXT_WORDS,
    NO_ANSWER,
    REACHED_WORDS,
    REASON_LABELS,
    SCOPE_WORDS,
    WORTH_WORDS,
    form_values,
    parse,
    saved_lines,
    value,
)
from reengage.web.forms import form_or_page, refused_origin
from reengage.web.pages import page, problem

if TYPE_CHECKING:
    from reengage.web.config import WebConfig

log = get_logger(__name__)


@dataclass(frozen=True)
class CallLink:
    """What a digest link names: one client on one rep's list for one day."""

    customer_id: int
    rep: str
    day: date
    issued: Any = None  # the digest's issue stamp, carried on to the "next client" link

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
    questions: list[str]
    rep: Rep | None
    today: date  # the rep's local date: "call again" must be after it

    @property
    def texts(self) -> Texts:
        """The rep's words and formats (English when the rep is unknown)."""
        return texts(self.rep.locale if self.rep else None)

    @property
    def zone(self) -> ZoneInfo:
        """The rep's time zone (UTC when the rep is unknown)."""
        return rep_zone(self.rep) if self.rep else ZoneInfo("UTC")


@dataclass(frozen=True)
class NextClient:
    """The next client on the rep's list with no outcome yet, and their form."""

    name: str
    url: str


def routes(store: Store, config: WebConfig) -> list[Route]:
    """``/call/TOKEN``: GET shows the outcome form (or what was saved), POST records it."""

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
            day = date.fromisoformat(payload["d"])
            return CallLink(int(payload["c"]), str(payload["r"]), day, payload.get("t"))
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
        client = await run_in_threadpool(_client, store, link, now)
        if client is None:
            return problem(
                "This client is no longer in reengage",
                "Their record was removed after your call list was made, so there is nothing "
                "to record the call against. Nothing was saved.",
                410,
                company=config.company_name,
            )
        t = client.texts
        correcting = (posted or request.query_params).get("correct") == "1"
        already = await run_in_threadpool(store.calls.outcome_by_key, link.dedupe_key)
        if already is not None and not (correcting and can_correct(already, now)):
            note = already_recorded(already, t, client.zone)
            return await done(client, link, already, t.gettext("Already recorded"), [note])
        if posted is None:
            start = form_values(already) if already is not None else {}
            return form(client, link, start, {}, correcting=already is not None)
        if posted.get("quick") == "no_answer" and already is None:
            values = dict.fromkeys(FIELDS, "") | {k: v.value for k, v in NO_ANSWER.items()}
        else:
            values = {name: value(posted.get(name)) for name in FIELDS}
        followup_ok = config.followup_campaign in config.campaigns()
        outcome, errors = parse(values, client.today, followup_ok, config.followup_campaign, t)
        if outcome is None:
            return form(client, link, values, errors, 422, correcting=already is not None)
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
            if already is not None and already.id is not None:
                changed = await run_in_threadpool(
                    correct_outcome, store, ctx, already.id, outcome, now, today=client.today
                )
                log.info(
                    "call_outcome_corrected",
                    customer_id=link.customer_id,
                    rep=link.rep,
                    fields=[c.field for c in changed],
                )
                fresh = await run_in_threadpool(store.calls.outcome_by_id, already.id)
                title = "Your correction is saved" if changed else "Nothing was changed"
                told = _changed(changed, t)
                if any(c.field in ACTING_FIELDS for c in changed):
                    told += await run_in_threadpool(
                        _call_again_lines, store, link.customer_id, outcome, config, t
                    )
                return await done(client, link, fresh or already, t.gettext(title), told)
            acted = await run_in_threadpool(
                record_outcome, store, ctx, outcome, now, today=client.today
            )
        except OutcomeError as exc:  # the checks above should have caught it; say it anyway
            told = [t.gettext(v) for v in exc.problems.values()]
            return form(client, link, values, {"form": "; ".join(told)}, 422)
        log.info(
            "call_outcome_recorded" if acted.recorded else "call_outcome_repeated",
            customer_id=link.customer_id,
            rep=link.rep,
            next_step=outcome.next_step.value,
        )
        return await recorded(client, link, acted, t)

    def form(
        client: Client,
        link: CallLink,
        values: Mapping[str, str],
        errors: Mapping[str, str],
        status: int = 200,
        *,
        correcting: bool = False,
    ) -> Response:
        t = client.texts
        # The locale's short form, which the form reads as well as YYYY-MM-DD (call_form.parse).
        example = t.date(client.today + timedelta(days=7), "short")
        return page(
            "call.html.j2",
            status,
            company=config.company_name,
            lang=t.locale,
            client=client,
            day=t.date(link.day, "full"),
            values=values,
            errors=errors,
            correcting=correcting,
            reached=REACHED_WORDS,
            reasons=REASON_LABELS,
            scopes=SCOPE_WORDS,
            worth=WORTH_WORDS,
            steps=NEXT_WORDS,
            followup=config.followup_campaign,
            followup_ok=config.followup_campaign in config.campaigns(),
            date_example=example,
            earliest=(client.today + timedelta(days=1)).isoformat(),
            latest=(client.today + timedelta(days=366)).isoformat(),
            **t.in_template(),
        )

    async def recorded(client: Client, link: CallLink, acted: Acted, t: Texts) -> Response:
        if not acted.recorded or acted.outcome is None:
            lines = acted.summary(t, client.zone) if acted.outcome else []
            return await done(client, link, acted.outcome, t.gettext("Already recorded"), lines)
        return await done(
            client, link, acted.outcome, t.gettext("The call is recorded"), acted.lines(t)
        )

    async def done(
        client: Client, link: CallLink, saved: CallOutcome | None, title: str, lines: list[str]
    ) -> Response:
        t = client.texts
        now = config.clock()
        after = await run_in_threadpool(_next_client, store, config.secret, link)
        editable = saved is not None and can_correct(saved, now)
        until = None
        if saved is not None and editable:
            until = t.moment((saved.created_at + EDIT_WINDOW).astimezone(client.zone))
        return page(
            "call_done.html.j2",
            200,
            company=config.company_name,
            lang=t.locale,
            title=title,
            name=client.name,
            saved=saved_lines(saved, t) if saved is not None else [],
            lines=lines,
            after=after,
            correct_url=f"{request_path(link)}?correct=1" if editable else None,
            until=until,
            **t.in_template(),
        )

    def request_path(link: CallLink) -> str:
        return "/call/" + _token(config.secret, link)

    return [Route("/call/{token}", call, methods=["GET", "POST"])]


def _token(secret: str, link: CallLink) -> str:
    payload: dict[str, Any] = {"c": link.customer_id, "r": link.rep, "d": link.day.isoformat()}
    if link.issued is not None:
        payload["t"] = link.issued
    return sign(secret, "call", payload)


def _changed(changes: list[Change], t: Texts) -> list[str]:
    """The correction as the rep made it: field, old → new; and what it redid."""
    lines = [
        f"{t.gettext(_FIELD_WORDS.get(c.field, c.field))}: {c.old_value or '–'} → "
        f"{c.new_value or '–'}"
        for c in changes
    ]
    if any(c.field in ACTING_FIELDS for c in changes):
        lines.append(
            t.gettext("What the earlier answer did is undone; the new answer is in effect.")
        )
    return lines


def _call_again_lines(
    store: Store, customer_id: int, outcome: CallReport, config: WebConfig, t: Texts
) -> list[str]:
    """After a correction to "call again on D": the working day it is on the list, as the
    first save says it (only when the call was set: never for a do-not-contact customer)."""
    asked = outcome.call_again_on
    if outcome.next_step is not NextStep.CALL_AGAIN or asked is None:
        return []
    if not any(c.campaign_id is None for c in store.calls.open_calls([customer_id])):
        return []
    again = config.working_days.next_working_day(asked)
    return Acted(True, call_again_on=again, asked_for=asked if again != asked else None).lines(t)


_FIELD_WORDS = {
    "reached": "Whom did you reach?",
    "contact_name": "Their name",
    "reason": "Main reason",
    "reason_text": "In their words",
    "scope": "Specific or systemic?",
    "win_back": "What would win them back?",
    "worth": "Worth winning back?",
    "next_step": "What happens next?",
    "call_again_on": "Day to call again",
}


def _next_client(store: Store, secret: str, link: CallLink) -> NextClient | None:
    """The next client after this one on the rep's digest for the day still to record."""
    listed = store.calls.digest_customers(link.rep, link.day)
    if link.customer_id not in listed:
        return None
    later = listed[listed.index(link.customer_id) + 1 :]
    for customer_id in later:
        following = CallLink(customer_id, link.rep, link.day, link.issued)
        if store.calls.outcome_by_key(following.dedupe_key) is not None:
            continue
        customer = store.customers.customers_by_ids([customer_id]).get(customer_id)
        if customer is None:
            continue
        return NextClient(_name(customer), "/call/" + _token(secret, following))
    return None


def _name(customer: Customer) -> str:
    person = " ".join(p for p in (customer.first_name, customer.last_name) if p)
    return person or customer.company or customer.email


def _client(store: Store, link: CallLink, now: datetime) -> Client | None:
    """The header's facts (None when the customer is gone), read fresh for this request."""
    customers, touches_of = card_inputs(store, [link.customer_id], now)
    customer = customers.get(link.customer_id)
    if customer is None:
        return None
    found = store.calls.reps([link.rep])
    rep = found[0] if found else None
    zone = rep_zone(rep) if rep else ZoneInfo("UTC")
    today = now.astimezone(zone).date()
    candidate = candidate_for(
        store, link.customer_id, now, day_start(today + timedelta(days=1), zone)
    )
    last = store.calls.last_calls([link.customer_id]).get(link.customer_id)
    return Client(
        customer=customer,
        name=_name(customer),
        person=person_to_ask(customer),
        why=why_now(candidate, zone, texts(rep.locale if rep else None), today),
        last_call=last_call_words(last, zone),
        questions=questions(
            candidate.assessment,
            customer,
            touches_of.get(link.customer_id, []),
            last,
            candidate.reply,
        ),
        rep=rep,
        today=today,
    )
