"""Tools for the people who write campaigns: validate, preview and simulate.

Nothing here sends or writes to the database: ``validate`` checks files, ``preview`` renders
one real mail to disk, ``simulate`` replays the campaigns against today's customers day by
day with the same policy the daemon uses, ``now`` passed in.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from reengage.campaigns import Campaign, LoadResult, Problem, load_campaigns
from reengage.config import Settings
from reengage.detect import Assessment
from reengage.lapse_model import Inputs, LapseModel
from reengage.message import DkimKey, Envelope, compose, dkim_sign
from reengage.models import Customer
from reengage.render import Rendered, Renderer, Sender
from reengage.scoring import assess_all, current_model
from reengage.sequence import FrequencyCap, next_send_time, window_zone
from reengage.store import Store
from reengage.tokens import sign, stamp

PREVIEW_SECRET = "preview-only-links-do-not-work-without-REENGAGE_SECRET_KEY"


@dataclass(frozen=True)
class Workspace:
    """Where campaigns and templates live and what links in mail point to."""

    campaigns_dir: Path
    renderer: Renderer
    base_url: str
    shop_url: str
    secret: str
    company_name: str
    company_address: str
    zone: ZoneInfo
    max_emails_per_week: int
    dkim: DkimKey | None = None
    inbound_domain: str | None = None  # bounces+TOKEN@ and reply+TOKEN@ go there when set

    @classmethod
    def from_settings(cls, settings: Settings) -> Workspace:
        """The workspace the settings describe (links are unsigned placeholders without a key)."""
        secret = settings.secret_key.get_secret_value() if settings.secret_key else PREVIEW_SECRET
        sender = Sender(settings.company_name, settings.company_address)
        return cls(
            settings.campaigns_dir,
            Renderer(settings.templates_dir, sender),
            settings.base_url.rstrip("/"),
            settings.shop_url.rstrip("/"),
            secret,
            settings.company_name,
            settings.company_address,
            settings.zone,
            settings.max_emails_per_week,
            DkimKey(*key) if (key := settings.dkim_key()) else None,
            settings.inbound_domain,
        )

    def links(self, message_key: str, issued: datetime | None = None) -> dict[str, Any]:
        """The link helpers a template sees for one message, stamped with when it was sent.

        Tokens carry only the message's opaque key (and, for a click, the destination), so a
        click link can only ever lead where the mail pointed.
        """
        t = stamp(issued) if issued else 0

        def link(path: str, purpose: str, **payload: Any) -> str:
            token = sign(self.secret, purpose, {"m": message_key, "t": t, **payload})
            return f"{self.base_url}/{path}/{token}"

        def track(url: str) -> str:
            return link("c", "click", u=url)

        unsubscribe = link("u", "unsubscribe")
        return {
            "shop": self.shop_url,
            "unsubscribe": unsubscribe,
            "pause": f"{unsubscribe}?pause=90",
            "pixel": link("o", "open") + ".gif",
            "track": track,
        }

    def bounce_domain(self, campaign: Campaign) -> str:
        """Where bounces and replies for this campaign's mail are received."""
        return self.inbound_domain or sender_domain(campaign)


# -- template context ---------------------------------------------------------------------


def customer_context(customer: Customer, rep_name: str | None = None) -> dict[str, Any]:
    """What templates may know about a customer (plain data: the sandbox sees no objects)."""
    name = " ".join(p for p in (customer.first_name, customer.last_name) if p)
    return {
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "name": name,
        "company": customer.company,
        "email": customer.email,
        "locale": customer.locale,
        "segment": customer.segment,
        "interests": list(customer.interests),
        "last_product": customer.last_product,
        "important_dates": list(customer.important_dates),
        "decision_maker": customer.decision_maker,
        "rep_name": rep_name,
    }


def rhythm_context(assessment: Assessment | None) -> dict[str, Any]:
    """The customer's rhythm and signals, for templates that want to mention them."""
    if assessment is None:
        return {
            "days_silent": None,
            "expected_gap_days": None,
            "lapse_ratio": None,
            "lapse_score": None,
            "orders": 0,
            "why": "",
        }
    return {
        "days_silent": round(assessment.days_silent),
        "expected_gap_days": assessment.expected_gap_days,
        "lapse_ratio": assessment.lapse_ratio,
        "lapse_score": assessment.lapse_score,
        "orders": assessment.profile.order_count,
        "why": assessment.why,
    }


