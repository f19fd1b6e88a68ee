"""Campaign files: the YAML a marketer writes, validated into :class:`Campaign` objects.

Every problem is reported as ``FILE:LINE: field.path: what is wrong and what was expected``
(``campaigns/habit.yaml:14: steps[1].after: '7dd' is not a duration like 7d or 36h``).
Unknown keys are errors, with a "did you mean" when one is close. A broken file is reported
and skipped; the others load. Audience filters are a small declarative language parsed
here — never evaluated as Python.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from reengage.timeutil import parse_duration

# -- small value types -------------------------------------------------------------------


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int) and value == 0:
        return timedelta(0)
    try:
        return parse_duration(str(value))
    except ValueError as exc:
        raise ValueError(str(exc)) from None


Duration = Annotated[timedelta, BeforeValidator(_duration)]
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_ADDRESS = re.compile(
    r'^(?:"?[^"<>\r\n]*"?\s*<[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+>|[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+)$'
)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _workdays() -> list[Weekday]:
    return ["mon", "tue", "wed", "thu", "fri"]


class ExitReason(StrEnum):
    """What ends a customer's enrollment early."""

    ACTIVITY = "activity"
    PURCHASE = "purchase"
    REPLY = "reply"
    CLICK = "click"
    UNSUBSCRIBE = "unsubscribe"
    BOUNCE = "bounce"
    COMPLAINT = "complaint"
    CALL_OUTCOME = "call_outcome"


class Condition(StrEnum):
    """When a step is sent only if something did (not) happen with the previous mail."""

    PREVIOUS_NOT_OPENED = "previous_not_opened"
    PREVIOUS_NOT_CLICKED = "previous_not_clicked"
    PREVIOUS_OPENED = "previous_opened"
    NO_REPLY = "no_reply"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# -- audience ------------------------------------------------------------------------------

FILTER_FIELDS = {
    # field: kind
    "segment": "text",
    "locale": "text",
    "timezone": "text",
    "company": "text",
    "rep": "text",
    "tags": "list",
    "interests": "list",
    "total_value": "number",
    "orders": "number",
    "days_silent": "number",
    "lapse_ratio": "number",
    "lapse_score": "number",
    "value_per_year": "number",
    "value_at_risk": "number",
    "priority": "number",
}
_OPS = ("==", "!=", "<=", ">=", "<", ">", "not in", "in")
_TOKEN = re.compile(
    r"""\s*(?:(?P<number>-?\d+(?:\.\d+)?)|(?P<string>'[^'\\]*'|"[^"\\]*")|(?P<name>[a-z_]+)"""
    r"""|(?P<op>==|!=|<=|>=|<|>)|(?P<punct>[\[\],]))"""
)


@dataclass(frozen=True)
class Filter:
    """One parsed condition: ``field op value`` or ``value in field`` (for lists)."""

    source: str
    field: str
    op: str
    value: Any

    def matches(self, record: dict[str, Any]) -> bool:
        """Evaluate against a record of customer facts (see :data:`FILTER_FIELDS`)."""
        have = record.get(self.field)
        if self.op == "contains":
            return have is not None and self.value in have
        if self.op == "not contains":
            return have is None or self.value not in have
        if self.op in ("in", "not in"):
            inside = have in self.value
            return inside if self.op == "in" else not inside
        if have is None:
            return self.op == "!="
        if self.op == "==":
            return bool(have == self.value)
        if self.op == "!=":
            return bool(have != self.value)
        if not isinstance(have, int | float):
            return False
        limit = float(self.value)
        return {
            "<": have < limit,
            "<=": have <= limit,
            ">": have > limit,
            ">=": have >= limit,
        }[self.op]


