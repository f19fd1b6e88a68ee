"""What a check found about one record: right, worth a look, or wrong, and what to publish."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Level(StrEnum):
    """How a finding counts: only ``FAIL`` makes ``doctor --sender`` exit non-zero."""

    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Finding:
    """One line of the report: the record it is about, what is right or wrong, the fix."""

    level: Level
    what: str  # "SPF acme.example", "DKIM mail2026._domainkey.acme.example"
    detail: str
    publish: tuple[str, ...] = ()  # the record(s) to publish, as zone-file lines


def ok(what: str, detail: str) -> Finding:
    """A record that is as it should be."""
    return Finding(Level.OK, what, detail)


def warn(what: str, detail: str, *publish: str) -> Finding:
    """Something that works but that a receiver or an attacker may hold against the sender."""
    return Finding(Level.WARN, what, detail, publish)


def fail(what: str, detail: str, *publish: str) -> Finding:
    """Something required that is missing or wrong."""
    return Finding(Level.FAIL, what, detail, publish)


def txt_line(name: str, value: str) -> str:
    """The zone-file line publishing ``value`` at ``name``: strings of at most 255 bytes
    (DNS's limit for one string), which receivers join back into one value."""
    chunks = [value[i : i + 255] for i in range(0, len(value), 255)] or [""]
    quoted = " ".join('"' + c.replace("\\", "\\\\").replace('"', '\\"') + '"' for c in chunks)
    return f"{name.rstrip('.')}. TXT {quoted}"