def mail_context(
    ws: Workspace,
    customer: dict[str, Any],
    rhythm: dict[str, Any],
    campaign: Campaign,
    step_key: str,
    message_key: str,
    issued: datetime | None = None,
) -> dict[str, Any]:
    """Everything a template can use."""
    links = ws.links(message_key, issued)
    return {
        "customer": customer,
        "rhythm": rhythm,
        "campaign": {"id": campaign.id, "name": campaign.name},
        "step": {"key": step_key},
        "company": {"name": ws.company_name, "address": ws.company_address},
        "links": {k: v for k, v in links.items() if k != "track"},
        "track": links["track"],
    }


SAMPLE_CUSTOMER = {
    "first_name": "Ana",
    "last_name": "Li",
    "name": "Ana Li",
    "company": "Ana's Bakery",
    "email": "ana@example.com",
    "locale": "en",
    "segment": "retail",
    "interests": ["espresso"],
    "last_product": "espresso beans",
    "important_dates": [{"label": "birthday", "date": "1980-04-12"}],
    "decision_maker": "Ana Li",
    "rep_name": "Kim",
}
SAMPLE_RHYTHM = {
    "days_silent": 41,
    "expected_gap_days": 12.0,
    "lapse_ratio": 3.4,
    "lapse_score": 0.8,
    "orders": 9,
    "why": "Usually orders every 12 days.",
}


# -- validate ---------------------------------------------------------------------------------


def validate(ws: Workspace, paths: list[Path], root: Path | None = None) -> LoadResult:
    """Load campaigns and check every template they use; problems are sorted by place."""
    result = load_campaigns(paths, root)
    for campaign in list(result.campaigns.values()):
        problems: list[Problem] = []
        for index, step in enumerate(campaign.steps):
            if step.template is None or step.subject is None:
                continue
            for attribute in ("template", "text_template"):
                name = getattr(step, attribute)
                if name and not ws.renderer.exists(name):
                    file, line, where = result.locate(campaign.id, ("steps", index, attribute))
                    problems.append(
                        Problem(
                            file,
                            line,
                            where,
                            f"{ws.renderer.templates_dir / name} not found",
                        )
                    )
            if problems:
                continue
            context = mail_context(
                ws, SAMPLE_CUSTOMER, SAMPLE_RHYTHM, campaign, step.key, "validate"
            )
            for issue in ws.renderer.check(
                subject=step.subject,
                template=step.template,
                text_template=step.text_template,
                context=context,
            ):
                if issue.file == "subject":
                    file, line, where = result.locate(campaign.id, ("steps", index, "subject"))
                    problems.append(Problem(file, line, where, issue.message))
                else:
                    problems.append(Problem(issue.file, issue.line, "", issue.message))
        if problems:
            result.problems.extend(problems)
            del result.campaigns[campaign.id]  # a campaign that cannot render is not loaded
    result.problems.sort(key=lambda p: (p.file, p.line))
    return result


# -- preview --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preview:
    """A rendered mail and where it was written."""

    message: EmailMessage
    rendered: Rendered
    eml: Path
    html: Path