def parse_filter(text: str) -> Filter:
    """Parse ``total_value >= 100``, ``segment in ['retail', 'wholesale']``, ``'vip' in tags``.

    Anything else — function calls, attribute access, arithmetic — is refused, so a filter
    can never run code.
    """
    tokens = _tokenize(text)
    example = '"total_value >= 100", "segment in [\'retail\']" or "\'vip\' in tags"'
    # value in list-field:  'vip' in tags  /  'vip' not in tags
    if len(tokens) >= 3 and tokens[0][0] in ("string", "number") and tokens[-1][0] == "name":
        middle = " ".join(t[1] for t in tokens[1:-1])
        name = tokens[-1][1]
        if middle in ("in", "not in"):
            _known_field(name)
            if FILTER_FIELDS[name] != "list":
                raise ValueError(f"'{name}' is not a list; write \"{name} == ...\" instead")
            op = "contains" if middle == "in" else "not contains"
            return Filter(text, name, op, _literal(tokens[0]))
    if not tokens or tokens[0][0] != "name":
        raise ValueError(f"{text!r} is not a filter like {example}")
    name = tokens[0][1]
    _known_field(name)
    rest = tokens[1:]
    if len(rest) >= 2 and rest[0] == ("name", "not") and rest[1] == ("name", "in"):
        op, rest = "not in", rest[2:]
    elif rest and rest[0] == ("name", "in"):
        op, rest = "in", rest[1:]
    elif rest and rest[0][0] == "op":
        op, rest = rest[0][1], rest[1:]
    else:
        raise ValueError(f"{text!r} is not a filter like {example}")
    if op in ("in", "not in"):
        values = _list_literal(rest, text, example)
        return Filter(text, name, op, tuple(values))
    if len(rest) != 1 or rest[0][0] not in ("string", "number"):
        raise ValueError(f"{text!r}: expected one value after {op!r}, like {example}")
    value = _literal(rest[0])
    kind = FILTER_FIELDS[name]
    if op in ("<", "<=", ">", ">=") and (kind != "number" or not isinstance(value, float)):
        raise ValueError(f"{text!r}: {op!r} compares numbers; '{name}' is {kind}")
    return Filter(text, name, op, value)


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise ValueError(
                f"{text!r} is not a filter this language understands (at {text[pos:]!r}); "
                "filters compare a field with a value and never run code"
            )
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return tokens


