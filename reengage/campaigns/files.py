"""Loading campaign files: every problem located as ``FILE:LINE: field.path: message``.

A problem in one file is that file's alone: it is reported and the file skipped, and the
other files load. When several files give the same id, the one that had it first keeps it
and loads — the file a running service already has the campaign from, else the oldest by
modification time (then by name) — and each other file is reported at its ``id:`` line. A
warning is reported and does not stop a load.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from reengage.campaigns.model import Campaign, subject_key
from reengage.campaigns.source import MAX_BYTES, Unreadable, decode, read_yaml


@dataclass(frozen=True)
class Problem:
    """One thing wrong in one file, located for a person.

    A ``"warning"`` is shown as ``FILE:LINE: warning: …`` and does not stop the campaign
    from loading; an ``"error"`` does.
    """

    file: str
    line: int
    field: str
    message: str
    severity: Literal["error", "warning"] = "error"

    @property
    def is_error(self) -> bool:
        """True when the problem stops its campaign from loading."""
        return self.severity == "error"

    def __str__(self) -> str:
        where = f"{self.field}: " if self.field else ""
        kind = "warning: " if self.severity == "warning" else ""
        place = f"{self.file}:{self.line}" if self.line else self.file  # 0: the whole file
        return f"{place}: {kind}{where}{self.message}"


@dataclass
class LoadResult:
    """Campaigns that loaded, and every problem found (broken files are skipped)."""

    campaigns: dict[str, Campaign] = field(default_factory=dict)
    sources: dict[str, Path] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)  # id -> file name for messages
    lines: dict[str, dict[tuple[Any, ...], int]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    # Campaigns whose file loads but whose mail cannot be made (a template is broken).
    unrenderable: set[str] = field(default_factory=set)

    def locate(self, campaign_id: str, path: tuple[Any, ...]) -> tuple[str, int, str]:
        """``(file, line, field)`` of a field of a loaded campaign, for messages."""
        return (self.labels[campaign_id], _line_of(path, self.lines[campaign_id]), _dotted(path))


def load_campaign(
    path: Path, label: str | None = None, lines: dict[tuple[Any, ...], int] | None = None
) -> tuple[Campaign | None, list[Problem]]:
    """Read and validate one campaign file (``lines`` receives the line of every field).

    Never raises for what the file holds or is: a folder, a pipe, an unreadable or
    binary file is a problem of that file.
    """
    campaign, problems, _ = _load(path, label or str(path), lines)
    return campaign, problems


def _load(
    path: Path, name: str, lines: dict[tuple[Any, ...], int] | None
) -> tuple[Campaign | None, list[Problem], str | None]:
    """:func:`load_campaign`, and the id the file gives (see :func:`_parse`)."""
    try:
        if path.is_dir():
            return None, [Problem(name, 1, "", _FOLDER)], None
        if not path.is_file():
            if path.is_symlink():
                what = f"is a link to {path.readlink()}, which does not exist"
            elif path.exists():
                what = "is not a plain file (a pipe or a device)"
            else:
                what = "does not exist"
            return None, [Problem(name, 1, "", f"{what}: a campaign is a .yaml text file")], None
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        message = f"cannot be read ({reason}): check that reengage may read it"
        return None, [Problem(name, 1, "", message)], None
    return _parse(data, name, lines)


_FOLDER = "is a folder, not a campaign file: give it a name that does not end in .yaml"


def parse_campaign(
    source: str | bytes, name: str, lines: dict[tuple[Any, ...], int] | None = None
) -> tuple[Campaign | None, list[Problem]]:
    """Validate campaign YAML (text, or a file's bytes: UTF-8 expected); problems are
    reported as coming from ``name``. The campaign is None when any problem is an error."""
    campaign, problems, _ = _parse(source, name, lines)
    return campaign, problems


def _parse(
    source: str | bytes, name: str, lines: dict[tuple[Any, ...], int] | None
) -> tuple[Campaign | None, list[Problem], str | None]:
    """:func:`parse_campaign`, and the id the file gives: read even when another field is
    wrong (a broken file still has its id), None when the id itself cannot be read."""
    lines = {} if lines is None else lines
    try:
        text = decode(source) if isinstance(source, bytes) else source
        document = read_yaml(text)
    except Unreadable as exc:
        return None, [Problem(name, exc.line, "", exc.message)], None
    lines.update(document.lines)
    data = document.data
    if not isinstance(data, dict):
        shape = "a list" if isinstance(data, list) else f"the single value {data!r}"
        line = lines.get((), 1)
        message = f"a campaign file is a mapping of keys like id: and name:, not {shape}"
        return None, [Problem(name, line, "", message)], None
    given = data.get("id")
    problems = [
        Problem(name, line, _dotted(path), f"'{path[-1]}' is given twice (first on line {first})")
        for path, line, first in document.repeated
    ]
    try:
        campaign = Campaign.model_validate(data)
    except ValidationError as exc:
        problems += [_problem(name, error, lines) for error in exc.errors()]
        problems.sort(key=lambda p: p.line)
        return None, problems, _given_id(given, problems)
    if problems:
        return None, problems, _given_id(given, problems)
    _subject_lines(lines)
    return campaign, [], campaign.id


def _given_id(value: Any, problems: list[Problem]) -> str | None:
    """The id a file that does not load gives, when that id itself is sound."""
    if not isinstance(value, str) or any(p.field == "id" for p in problems):
        return None
    return value


def _subject_lines(lines: dict[tuple[Any, ...], int]) -> None:
    # A subject keyed zh_CN in the file is zh-CN in the campaign: find its line by either.
    for path, line in list(lines.items()):
        if len(path) == 4 and path[0] == "steps" and path[2] == "subject":
            try:
                lines.setdefault((*path[:3], subject_key(path[3])), line)
            except ValueError:
                continue


def _problem(file: str, error: Any, lines: dict[tuple[Any, ...], int]) -> Problem:
    # Pydantic adds union and validator tags ("function-after[...]", "[key]") to a
    # location; an unknown key is the last part whatever it says (it may hold "[" itself).
    kind = str(error["type"])
    tags = error["loc"][:-1] if kind == "extra_forbidden" else error["loc"]
    kept = error["loc"][-1:] if kind == "extra_forbidden" else ()
    loc = tuple(p for p in tags if not (isinstance(p, str) and "[" in p)) + tuple(kept)
    if kind == "extra_forbidden":
        message = _unknown_key(loc)
    elif kind == "missing":
        message = f"'{loc[-1]}' is missing"
        return Problem(file, _line_of(loc[:-1], lines), _dotted(loc[:-1]), message)
    elif kind == "invalid_key":  # a number, a date or nothing where a key's name should be
        key, where = error.get("input"), loc[:-1]
        line = lines.get((*where, key)) or _line_of(where, lines)
        shown = "an empty key" if key is None else f"'{key}'"
        message = f"{shown} is not a key: keys are words like id, subject or send_window"
        return Problem(file, line, _dotted(where), message)
    elif kind in _EXPECTED:
        message = f"expected {_EXPECTED[kind]}, not {_shape(error.get('input'))}"
    else:
        message = str(error["msg"]).removeprefix("Value error, ")
        if kind in ("literal_error", "enum"):
            message = f"{error.get('input')!r} is not allowed; {message[0].lower()}{message[1:]}"
    return Problem(file, _line_of(loc, lines), _dotted(loc), message)


# What a field of the wrong kind wanted, said the way a person writes YAML.
_EXPECTED = {
    "string_type": "a text (in quotes if YAML would read it as something else)",
    "list_type": "a list, like [a, b] or one '- item' per line",
    "dict_type": "a mapping of keys and values",
    "model_type": "a mapping of keys and values",
    "model_attributes_type": "a mapping of keys and values",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "finite_number": "a number (not .inf or .nan)",
}


def _shape(value: Any) -> str:
    if isinstance(value, bool):
        # The Norway problem: YAML reads yes, no, on and off as true and false.
        return f"{str(value).lower()} (YAML reads yes/no/on/off as true/false: use quotes)"
    if isinstance(value, date):
        return f"the date {value} (YAML reads it as a date: use quotes)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    shown = repr(value)
    return shown if len(shown) <= 60 else f"{shown[:57]}…"


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


def load_campaigns(
    paths: list[Path], root: Path | None = None, keep: Mapping[str, Path] | None = None
) -> LoadResult:
    """Load every ``*.yaml``/``*.yml`` under ``paths`` (hidden files and folders left out).

    Each file's problems are its own. When several files give one id, the file that had it
    first keeps it: the one ``keep`` names for that id (the file a running service already
    has the campaign from), else the oldest by modification time, then the first by name.
    It loads as if alone (or is reported for its own problems); each other file is an error
    at its ``id:`` line naming the file that keeps the id. A file that does not load still
    gives its id when it can be read; a ``keep`` file whose id cannot be read now (its YAML
    is broken) is taken to still give the id it had.
    """
    result = LoadResult()
    keep = dict(keep or {})
    given: dict[str, list[_Read]] = {}
    for file in _campaign_files(paths, result.problems, root):
        label = _label(file, root)
        lines: dict[tuple[Any, ...], int] = {}
        try:
            campaign, problems, campaign_id = _load(file, label, lines)
        except Exception as exc:  # the rule is one file's problem is that file's alone
            campaign, problems, campaign_id = None, [Problem(label, 1, "", _bug(exc))], None
        result.problems.extend(problems)
        if any(p.is_error for p in problems):
            campaign = None
        if campaign_id is None:
            campaign_id = next((cid for cid, kept in keep.items() if kept == file), None)
        if campaign_id is not None:
            given.setdefault(campaign_id, []).append(
                _Read(file, label, campaign, lines, _mtime(file))
            )
    for campaign_id, found in given.items():
        kept = keep.get(campaign_id)
        first = next((read for read in found if read.file == kept), None) or min(
            found, key=lambda read: (read.mtime is None, read.mtime or 0, read.label)
        )
        for other in found:
            if other is first:
                continue
            if first.file == kept:
                why = "the running service has this campaign from it"
            elif first.mtime != other.mtime:
                why = "the older file"
            else:
                why = "as old as this one and first by name"
            result.problems.append(
                Problem(
                    other.label,
                    other.lines.get(("id",), 1),
                    "id",
                    f"'{campaign_id}' is already the id of {first.label} ({why}), which keeps "
                    "it: give this campaign its own id; this file does not load until then",
                )
            )
        if first.campaign is not None:
            result.campaigns[campaign_id] = first.campaign
            result.sources[campaign_id] = first.file
            result.labels[campaign_id] = first.label
            result.lines[campaign_id] = first.lines
    return result


@dataclass(frozen=True)
class _Read:
    """A file that gives an id: its campaign when it loads, and when it was last changed."""

    file: Path
    label: str
    campaign: Campaign | None
    lines: dict[tuple[Any, ...], int]
    mtime: int | None


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:  # gone, or cannot be looked at: it is not the oldest
        return None


def _campaign_files(paths: list[Path], problems: list[Problem], root: Path | None) -> list[Path]:
    files: dict[Path, None] = {}  # in order, each once however often it was named
    for path in paths:
        if not path.is_dir():
            files.setdefault(path)
            continue
        try:
            found = sorted(path.rglob("*"))
        except OSError as exc:  # the folder went away, or cannot be listed
            reason = exc.strerror or str(exc)
            problems.append(
                Problem(_label(path, root), 1, "", f"cannot list the folder ({reason})")
            )
            continue
        for file in found:
            hidden = any(part.startswith(".") for part in file.relative_to(path).parts)
            if file.suffix in (".yaml", ".yml") and not hidden:
                files.setdefault(file)
    return list(files)


def _bug(exc: Exception) -> str:
    return (
        f"reengage could not check this file ({type(exc).__name__}: {exc}); this is a bug in "
        "reengage — please report it with the file. The other campaigns still load."
    )


def _label(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            # The folder resolved, not the file: a link is named as the marketer named it.
            return str((path.parent.resolve() / path.name).relative_to(root.resolve()))
        except (ValueError, OSError, RuntimeError):  # elsewhere, or a loop of links
            pass
    return str(path)
