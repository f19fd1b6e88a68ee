"""The one SPF record to publish in place of several (two ``v=spf1`` records at one name are
a permanent error for receivers, as if there were none).

The merged record holds every mechanism of every record once, in a stable order; a term a
receiver cannot parse is mended when it can be (a misspelt name, a broken prefix) and left
out otherwise, and each such change is said, so that the record offered always parses. It
ends in the strongest ``all`` the records had: ``-all`` when any had it, else ``~all`` —
never ``+all`` or ``?all``, which protect nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from reengage.dnscheck.spfsyntax import mended_term, term_problem

_ALL = re.compile(r"(?i)([+?~-]?)all")
_MODIFIERS_ONCE = ("redirect", "exp")


@dataclass(frozen=True)
class Merged:
    """The record to publish and what was changed on the way to it."""

    record: str
    changes: list[str] = field(default_factory=list)


def merged(records: list[str]) -> Merged:
    """One record doing what ``records`` meant (see the module's docstring)."""
    words: list[str] = []
    changes: list[str] = []
    qualifiers: set[str] = set()
    modifiers: set[str] = set()
    for record in sorted(records):  # DNS gives them in any order: one answer each time
        for word in record.split()[1:]:
            if found := _ALL.fullmatch(word):
                qualifiers.add(found.group(1) or "+")
                continue
            name, eq, value = word.partition("=")
            if eq and name.lower() == "redirect" and term_problem(word) is None:
                # the merged record ends in an all, beside which redirect is never reached
                changes.append(f"{word} became include:{value} (redirect= is ignored beside all)")
                word = f"include:{value}"
            elif problem := term_problem(word):
                fixed = mended_term(word)
                if fixed is None:
                    changes.append(f"{word} left out ({problem}): add the term you meant")
                    continue
                changes.append(f"{word} corrected to {fixed} ({problem})")
                word = fixed
            modifier = word.partition("=")[0].lower() if "=" in word else ""
            if modifier in _MODIFIERS_ONCE:
                if modifier in modifiers:
                    changes.append(f"{word} left out: {modifier}= may be given once")
                    continue
                modifiers.add(modifier)
            if word not in words:
                words.append(word)
    ending = "-all" if "-" in qualifiers else "~all"
    weak = sorted(q + "all" for q in qualifiers & {"+", "?"})
    if weak:
        changes.append(f"{' and '.join(weak)} replaced by {ending}")
    return Merged(" ".join(["v=spf1", *words, ending]), changes)