def _known_field(name: str) -> None:
    if name not in FILTER_FIELDS:
        close = difflib.get_close_matches(name, list(FILTER_FIELDS), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise ValueError(
            f"'{name}' is not a field you can filter on; {hint}fields: {', '.join(FILTER_FIELDS)}"
        )


def _literal(token: tuple[str, str]) -> Any:
    kind, raw = token
    return float(raw) if kind == "number" else raw[1:-1]


def _list_literal(rest: list[tuple[str, str]], text: str, example: str) -> list[Any]:
    if len(rest) < 2 or rest[0] != ("punct", "[") or rest[-1] != ("punct", "]"):
        raise ValueError(f"{text!r}: expected a list like ['a', 'b'] after 'in'")
    values, expect_value = [], True
    for token in rest[1:-1]:
        if expect_value and token[0] in ("string", "number"):
            values.append(_literal(token))
        elif not expect_value and token == ("punct", ","):
            pass
        else:
            raise ValueError(f"{text!r}: expected a list like ['a', 'b'], as in {example}")
        expect_value = not expect_value
    return values


def _filter(value: Any) -> Filter:
    if isinstance(value, Filter):
        return value
    if not isinstance(value, str):
        raise ValueError('each filter is a quoted text like "total_value >= 100"')
    return parse_filter(value)


FilterRule = Annotated[Filter, BeforeValidator(_filter)]


class LapseRule(_Strict):
    """Who counts as lapsed for this campaign."""

    factor: float = Field(2.0, gt=0, description="silent for at least this many of their gaps")
    min_days_silent: float = Field(0.0, ge=0)
    max_days_silent: float | None = Field(None, gt=0)
    min_score: float = Field(0.0, ge=0, le=1)

    @model_validator(mode="after")
    def _range(self) -> LapseRule:
        if self.max_days_silent is not None and self.max_days_silent < self.min_days_silent:
            raise ValueError("max_days_silent is below min_days_silent")
        return self


class DeclineRule(_Strict):
    """Shrinking customers: a ratio (recent ÷ before) at or below a threshold."""

    count_below: float | None = Field(None, gt=0, le=1)
    aov_below: float | None = Field(None, gt=0, le=1)
    margin_below: float | None = Field(None, gt=0, le=1)


class Audience(_Strict):
    """Who enters: lapsed and/or declining customers, narrowed by filters."""

    lapsed: LapseRule | None = None
    declining: DeclineRule | None = None
    where: list[FilterRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _some_rule(self) -> Audience:
        if self.lapsed is None and self.declining is None and not self.where:
            raise ValueError("give at least one of lapsed, declining or where")
        return self


# -- sending -------------------------------------------------------------------------------


class SendWindow(_Strict):
    """When mail may go out, in the recipient's local time unless a zone is named."""

    hours: str = "09:00-17:00"
    days: list[Weekday] = Field(default_factory=_workdays)
    timezone: str = "recipient"
    skip_dates: list[date] = Field(default_factory=list, description="holidays: no sends")

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        match = re.fullmatch(r"(\d{2}):(\d{2})-(\d{2}):(\d{2})", value.strip())
        if match is None:
            raise ValueError(f"{value!r} is not a time range like 09:00-17:00")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h1, m1) >= (h2, m2):
            raise ValueError(f"{value!r} is not a time range like 09:00-17:00 (start < end)")
        return value.strip()

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        if value != "recipient":
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(
                    f"{value!r} is not 'recipient' or an IANA time zone like Europe/Berlin"
                ) from None
        return value

    @field_validator("days")
    @classmethod
    def _some_day(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("name at least one weekday (mon … sun)")
        return value

    def bounds(self) -> tuple[time, time]:
        """Opening and closing time of day."""
        start, end = self.hours.split("-")
        closing = time(23, 59, 59) if end == "24:00" else time.fromisoformat(end)
        return time.fromisoformat(start), closing


class CallSpec(_Strict):
    """A step that puts the customer on their rep's call list instead of mailing."""

    reason: str = Field(min_length=1, max_length=300)
    priority: Literal["low", "normal", "high"] = "normal"


class Step(_Strict):
    """One step of the sequence: a mail (subject + template) or a call."""

    key: str
    after: Duration = Field(description="time since the previous step (or enrollment)")
    subject: str | None = Field(None, max_length=300)
    template: str | None = None
    text_template: str | None = None
    condition: Condition | None = None
    call: CallSpec | None = None

    @field_validator("key")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _SLUG.match(value):
            raise ValueError(f"{value!r} is not a key like tip-1 (lower case, digits, dashes)")
        return value

    @model_validator(mode="after")
    def _mail_or_call(self) -> Step:
        if self.call is not None:
            if self.template or self.subject:
                raise ValueError("a call step has no subject or template")
        elif not self.template or not self.subject:
            missing = "template" if not self.template else "subject"
            raise ValueError(f"a mail step needs a subject and a template ({missing} is missing)")
        return self

    @property
    def is_call(self) -> bool:
        """True for a call step."""
        return self.call is not None


class Campaign(_Strict):
    """A campaign as its YAML file describes it."""

    id: str
    name: str = Field(min_length=1, max_length=200)
    enabled: bool = True
    priority: int = Field(0, description="higher wins when several campaigns want a customer")
    audience: Audience | None = Field(
        None, description="None: customers enter only by a rep's call outcome or the API"
    )
    not_enrolled_within_days: int = Field(90, ge=0)
    holdout_percent: float = Field(10.0, ge=0, le=50)
    exit_on: list[ExitReason] = Field(
        default_factory=lambda: [
            ExitReason.ACTIVITY,
            ExitReason.REPLY,
            ExitReason.UNSUBSCRIBE,
            ExitReason.BOUNCE,
            ExitReason.COMPLAINT,
        ]
    )
    allow_parallel: bool = Field(False, description="may run beside another campaign")
    send_window: SendWindow = Field(default_factory=SendWindow)
    sender: str = Field(alias="from")
    reply_to: str | None = None
    steps: list[Step] = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _SLUG.match(value):
            raise ValueError(f"{value!r} is not an id like habit-lapsed-tips")
        return value

    @field_validator("sender", "reply_to")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None and not _ADDRESS.match(value.strip()):
            raise ValueError(f'{value!r} is not an address like "Acme <hello@acme.example>"')
        return value.strip() if value else value

    @field_validator("steps")
    @classmethod
    def _unique_keys(cls, steps: list[Step]) -> list[Step]:
        seen: set[str] = set()
        for step in steps:
            if step.key in seen:
                raise ValueError(f"step key {step.key!r} is used twice; keys must be unique")
            seen.add(step.key)
        return steps

    def step(self, key: str) -> Step | None:
        """The step with ``key``, if the campaign still has it."""
        return next((s for s in self.steps if s.key == key), None)

    def in_holdout(self, customer_key: str) -> bool:
        """Deterministic control-group membership: the same answer on every run."""
        digest = hashlib.sha256(f"{self.id}\x1f{customer_key}".encode()).digest()
        return int.from_bytes(digest[:8], "big") % 10_000 < self.holdout_percent * 100


# -- loading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing wrong in one file, located for a person."""

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.field}: " if self.field else ""
        return f"{self.file}:{self.line}: {where}{self.message}"


@dataclass
class LoadResult:
    """Campaigns that loaded, and every problem found (broken files are skipped)."""

    campaigns: dict[str, Campaign] = field(default_factory=dict)
    sources: dict[str, Path] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)  # id -> file name for messages
    lines: dict[str, dict[tuple[Any, ...], int]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def locate(self, campaign_id: str, path: tuple[Any, ...]) -> tuple[str, int, str]:
        """``(file, line, field)`` of a field of a loaded campaign, for messages."""
        return (self.labels[campaign_id], _line_of(path, self.lines[campaign_id]), _dotted(path))


def load_campaign(
    path: Path, label: str | None = None, lines: dict[tuple[Any, ...], int] | None = None
) -> tuple[Campaign | None, list[Problem]]:
    """Parse and validate one campaign file (``lines`` receives the line of every field)."""
    name = label or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(name, 1, "", f"cannot read the file: {exc}")]
    return parse_campaign(text, name, lines)


