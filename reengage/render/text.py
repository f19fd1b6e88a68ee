"""The text part of a mail, derived from its HTML."""

from __future__ import annotations

import re

from resiliparse.extract.html2text import extract_plain_text

# What a mail hides from its reader (the preheader a client shows beside the subject, say)
# stays out of the text part too.
_HIDDEN = ["[hidden]", '[style*="display:none" i]', '[style*="display: none" i]']


# Runs of spaces, found at C speed (a lookbehind, "(?<=\S) {2,}(?=\S)", would be tried at
# every character of every text part the daemon sends).
_RUNS = re.compile(r" {2,}")


def plain_text(html: str) -> str:
    """The text part of a mail whose template has no text twin: paragraphs, headings, list
    bullets and link targets ("Read the guide (https://…)") kept; head, style and hidden
    elements left out.

    resiliparse (C++) rather than inscriptis: a tenth of a millisecond against half of one,
    and it is run once for every mail the daemon sends (bench/send.py).
    """
    text: str = extract_plain_text(
        html, preserve_formatting=True, links=True, alt_texts=True, skip_elements=_HIDDEN
    )
    # Inside a list item resiliparse keeps the template's line break and indentation around
    # a link ("open     order history     (url)"); a run of spaces between words is one.
    return one_space_within(text).strip()


def one_space_within(text: str) -> str:
    """Each run of two or more spaces with a character that is not whitespace on both sides
    becomes one space; runs at a line's start or end stay as they are."""
    if "  " not in text:
        return text

    def one(run: re.Match[str]) -> str:
        start, end = run.span()
        within = start and end < len(text)
        return (
            " " if within and not text[start - 1].isspace() and not text[end].isspace() else run[0]
        )

    return _RUNS.sub(one, text)
