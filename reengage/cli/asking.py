"""`calls log` asking a rep in a terminal for what the options left out: each question
asked again after an answer that does not read (a typo costs one question, not the whole
session), the day to call again judged on the rep's own date."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import date, timedelta
from enum import StrEnum
from typing import TypeVar

import typer

from reengage.digest import CallReport
from reengage.errors import InputError
from reengage.models import CauseScope, NextStep, Reached, WorthIt

E = TypeVar("E", bound=StrEnum)
T = TypeVar("T")


def choose(value: E | None, kind: type[E], option: str, question: str) -> E:
    """``value``, or in a terminal the answer to ``question`` (else an error naming ``option``)."""
    if value is not None:
        return value
    choices = [member.value for member in kind]
    if not sys.stdin.isatty():
        raise InputError(f"{option} is missing: one of {', '.join(choices)}")
    return ask(f"{question} [{'/'.join(choices)}]", lambda answer: member_of(kind, answer))


def member_of(kind: type[E], answer: str) -> E:
    """The choice typed; ValueError naming the choices when it is none of them."""
    try:
        return kind(answer.strip())
    except ValueError:
        choices = ", ".join(member.value for member in kind)
        raise ValueError(f"{answer.strip()!r} is not one of {choices}") from None


def ask(question: str, read: Callable[[str], T], default: str | None = None) -> T:
    """Ask until the answer reads: a typo costs one question, not the whole session."""
    while True:
        answer = typer.prompt(question, default=default, show_default=False)
        try:
            return read(answer)
        except ValueError as exc:
            typer.echo(f"{exc}; try again", err=True)


def ask_scope(value: CauseScope | None) -> CauseScope | None:
    """Ask "specific or systemic?" in a terminal; Enter leaves it unanswered (not "unsure")."""
    if value is not None or not sys.stdin.isatty():
        return value
    choices = "/".join(member.value for member in CauseScope)
    return ask(
        f"Specific to them or systemic? [{choices}, Enter to skip]",
        lambda answer: member_of(CauseScope, answer) if answer.strip() else None,
        default="",
    )


def ask_call_again_day(today: date) -> date:
    """Ask for the day to call again, judged on the rep's own ``today``."""

    def read(answer: str) -> date:
        try:
            day = date.fromisoformat(answer.strip())
        except ValueError:
            example = today + timedelta(days=7)
            raise ValueError(f"{answer.strip()!r} is not a day like {example}") from None
        found = CallReport(
            Reached.NOBODY, WorthIt.YES, NextStep.CALL_AGAIN, call_again_on=day
        ).problems(today)
        if "call_again_on" in found:
            raise ValueError(found["call_again_on"])
        return day

    return ask(f"Which day to call again? [YYYY-MM-DD, after {today.isoformat()}]", read)
