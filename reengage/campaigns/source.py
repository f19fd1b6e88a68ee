"""From the bytes of a campaign file to plain data and the line of every field, or one
located reason why not.

A marketer's file may be anything: saved as GBK, binary, empty, indented with tabs, nested
ten thousand deep, full of aliases that expand to billions of values, or holding a date
that is not in the calendar. Each becomes :class:`Unreadable` with a line and what to do;
nothing here raises anything else for any input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import SafeConstructor
from yaml.reader import ReaderError

MAX_BYTES = 1_000_000  # a campaign file is a few KB; this is not one
MAX_DEPTH = 20  # a campaign nests five deep (steps → step → call → reason)
MAX_VALUES = 10_000  # values once aliases are filled in; a campaign has a few hundred
_MERGE = {"tag:yaml.org,2002:merge", "tag:yaml.org,2002:value"}


class Unreadable(Exception):
    """Why a file cannot be read as a campaign, and on which line."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"{line}: {message}")
        self.line = line
        self.message = message


@dataclass
class Document:
    """A file's data, the line of every field, and the keys it gives twice."""

    data: Any
    lines: dict[tuple[Any, ...], int] = field(default_factory=dict)
    repeated: list[tuple[tuple[Any, ...], int, int]] = field(default_factory=list)


def decode(data: bytes) -> str:
    """The text of a campaign file saved as UTF-8 (a byte order mark is fine).

    Raises :class:`Unreadable` naming the first byte that is not UTF-8, where it is, and
    the likely encoding, for any other file.
    """
    if len(data) > MAX_BYTES:
        raise Unreadable(1, f"the file is over {MAX_BYTES // 1_000_000} MB: {_NOT_CAMPAIGN}")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or _looks_utf16(data):
        raise Unreadable(
            1, 'the file is saved as UTF-16 (some editors call it "Unicode"); save it as UTF-8'
        )
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise Unreadable(line, f"this is a binary file (it holds NUL bytes): {_NOT_CAMPAIGN}")
    body = data.removeprefix(b"\xef\xbb\xbf")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = exc.start
        line = body[:start].count(b"\n") + 1
        column = start - (body.rfind(b"\n", 0, start) + 1) + 1
        raise Unreadable(
            line,
            f"the file is not saved as UTF-8: byte 0x{body[start]:02X} on line {line}, "
            f"column {column} is not UTF-8 ({_guess(body)}); open the file in your editor "
            "and save it as UTF-8",
        ) from None


_NOT_CAMPAIGN = "a campaign file is a few KB of YAML text saved as UTF-8 — is it the right file?"


def _looks_utf16(data: bytes) -> bool:
    # ASCII saved as UTF-16 without a byte order mark: every other byte is NUL.
    sample = data[:200]
    return len(sample) >= 4 and (
        sample[1::2].count(0) * 4 >= len(sample) * 2 or sample[0::2].count(0) * 4 >= len(sample) * 2
    )


def _guess(body: bytes) -> str:
    # Chinese encodings write each character as two high bytes; Latin-1 and Windows-1252
    # write an accented letter as one, between plain ones.
    runs = [len(run) for run in re.findall(rb"[\x80-\xff]+", body)]
    if runs and sum(1 for n in runs if n % 2 == 0) * 2 > len(runs):
        return "it looks like GBK or another Chinese encoding"
    return "it looks like Latin-1 or Windows-1252"


def read_yaml(text: str) -> Document:
    """Parse one YAML document into plain data, recording the line of every key and item.

    Raises :class:`Unreadable` for text that is not YAML, is too deep or too big once its
    aliases are filled in, or holds more than one document.
    """
    if len(text) > MAX_BYTES:
        raise Unreadable(1, f"the file is over {MAX_BYTES // 1_000_000} MB: {_NOT_CAMPAIGN}")
    loader: _Loader | None = None
    try:
        loader = _Loader(text)
        node = loader.get_single_node()
        if node is None:
            raise Unreadable(1, _EMPTY)
        document = Document(None)
        _record(loader, node, (), document)
        document.data = loader.construct_document(node)
        return document
    except _Refused as exc:
        raise Unreadable(_line(exc.problem_mark), exc.problem or "") from None
    except ReaderError as exc:
        raise Unreadable(*_unprintable(text, exc)) from None
    except yaml.MarkedYAMLError as exc:
        raise Unreadable(*_explain(exc)) from None
    except yaml.YAMLError as exc:
        line = loader.last_line if loader else 1
        raise Unreadable(line, f"this is not valid YAML: {_one_line(str(exc))}") from None
    except (ValueError, OverflowError, RecursionError) as exc:
        # A value PyYAML's own constructors cannot build that the ones below do not catch.
        line = loader.last_line if loader else 1
        raise Unreadable(line, f"this YAML cannot be read: {exc}") from None
    finally:
        if loader is not None:
            loader.dispose()


_EMPTY = "the file is empty: a campaign needs at least id:, name:, from: and steps:"