def render_for(
    ws: Workspace,
    campaign: Campaign,
    step_key: str,
    customer: Customer,
    assessment: Assessment | None,
    *,
    message_key: str,
    now: datetime,
    rep_name: str | None,
) -> tuple[EmailMessage, Rendered]:
    """The exact message a customer would get for one step."""
    step = campaign.step(step_key)
    if step is None or step.template is None or step.subject is None:
        known = ", ".join(s.key for s in campaign.steps if not s.is_call)
        raise KeyError(f"{campaign.id} has no mail step {step_key!r}; mail steps: {known}")
    context = mail_context(
        ws,
        customer_context(customer, rep_name),
        rhythm_context(assessment),
        campaign,
        step.key,
        message_key,
        now,
    )
    rendered = ws.renderer.render(
        subject=step.subject,
        template=step.template,
        text_template=step.text_template,
        context=context,
        locale=customer.locale,
        unsubscribe_url=context["links"]["unsubscribe"],
        pause_url=context["links"]["pause"],
    )
    domain = sender_domain(campaign)
    name = " ".join(p for p in (customer.first_name, customer.last_name) if p)
    envelope = Envelope(
        sender=campaign.sender,
        to_name=name,
        to_address=customer.email,
        message_id=f"{message_key}@{domain}",
        date=now,
        reply_to=reply_address(ws, campaign, message_key),
        list_id=f"{campaign.id}.{domain}",
        unsubscribe_url=context["links"]["unsubscribe"],
        unsubscribe_mailto=f"unsubscribe+{message_key}@{ws.bounce_domain(campaign)}",
        return_path=bounce_address(message_key, ws.bounce_domain(campaign)),
    )
    message = compose(rendered.subject, rendered.text, rendered.html, envelope)
    return (dkim_sign(message, ws.dkim) if ws.dkim else message), rendered


def reply_address(ws: Workspace, campaign: Campaign, message_key: str) -> str | None:
    """Reply-To: per message (``reply+TOKEN@``) when inbound mail is received, so a reply
    names the mail it answers; otherwise the campaign's own reply address."""
    if not ws.inbound_domain:
        return campaign.reply_to
    name = campaign.sender.rsplit("<", 1)[0].strip().strip('"') if "<" in campaign.sender else ""
    address = f"reply+{message_key}@{ws.inbound_domain}"
    return f"{name} <{address}>" if name else address


def bounce_address(message_key: str, domain: str) -> str:
    """The per-message envelope sender (VERP): a bounce names the message it is about."""
    return f"bounces+{message_key}@{domain}"


def sender_domain(campaign: Campaign) -> str:
    """The domain of the campaign's From address."""
    return campaign.sender.rsplit("@", 1)[-1].rstrip(">").strip()


def preview(
    ws: Workspace,
    store: Store,
    campaign: Campaign,
    step_key: str,
    customer_id: str,
    *,
    now: datetime,
    out_dir: Path,
) -> Preview:
    """Render one step for one real customer and write ``.eml`` and ``.html`` files."""
    found = store.get_customer(customer_id)
    if found is None:
        raise LookupError(f"no customer {customer_id!r}")
    customer, _ = found
    _, assessments = assess_all(store, now)
    assessment = next((a for a in assessments if a.customer_id == customer_id), None)
    message, rendered = render_for(
        ws,
        campaign,
        step_key,
        customer,
        assessment,
        message_key="preview",
        now=now,
        rep_name=store.rep_name(customer.rep_external_id),
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{campaign.id}.{step_key}.{_safe(customer_id)}"
    eml, html = out_dir / f"{stem}.eml", out_dir / f"{stem}.html"
    eml.write_bytes(message.as_bytes())
    html.write_text(rendered.html, encoding="utf-8")
    return Preview(message, rendered, eml, html)


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text)[:60]


# -- simulate --------------------------------------------------------------------------------


@dataclass
class DayPlan:
    """What would happen on one day."""

    day: date
    entered: Counter[str] = field(default_factory=Counter)
    held_out: Counter[str] = field(default_factory=Counter)
    mails: Counter[str] = field(default_factory=Counter)  # "campaign/step"
    calls: Counter[str] = field(default_factory=Counter)
    exits: Counter[str] = field(default_factory=Counter)  # "campaign: reason"

    @property
    def quiet(self) -> bool:
        return not (self.entered or self.held_out or self.mails or self.calls or self.exits)


@dataclass
class Simulation:
    """A day-by-day plan, and who is skipped and why."""

    start: datetime
    days: list[DayPlan]
    skipped: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)


