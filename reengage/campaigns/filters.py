"""The audience filter language of campaign files: ``total_value >= 100``, ``'vip' in tags``.

A filter is parsed into a :class:`Filter` and matched against a record of customer facts —
never evaluated as Python, so a filter can never run code.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator

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