class _Refused(ComposerError):
    """Valid YAML that no campaign needs: too deep, too big, or an alias inside itself."""


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, with limits on depth and size and no way to loop."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.last_line = 1
        self._depth = 0
        self._open: set[str] = set()  # anchors of the collections being composed
        self._size: dict[int, int] = {}  # node -> values once its aliases are filled in
        self._reach: dict[int, int] = {}  # node -> depth once its aliases are filled in

    def compose_node(self, parent: Any, index: Any) -> Any:
        # types-PyYAML leaves the parser's methods untyped.
        event: Any = self.peek_event()  # type: ignore[no-untyped-call]
        start: Any = event.start_mark
        self.last_line = start.line + 1
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self._open:
                raise _Refused(
                    None,
                    None,
                    f"the alias *{event.anchor} is inside the &{event.anchor} it refers to, "
                    "which would never end: remove it",
                    start,
                )
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _Refused(None, None, _too_deep(), start)
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            self._open.add(anchor)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
            self._open.discard(anchor or "")
        if node is not None:
            self._measure(node)
        return node

    def _measure(self, node: yaml.Node) -> None:
        children = _children(node)
        size = 1 + sum(self._size.get(id(child), 1) for child in children)
        reach = 1 + max((self._reach.get(id(child), 1) for child in children), default=0)
        self._size[id(node)], self._reach[id(node)] = size, reach
        if size > MAX_VALUES:
            raise _Refused(
                None,
                None,
                f"the aliases (*name) here expand to more than {MAX_VALUES} values; a "
                "campaign needs a few hundred — write the values out instead",
                node.start_mark,
            )
        if reach > MAX_DEPTH:
            raise _Refused(None, None, _too_deep(), node.start_mark)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        self.last_line = node.start_mark.line + 1
        return super().construct_object(node, deep=deep)


def _keep_text_if_unreadable(loader: _Loader, node: yaml.Node) -> Any:
    # 2026-02-30 looks like a date and is not one; a 5000-digit number is more than Python
    # reads. Kept as text, the field it was given for says what is wrong, at its line.
    build = SafeConstructor.yaml_constructors[node.tag]
    try:
        return build(loader, node)
    except (ValueError, OverflowError):
        return loader.construct_scalar(node)  # type: ignore[arg-type]


for _tag in ("timestamp", "int", "float"):
    _Loader.add_constructor(f"tag:yaml.org,2002:{_tag}", _keep_text_if_unreadable)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _too_deep() -> str:
    return (
        f"this is nested more than {MAX_DEPTH} levels deep; a campaign nests five at most "
        "(steps, a step, its call, …) — check the brackets and indentation"
    )


def _record(loader: _Loader, node: yaml.Node, path: tuple[Any, ...], document: Document) -> None:
    document.lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag in _MERGE:
                continue  # unhashable keys fail when built; merged keys have no line here
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in seen:  # YAML keeps the last one: so do its lines
                document.repeated.append(((*path, key), line, seen[key]))
            seen[key] = line
            _record(loader, value_node, (*path, key), document)
            document.lines[(*path, key)] = line
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _record(loader, item, (*path, index), document)


def _line(mark: Any) -> int:
    return int(mark.line) + 1 if mark is not None else 1


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _unprintable(text: str, exc: ReaderError) -> tuple[int, str]:
    position = max(0, min(int(exc.position), len(text)))
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    code = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or " ")
    return line, (
        f"character U+{code:04X} on line {line}, column {column} cannot be in YAML text "
        "(an invisible control character, often pasted from another program): delete it"
    )


# What the parser says, and what a marketer should do about it.
_HINTS = (
    (
        "found character '\\t' that cannot start any token",
        "YAML indents with spaces, never tabs: replace the tab with spaces",
    ),
    (
        "mapping values are not allowed here",
        "a text holding ': ' needs quotes, like subject: \"Spring sale: 20% off\"",
    ),
    ("found unhashable key", "a key is one word like subject, not a list or a mapping"),
    (
        "could not determine a constructor",
        "a campaign file holds plain values, without tags like !!python/…",
    ),
    ("found undefined alias", "define &name before using *name"),
)


def _explain(exc: yaml.MarkedYAMLError) -> tuple[int, str]:
    problem = _one_line(exc.problem or str(exc))
    context = _one_line(exc.context or "")
    if exc.context_mark is not None and ("end of stream" in problem or "<stream end>" in problem):
        # An unclosed quote or bracket is found at the end of the file: point at its start.
        opened = "quote" if "quoted" in context else "bracket"
        return _line(exc.context_mark), (
            f"this is not valid YAML: the {opened} opened here is never closed"
        )
    if exc.context_mark is not None and "could not find expected ':'" in problem:
        return _line(exc.context_mark), (
            "this is not valid YAML: this line is neither key: value nor a - list item "
            "(a missing colon, or a line that belongs to the one above?)"
        )
    if "expected a single document" in context:
        return _line(exc.problem_mark), (
            "this is not valid YAML: a second document starts here; a campaign file holds one "
            "campaign — remove the second '---' or split the file in two"
        )
    hint = next((fix for found, fix in _HINTS if found in problem), None)
    message = f"this is not valid YAML: {problem}"
    return _line(exc.problem_mark or exc.context_mark), f"{message}; {hint}" if hint else message