def simulate(
    ws: Workspace,
    store: Store,
    campaigns: list[Campaign],
    *,
    now: datetime,
    days: int,
) -> Simulation:
    """Replay ``campaigns`` from ``now`` for ``days`` days. Nothing is sent or written.

    Customers are judged as they stand now, growing more silent each day (nobody buys in
    a simulation). Each enters on the first day they meet an audience, unless held out,
    without consent, marked do-not-contact, or already in a campaign that does not run in
    parallel (higher priority campaigns choose first). Steps are scheduled into the send
    window in the recipient's time zone and under the frequency cap.
    """
    model = current_model(store)
    _, assessments = assess_all(store, now, model=model)
    customers = store.contactable(a.profile.customer_id for a in assessments)
    plan = Simulation(now, [DayPlan(now.date() + timedelta(days=d)) for d in range(days)])
    cap = FrequencyCap(ws.max_emails_per_week, timedelta(days=7))
    busy_until: dict[int, datetime] = {}
    end = now + timedelta(days=days)
    ordered = sorted(
        (c for c in campaigns if c.enabled and c.audience is not None), key=lambda c: -c.priority
    )
    entries: list[tuple[float, int, Campaign, Assessment]] = []
    for a in assessments:
        info = customers.get(a.profile.customer_id)
        if info is None:
            plan.skipped["never contacted: do not contact, no consent or unknown"] += 1
            continue
        for rank, campaign in enumerate(ordered):
            day = entry_day(campaign, a, info, days, model)
            if day is not None:
                entries.append((day, rank, campaign, a))
    entries.sort(key=lambda e: (e[0], e[1]))
    for day, _, campaign, a in entries:
        cid = a.profile.customer_id
        enter_at = now + timedelta(days=day)
        if not campaign.allow_parallel and busy_until.get(cid, enter_at) > enter_at:
            plan.skipped[f"{campaign.id}: already in another campaign"] += 1
            continue
        today = plan.days[int(day)]
        if campaign.in_holdout(a.customer_id):
            today.held_out[campaign.id] += 1
            continue
        today.entered[campaign.id] += 1
        plan.examples.setdefault(campaign.id, [])
        if len(plan.examples[campaign.id]) < 3:
            plan.examples[campaign.id].append(f"{a.customer_id} {a.profile.name}: {a.why}")
        zone = window_zone(campaign.send_window, customers[cid].get("timezone"), ws.zone)
        at = enter_at
        for step in campaign.steps:
            at = at + step.after
            if step.is_call:
                when = at
                if when < end:
                    plan.days[(when.date() - now.date()).days].calls[campaign.id] += 1
                continue
            when = next_send_time(campaign.send_window, zone, at)
            when = next_send_time(campaign.send_window, zone, cap.next_allowed(cid, when))
            if when >= end:
                break
            cap.record(cid, when)
            plan.days[(when.date() - now.date()).days].mails[f"{campaign.id}/{step.key}"] += 1
            at = when
        finish = max(at, enter_at)
        busy_until[cid] = finish
        if finish < end:
            plan.days[(finish.date() - now.date()).days].exits[f"{campaign.id}: completed"] += 1
    return plan


def entry_day(
    campaign: Campaign, a: Assessment, info: dict[str, Any], days: int, model: LapseModel
) -> float | None:
    """The first day (from now) on which the customer meets the campaign's audience."""
    audience = campaign.audience
    assert audience is not None
    first = 0.0
    if audience.lapsed is not None:
        rule = audience.lapsed
        silent, gap = a.days_silent, a.expected_gap_days
        if a.profile.order_count == 0:
            return None
        first = max(0.0, rule.factor * gap - silent, rule.min_days_silent - silent)
        if rule.max_days_silent is not None and silent + first > rule.max_days_silent:
            return None
        # The score only grows with silence; step forward until it clears the bar.
        day = math.ceil(first)
        while day < days and _score_on(a, day, model) < rule.min_score:
            day += 1
        first = float(day)
    if audience.declining is not None:
        rule_d = audience.declining
        p = a.profile
        checks = [
            (rule_d.count_below, p.count_ratio),
            (rule_d.aov_below, p.aov_ratio),
            (rule_d.margin_below, p.margin_ratio),
        ]
        if not any(
            limit is not None and value is not None and value <= limit for limit, value in checks
        ):
            return None
    if first >= days:
        return None
    facts = facts_of(a, info, extra_silence=first)
    if not all(f.matches(facts) for f in audience.where):
        return None
    return first