def parse_campaign(
    text: str, name: str, lines: dict[tuple[Any, ...], int] | None = None
) -> tuple[Campaign | None, list[Problem]]:
    """Validate campaign YAML ``text``; problems are reported as coming from ``name``."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc)
        return None, [Problem(name, line, "", f"this is not valid YAML: {problem}")]
    if not isinstance(data, dict) or node is None:
        return None, [Problem(name, 1, "", "a campaign file is a mapping of keys like id:, name:")]
    lines = {} if lines is None else lines
    _record_lines(node, (), lines)
    try:
        return Campaign.model_validate(data), []
    except ValidationError as exc:
        return None, [_problem(name, error, lines) for error in exc.errors()]


def _record_lines(
    node: yaml.Node, path: tuple[Any, ...], lines: dict[tuple[Any, ...], int]
) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            key_path = (*path, key.value)
            _record_lines(value, key_path, lines)
            lines[key_path] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _record_lines(item, (*path, index), lines)


def _problem(file: str, error: Any, lines: dict[tuple[Any, ...], int]) -> Problem:
    loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and "[" in p))
    if error["type"] == "extra_forbidden":
        message = _unknown_key(loc)
    elif error["type"] == "missing":
        message = f"'{loc[-1]}' is missing"
        return Problem(file, _line_of(loc[:-1], lines), _dotted(loc[:-1]), message)
    else:
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] in ("literal_error", "enum"):
            message = f"{error.get('input')!r} is not allowed; {message[0].lower()}{message[1:]}"
    return Problem(file, _line_of(loc, lines), _dotted(loc), message)


def _unknown_key(loc: tuple[Any, ...]) -> str:
    key = loc[-1]
    model = _model_at(loc[:-1])
    known = (
        sorted((info.alias or name) for name, info in model.model_fields.items()) if model else []
    )
    close = difflib.get_close_matches(str(key), known, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(known)}"
    return f"unknown key '{key}'{hint}"


def _model_at(path: tuple[Any, ...]) -> type[BaseModel] | None:
    model: Any = Campaign
    for part in path:
        if isinstance(part, int):
            continue
        info = model.model_fields.get(part) or next(
            (i for i in model.model_fields.values() if i.alias == part), None
        )
        if info is None:
            return None
        inner = info.annotation
        for candidate in (*getattr(inner, "__args__", ()), inner):
            for sub in (candidate, *getattr(candidate, "__args__", ())):
                if isinstance(sub, type) and issubclass(sub, BaseModel):
                    model = sub
                    break
            else:
                continue
            break
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _line_of(loc: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> int:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_campaigns(paths: list[Path], root: Path | None = None) -> LoadResult:
    """Load every ``*.yaml``/``*.yml`` under ``paths``; duplicates ids are errors."""
    result = LoadResult()
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml")))
        else:
            files.append(path)
    for file in files:
        label = _label(file, root)
        lines: dict[tuple[Any, ...], int] = {}
        campaign, problems = load_campaign(file, label, lines)
        result.problems.extend(problems)
        if campaign is None:
            continue
        if campaign.id in result.campaigns:
            first = result.sources[campaign.id]
            result.problems.append(
                Problem(
                    label,
                    1,
                    "id",
                    f"'{campaign.id}' is already the id of {_label(first, root)}; "
                    "ids must be unique",
                )
            )
            continue
        result.campaigns[campaign.id] = campaign
        result.sources[campaign.id] = file
        result.labels[campaign.id] = label
        result.lines[campaign.id] = lines
    return result


def _label(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return str(path.resolve().relative_to(root.resolve()))
        except ValueError:
            pass
    return str(path)
