"""Tools for the people who write campaigns: validate, preview, and the daemon's campaign
library (hot reload).

Nothing here sends: ``validate`` checks files, ``preview`` renders one real mail to disk
through the same path the daemon sends with (:mod:`reengage.compose`). ``simulate`` lives in
:mod:`reengage.simulate`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from reengage.campaigns import Campaign, LoadResult, Problem, Step, load_campaigns
from reengage.campaigns.model import DEFAULT
from reengage.campaigns.running import removed_campaign_problems, removed_step_problems
from reengage.compose import Workspace, render_for
from reengage.errors import DatabaseUnreachable, NotFound, ReengageError, TemplateFailure
from reengage.locales import fallbacks, language_of, normalise_locale
from reengage.render import Rendered
from reengage.samples import SAMPLE_MOMENT, samples
from reengage.scoring import assess_customers
from reengage.store import Store
from reengage.store.engine import absent_sqlite_file

# -- validate ---------------------------------------------------------------------------------


def validate(
    ws: Workspace,
    paths: list[Path],
    root: Path | None = None,
    keep: Mapping[str, Path] | None = None,
) -> LoadResult:
    """Load campaigns and render every mail step for every kind of customer real data holds
    (:mod:`reengage.samples`), through the daemon's own :func:`render_for`. Any failure is a
    problem at ``template:line`` (or the campaign's line); problems are sorted by place.
    ``keep``: for an id several files give, the file that keeps it (see
    :func:`load_campaigns`)."""
    result = load_campaigns(paths, root, keep)
    for campaign in list(result.campaigns.values()):
        problems: list[Problem] = _uplift_warnings(result, campaign)
        for index, step in enumerate(campaign.steps):
            if step.is_call:
                continue
            missing_files = [
                Problem(*result.locate(campaign.id, ("steps", index, attribute)), message)
                for attribute in ("template", "text_template")
                if (name := getattr(step, attribute)) and not ws.renderer.exists(name)
                for message in [f"{ws.renderer.templates_dir / name} not found"]
            ]
            problems.extend(missing_files)
            if not missing_files:
                problems.extend(_render_problems(ws, result, campaign, index))
        result.problems.extend(problems)
        if any(p.is_error for p in problems):
            del result.campaigns[campaign.id]  # a campaign that cannot render is not loaded
            result.unrenderable.add(campaign.id)
        else:
            result.problems.extend(language_warnings(ws, result, campaign))
    # A template several steps share is reported once, not once for each step.
    unique = {(p.file, p.line, p.field, p.message, p.severity): p for p in result.problems}
    result.problems = sorted(unique.values(), key=lambda p: (p.file, p.line))
    return result


def running_step_warnings(
    result: LoadResult, url: str, open_store: Callable[[], Store], folder: Path | None = None
) -> tuple[list[Problem], str | None]:
    """Warnings for step keys running enrollments wait at that the files no longer have
    (:mod:`reengage.campaigns.running`), and with ``folder`` (``result`` is all of it) for
    campaigns no file has; or none and why the database could not tell. A database the
    settings name that cannot be reached raises :class:`DatabaseUnreachable`: a mistake to
    fix, not a database left out."""
    absent = absent_sqlite_file(url)
    if absent is not None:  # opening it would create it, empty
        return [], f"no database file at {absent}"
    try:
        store = open_store()
        try:
            waiting = store.sending.waiting_at_steps()
        finally:
            store.close()
    except DatabaseUnreachable:
        raise
    except ReengageError as exc:
        return [], str(exc)
    gone = removed_campaign_problems(result, waiting, str(folder)) if folder else []
    return [*gone, *removed_step_problems(result, waiting)], None


def _uplift_warnings(result: LoadResult, campaign: Campaign) -> list[Problem]:
    """``min_uplift`` on a campaign that holds nobody out: nothing new to measure it by."""
    audience = campaign.audience
    if audience is None or audience.min_uplift is None or campaign.holdout_percent > 0:
        return []
    return [
        Problem(
            *result.locate(campaign.id, ("audience", "min_uplift")),
            "min_uplift compares treated customers with held-out ones, and holdout_percent "
            "is 0: no new customer is held out, so the uplift rests on earlier ones only "
            "(or says not enough data). Give holdout_percent a value, such as 10",
            severity="warning",
        )
    ]


def _render_problems(
    ws: Workspace, result: LoadResult, campaign: Campaign, index: int
) -> list[Problem]:
    # Each failure once, saying for which kind of customer when it is not for everyone.
    step = campaign.steps[index]
    locales = sorted(set(_variant_locales(ws, step.template or "")) | _subject_locales(step))
    people = samples(SAMPLE_MOMENT, locales)
    failures: dict[tuple[str, int, str, str], list[str]] = {}
    moved: dict[str, str] = {}  # why the footer is not where the layout put it -> template
    for sample in people:
        try:
            _, rendered = render_for(
                ws,
                campaign,
                step.key,
                sample.customer,
                sample.assessment,
                message_key="validate",
                now=SAMPLE_MOMENT,
                rep_name=sample.rep_name,
            )
        except TemplateFailure as exc:
            subject = _subject_key(step, sample.customer.locale) if exc.file == "subject" else ""
            key = (exc.file, exc.line, exc.problem, subject)
            failures.setdefault(key, []).append(sample.label)
        else:
            if rendered.footer_moved:
                moved.setdefault(rendered.footer_moved, rendered.template)
    problems = [
        Problem(
            *result.locate(campaign.id, ("steps", index, "template")),
            f"the footer (unsubscribe and pause links, postal address) is moved to the end "
            f"of the mail: {template} (or the layout it extends) prints {{{{ footer }}}} {why}. "
            "Put {{ footer }} where a reader sees it, in the body's visible flow",
            severity="warning",
        )
        for why, template in moved.items()
    ]
    for (file, line, problem, subject_key), who in failures.items():
        where = ""
        if file == "subject":
            path: tuple[Any, ...] = ("steps", index, "subject")
            if isinstance(step.subject_source, dict):
                path = (*path, subject_key)
            file, line, where = result.locate(campaign.id, path)
        if len(who) < len(people):
            problem = f"{problem} (for {who[0]})"
        problems.append(Problem(file, line, where, problem))
    return problems


def _variant_locales(ws: Workspace, template: str) -> list[str]:
    """The locales that have their own variant of ``template`` (``x.zh-CN.html.j2``)."""
    stem, _, rest = Path(template).name.partition(".")
    found = []
    for variant in ws.renderer.variants(template):
        middle = Path(variant).name[len(stem) + 1 : -len(rest) - 1]
        if middle:
            found.append(normalise_locale(middle))
    return found


def _subject_locales(step: Step) -> set[str]:
    return {key for key in step.subjects() if key != DEFAULT}


def _subject_key(step: Step, locale: str) -> str:
    """Which of the step's subjects a customer in ``locale`` gets (``default`` otherwise)."""
    given = step.subjects()
    return next((c for c in fallbacks(locale) if c in given), DEFAULT)


def language_warnings(ws: Workspace, result: LoadResult, campaign: Campaign) -> list[Problem]:
    """Steps that customers in some language would get, wholly or in part (the subject),
    in another while the rest of the sequence speaks theirs: a zh-CN customer switching to
    English mid-way."""
    mail = [(i, s) for i, s in enumerate(campaign.steps) if not s.is_call and s.template]
    found = {i: (_variant_locales(ws, s.template or ""), _subject_locales(s)) for i, s in mail}
    bodies = {i: {language_of(x) for x in got[0]} for i, got in found.items()}
    subjects = {i: {language_of(x) for x in got[1]} for i, got in found.items()}
    spoken: dict[str, str] = {}  # language -> the locale the sequence writes it as
    for variants, keys in found.values():
        for locale in sorted([*variants, *keys]):
            spoken.setdefault(language_of(locale), locale)
    warnings = []
    for language, locale in sorted(spoken.items()):
        for index, step in mail:
            lacks = [
                what
                for what, has in (
                    (_variant_name(step.template or "", locale), bodies[index]),
                    (f"a {locale} subject", subjects[index]),
                )
                if language not in has
            ]
            if not lacks:
                continue
            missing = "template" if language not in bodies[index] else "subject"
            file, line, where = result.locate(campaign.id, ("steps", index, missing))
            warnings.append(
                Problem(
                    file,
                    line,
                    where,
                    f"{locale} customers get this step partly or wholly in the default "
                    f"language while the sequence speaks {locale} elsewhere: add "
                    + " and ".join(lacks),
                    severity="warning",
                )
            )
    return warnings


def _variant_name(template: str, locale: str) -> str:
    folder, _, base = template.rpartition("/")
    stem, _, rest = base.partition(".")
    return f"{folder}/{stem}.{locale}.{rest}" if folder else f"{stem}.{locale}.{rest}"


# -- preview --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preview:
    """A rendered mail and where it was written."""

    message: EmailMessage
    rendered: Rendered
    eml: Path
    html: Path


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
    """Render one step for one real customer and write ``.eml`` and ``.html`` files.

    Raises :class:`~reengage.errors.NotFound` for an unknown customer or mail step.
    """
    found = store.customers.get_customer(customer_id)
    if found is None:
        raise NotFound(f"no customer {customer_id!r}")
    customer, _ = found
    assert customer.id is not None  # a stored customer has an id
    assessment = assess_customers(store, now, customer_ids=[customer.id]).get(customer.id)
    message, rendered = render_for(
        ws,
        campaign,
        step_key,
        customer,
        assessment,
        message_key="preview",
        now=now,
        rep_name=store.customers.rep_name(customer.rep_external_id),
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{campaign.id}.{step_key}.{_safe(customer_id)}"
    eml, html = out_dir / f"{stem}.eml", out_dir / f"{stem}.html"
    eml.write_bytes(message.as_bytes())
    html.write_text(rendered.html, encoding="utf-8")
    return Preview(message, rendered, eml, html)


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text)[:60]


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
    # The problems the last reload did not have (a daemon logs each once, not every reload).
    new_problems: list[Problem] = field(default_factory=list)
    # Files that do not load now whose campaign runs on its last good version: file -> id.
    kept: dict[str, str] = field(default_factory=dict)

    @property
    def quiet(self) -> bool:
        """Nothing changed and nothing is wrong."""
        return not (self.added or self.changed or self.removed or self.problems)


class CampaignLibrary:
    """The campaigns a running service uses, reloaded when their files change.

    :meth:`reload` is cheap when nothing changed (file sizes and modification times), so a
    daemon can call it every tick. A file that stops validating keeps its last good version
    running and is reported; a deleted file's campaign is removed. A file that gives the id
    of a campaign already running from another file is reported and does not load: the
    running campaign keeps its id and its file, whichever file is older.
    """

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.campaigns: dict[str, Campaign] = {}
        # True while some campaign file does not load: a campaign missing from
        # ``campaigns`` may then be that broken file, not a removed one.
        self.incomplete = False
        # Campaigns running on their last good version while a template of theirs is broken:
        # their mail cannot be made now, so their sequences wait rather than fail.
        self.held: frozenset[str] = frozenset()
        self._sources: dict[str, Path] = {}
        self._fingerprint: tuple[tuple[str, int, int], ...] = ()
        self._known_problems: set[str] = set()

    def _scan(self) -> tuple[tuple[str, int, int], ...]:
        roots = [self.ws.campaigns_dir, self.ws.renderer.templates_dir]
        found = []
        for root in roots:
            if root.is_dir():
                for path in sorted(root.rglob("*")):
                    try:
                        if path.is_file():
                            stat = path.stat()
                            found.append((str(path), stat.st_size, stat.st_mtime_ns))
                    except OSError:  # gone between listing and looking: the next scan sees it
                        continue
        return tuple(found)

    def reload(self) -> ReloadReport:
        """Pick up added, changed and removed campaign files (and template edits)."""
        report = ReloadReport()
        try:
            fingerprint = self._scan()
            if fingerprint == self._fingerprint:
                return report
            loaded = validate(self.ws, [self.ws.campaigns_dir], keep=self._sources)
        except Exception as exc:  # whatever it is, the campaigns running now keep running
            self.incomplete = True
            report.problems = [
                Problem(str(self.ws.campaigns_dir), 1, "", f"campaigns could not be read: {exc}")
            ]
            report.new_problems = report.problems
            return report
        self._fingerprint = fingerprint
        report.problems = loaded.problems
        report.new_problems = [p for p in loaded.problems if str(p) not in self._known_problems]
        self._known_problems = {str(p) for p in loaded.problems}
        self.incomplete = any(p.is_error for p in loaded.problems)
        fresh = dict(loaded.campaigns)
        sources = {cid: loaded.sources[cid] for cid in fresh}
        held = set()
        for campaign_id, old in self.campaigns.items():
            source = self._sources[campaign_id]
            if campaign_id not in fresh and source.exists() and source not in sources.values():
                # The file is there but does not load now (its YAML or one of its templates
                # is broken): keep its last good version running.
                fresh[campaign_id], sources[campaign_id] = old, source
                report.kept[str(source)] = campaign_id
                if campaign_id in loaded.unrenderable:
                    held.add(campaign_id)
        self.held = frozenset(held)
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