def _score_on(a: Assessment, day: int, model: LapseModel) -> float:
    # Nobody buys in a simulation: the same customer, ``day`` days more silent and older.
    if day == 0:
        return a.lapse_score
    p = a.profile
    return model.score(
        Inputs(
            a.days_silent + day,
            a.expected_gap_days,
            p.order_count,
            a.age_days + day,
            p.total_value / max(p.order_count, 1),
        )
    )


def facts_of(a: Assessment, info: dict[str, Any], extra_silence: float = 0.0) -> dict[str, Any]:
    """The values audience filters compare against (see campaigns.FILTER_FIELDS)."""
    p = a.profile
    return {
        "segment": p.segment,
        "locale": info.get("locale"),
        "timezone": info.get("timezone"),
        "company": info.get("company"),
        "rep": info.get("rep"),
        "tags": info.get("tags", []),
        "interests": info.get("interests", []),
        "total_value": p.total_value,
        "orders": float(p.order_count),
        "days_silent": a.days_silent + extra_silence,
        "lapse_ratio": (a.days_silent + extra_silence) / a.expected_gap_days,
        "lapse_score": a.lapse_score,
        "value_per_year": a.value_per_year,
        "value_at_risk": a.value_at_risk,
        "priority": a.priority,
    }


# -- reload ----------------------------------------------------------------------------------


@dataclass
class ReloadReport:
    """What changed since the last load, for the log and for running enrollments."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    # campaign id -> step keys that existed before and are gone now (renamed or removed):
    # enrollments waiting on them must be resolved explicitly, never silently dropped.
    vanished_steps: dict[str, list[str]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def quiet(self) -> bool:
        """Nothing changed and nothing is wrong."""
        return not (self.added or self.changed or self.removed or self.problems)


class CampaignLibrary:
    """The campaigns a running service uses, reloaded when their files change.

    :meth:`reload` is cheap when nothing changed (file sizes and modification times), so a
    daemon can call it every tick. A file that stops validating keeps its last good version
    running and is reported; a deleted file's campaign is removed.
    """

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.campaigns: dict[str, Campaign] = {}
        self._sources: dict[str, Path] = {}
        self._fingerprint: tuple[tuple[str, int, int], ...] = ()

    def _scan(self) -> tuple[tuple[str, int, int], ...]:
        roots = [self.ws.campaigns_dir, self.ws.renderer.templates_dir]
        found = []
        for root in roots:
            if root.is_dir():
                for path in sorted(root.rglob("*")):
                    if path.is_file():
                        stat = path.stat()
                        found.append((str(path), stat.st_size, stat.st_mtime_ns))
        return tuple(found)

    def reload(self) -> ReloadReport:
        """Pick up added, changed and removed campaign files (and template edits)."""
        fingerprint = self._scan()
        report = ReloadReport()
        if fingerprint == self._fingerprint:
            return report
        self._fingerprint = fingerprint
        loaded = validate(self.ws, [self.ws.campaigns_dir])
        report.problems = loaded.problems
        fresh = dict(loaded.campaigns)
        sources = dict(loaded.sources)
        for campaign_id, old in self.campaigns.items():
            source = self._sources[campaign_id]
            if campaign_id not in fresh and source.exists() and source not in sources.values():
                # The file is there but no longer valid: keep its last good version running.
                fresh[campaign_id], sources[campaign_id] = old, source
        for campaign_id, campaign in fresh.items():
            before = self.campaigns.get(campaign_id)
            if before is None:
                report.added.append(campaign_id)
            elif before != campaign:
                report.changed.append(campaign_id)
                gone = [s.key for s in before.steps if campaign.step(s.key) is None]
                if gone:
                    report.vanished_steps[campaign_id] = gone
        for campaign_id, old in self.campaigns.items():
            if campaign_id not in fresh:
                report.removed.append(campaign_id)
                report.vanished_steps[campaign_id] = [s.key for s in old.steps]
        self.campaigns, self._sources = fresh, sources
        return report
