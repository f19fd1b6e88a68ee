"""A campaign's steps: a mail with its subject (one text, or one per locale) and template,
or a call; the durations between them and the conditions on the previous mail.

Also what every part of a campaign file shares (:class:`Strict`, the key and id form
:data:`SLUG`); :mod:`reengage.campaigns.model` builds the campaign from these steps.
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from reengage.locales import fallbacks, normalise_locale
from reengage.timeutil import parse_duration

# -- small value types -------------------------------------------------------------------


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value == 0:
        return timedelta(0)
    return parse_duration(str(value))


Duration = Annotated[timedelta, BeforeValidator(_duration)]
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")  # a campaign's id, a step's key


class Strict(BaseModel):
    """Every part of a campaign file: unknown keys refused, frozen once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Condition(StrEnum):
    """When a step is sent only if something did (not) happen with the previous mail."""

    PREVIOUS_NOT_OPENED = "previous_not_opened"
    PREVIOUS_NOT_CLICKED = "previous_not_clicked"
    PREVIOUS_OPENED = "previous_opened"
    NO_REPLY = "no_reply"


class CallSpec(Strict):
    """A step that puts the customer on their rep's call list instead of mailing."""

    reason: str = Field(min_length=1, max_length=300)
    priority: Literal["low", "normal", "high"] = "normal"


# -- subjects --------------------------------------------------------------------------------

DEFAULT = "default"  # the key of a subject mapping's text for every other locale
_SUBJECT_FORMS = (
    "a subject is a text, or a mapping of locale to text with a default: key, like "
    '{default: "Three things you may have missed", zh-CN: "您可能错过的三件事"}'
)


def _subject_text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(_SUBJECT_FORMS)
    if not value.strip():
        raise ValueError("the subject is empty: write the text a customer sees")
    if len(value) > 300:
        raise ValueError(f"the subject is {len(value)} characters long; 300 at most")
    return value


def subject_key(value: Any) -> str:
    """A subject mapping's key as the campaign holds it: ``default`` or a normalised locale."""
    if isinstance(value, str) and value.strip() == DEFAULT:
        return DEFAULT
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{value!r} is not a locale like zh-CN, nor default")
    try:
        return normalise_locale(value)
    except ValueError as exc:
        raise ValueError(f"{exc}, nor default") from None


def _distinct_locales(value: Any) -> Any:
    if isinstance(value, dict):
        seen: dict[str, Any] = {}
        for key in value:
            try:
                same = subject_key(key)
            except ValueError:
                continue  # reported at its own line
            if same in seen:
                raise ValueError(
                    f"{seen[same]!r} and {key!r} are the same locale ({same}): keep one"
                )
            seen[same] = key
    return value


def _with_default(value: dict[str, str]) -> dict[str, str]:
    if DEFAULT not in value:
        raise ValueError(
            "add a default: subject, for customers in every other locale "
            f"(this one has {', '.join(value) or 'none'})"
        )
    return value


def _subject_kind(value: Any) -> str:
    return "[by locale]" if isinstance(value, dict) else "[text]"


SubjectText = Annotated[str, BeforeValidator(_subject_text)]
LocaleSubjects = Annotated[
    dict[Annotated[str, BeforeValidator(subject_key)], SubjectText],
    BeforeValidator(_distinct_locales),
    AfterValidator(_with_default),
]
# The tags are written in brackets so that error locations leave them out, as they leave out
# pydantic's own bracketed parts: steps[1].subject.zh-CN, not steps[1].subject.by-locale.zh-CN.
Subject = Annotated[
    Annotated[SubjectText, Tag("[text]")] | Annotated[LocaleSubjects, Tag("[by locale]")],
    Discriminator(_subject_kind),
]


class Step(Strict):
    """One step of the sequence: a mail (subject + template) or a call.

    ``subject:`` is one text for every customer, or a mapping of locale to text with a
    ``default``; :meth:`subject_for` picks a customer's, as templates pick their variant.
    """

    # The YAML key is `subject`; the name is not, so that `step.subject` stays a plain text.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False)

    key: str
    after: Duration = Field(description="time since the previous step (or enrollment)")
    subject_source: Subject | None = Field(None, alias="subject")
    template: str | None = None
    text_template: str | None = None
    condition: Condition | None = None
    call: CallSpec | None = None

    @field_validator("key")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not SLUG.match(value):
            raise ValueError(f"{value!r} is not a key like tip-1 (lower case, digits, dashes)")
        return value

    @model_validator(mode="after")
    def _mail_or_call(self) -> Step:
        if self.call is not None:
            if self.template or self.subject_source:
                raise ValueError("a call step has no subject or template")
        elif not self.template or not self.subject_source:
            missing = "template" if not self.template else "subject"
            raise ValueError(f"a mail step needs a subject and a template ({missing} is missing)")
        return self

    @property
    def is_call(self) -> bool:
        """True for a call step."""
        return self.call is not None

    @property
    def subject(self) -> str | None:
        """The subject for customers in any locale (a mapping's ``default``); None for a call."""
        if isinstance(self.subject_source, dict):
            return self.subject_source[DEFAULT]
        return self.subject_source

    def subject_for(self, locale: str) -> str:
        """The subject for a customer in ``locale``: that locale's, its language's, or the
        default — the same fallback as a template's locale variants."""
        source = self.subject_source
        if source is None:
            raise ValueError(f"step {self.key!r} is a call: it has no subject")
        if isinstance(source, str):
            return source
        for candidate in fallbacks(locale):
            if candidate in source:
                return source[candidate]
        return source[DEFAULT]

    def subjects(self) -> dict[str, str]:
        """Every subject text by locale (``default`` for all others), for checking each one."""
        source = self.subject_source
        if source is None:
            return {}
        return {DEFAULT: source} if isinstance(source, str) else dict(source)
