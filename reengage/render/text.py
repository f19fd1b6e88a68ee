"""The text part of a mail, derived from its HTML."""

from __future__ import annotations

import re

from resiliparse.extract.html2text import extract_plain_text

# What a mail hides from its reader (the preheader a client shows beside the subject, say)
# stays out of the text part too.
_HIDDEN = ["[hidden]", '[style*="display:none" i]', '[style*="display: none" i]']


_SPACES_WITHIN = re.compile(r"(?<=\S) {2,}(?=\S)")


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
    return _SPACES_WITHIN.sub(" ", text).strip()
