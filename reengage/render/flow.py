"""Whether a place in a mail's HTML is in the flow a reader sees, and if not, why.

A place counts only when it sits in the body's rendered flow: not inside a comment, not in
the raw text of an element whose content is shown as source or not at all (``<xmp>``,
``<script>``, ``<iframe>``…), not inside a tag, and with every element around it one that
lays out what it holds for the reader — a known flow container (``<div>``, ``<td>``,
``<p>``…) that no attribute or style hides. Anything else (an element reengage does not
know, a ``<details>`` or ``<dialog>`` without ``open``, a ``<table>`` outside its cells)
counts as hidden: an allow-list, so a new way to hide a place errs on the side of hidden.
Styles are read as a browser reads them (CSS comments dropped, escapes decoded); any
``filter``, a ``zoom`` under one half and a margin that pulls a block far off the page
hide a place too.

What this cannot see: an element that is not around the place but covers it (a block
positioned on top of the footer). Only ancestors are judged; most mail clients drop
``position`` anyway.

Read at C speed with regular expressions over the HTML css-inline wrote: that is a
serialised tree (every element closed, text escaped, comments whole), so a tokenizer
this small reads it as a browser would. An HTML parser in Python would cost more than the
rest of making the mail, once for every mail the daemon sends.
"""

from __future__ import annotations

import re
import sys
from bisect import bisect_right
from dataclasses import dataclass, field
from functools import lru_cache

# Elements that lay out what they hold, as a reader sees it; every other one hides a place.
_FLOW = {
    "html",
    "body",
    "div",
    "p",
    "span",
    "center",
    "font",
    "section",
    "article",
    "main",
    "header",
    "footer",
    "aside",
    "nav",
    "address",
    "blockquote",
    "figure",
    "figcaption",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hgroup",
    "search",
    "ul",
    "ol",
    "li",
    "dl",
    "dt",
    "dd",
    "menu",
    "dir",
    "pre",
    "listing",
    "b",
    "i",
    "u",
    "s",
    "strike",
    "em",
    "strong",
    "small",
    "big",
    "sub",
    "sup",
    "tt",
    "mark",
    "abbr",
    "cite",
    "code",
    "kbd",
    "q",
    "samp",
    "var",
    "bdi",
    "bdo",
    "time",
    "data",
    "ins",
    "del",
    "dfn",
    "nobr",
    "ruby",
    "rb",
    "rt",
    "rtc",
    "form",
    "fieldset",
    "legend",
    "label",
    "output",
    "map",
    "table",
    "tbody",
    "thead",
    "tfoot",
    "tr",
    "td",
    "th",
    "caption",
    "details",
    "summary",
    "dialog",
}
# Shown only when open (``<details open>``): collapsed or closed, nothing inside is seen.
_WHEN_OPEN = {"details", "dialog"}
# Parts of a table whose direct content is no cell's: a browser moves it out of the table.
_TABLE_PARTS = {"table", "tbody", "thead", "tfoot", "tr"}
# Whose content is raw text, up to its end tag: source shown as text, or not shown at all.
_RAW = {"script", "style", "xmp", "iframe", "noembed", "noframes", "noscript", "plaintext"}
_RAW |= {"textarea", "title"}
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta"}
_VOID |= {"source", "track", "wbr", "param", "keygen", "frame", "basefont", "bgsound"}
_WHY = {
    "a": "inside a link (<a>): the footer's own links cannot sit inside another",
    "head": "in the <head>, which is not shown",
    "details": "inside <details> without `open`: collapsed until the reader opens it",
    "dialog": "inside <dialog> without `open`: not shown",
}

_TOKEN = re.compile(
    r"<!--(?:.*?-->|.*\Z)"  # a comment, to its end or to the end of the text
    r"|<[!?][^>]*>?"  # a doctype, or what a parser takes for a comment
    # a tag: its attributes as the HTML tokenizer reads them (a quote may be in a name)
    r"""|<(/?)([A-Za-z][^\s/>]*)((?:\s+|/|[^\s/>][^\s/>=]*"""
    r"""(?:\s*=\s*(?:"[^"]*(?:"|\Z)|'[^']*(?:'|\Z)|[^\s>]*))?)*)(>?)""",
    re.DOTALL,
)
_ATTRIBUTE = re.compile(r"""([^\s"'=/>]+)(?:\s*=\s*(?:"[^"]*"?|'[^']*'?|[^\s>]*))?""")
_STYLE = re.compile(r"""\bstyle\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.IGNORECASE)
_FLAGGED = re.compile(r"""(?:^|\s)(?:hidden|aria-hidden\s*=\s*["']?true)\b""", re.IGNORECASE)
_ZERO = re.compile(r"^-?0*\.?0*(?:px|em|rem|pt|%)?$")


@dataclass
class Scan:
    """What a tokenizer saw in some HTML, up to its end."""

    stack: list[tuple[str, str]] = field(default_factory=list)  # open (tag, attributes)
    within: str | None = None  # at the end: "comment", "tag" or a raw-text element's name
    comments: list[tuple[int, int]] = field(default_factory=list)  # (start, end) of each
    body_end: int | None = None  # where the last </body> starts
    # Each comment that is exactly ``mark``: (start, why its place is hidden or None).
    marks: list[tuple[int, str | None]] = field(default_factory=list)

    def in_comment(self, at: int) -> tuple[int, int] | None:
        """The comment that holds position ``at``, if any."""
        index = bisect_right(self.comments, (at, sys.maxsize)) - 1
        if index >= 0 and self.comments[index][0] <= at < self.comments[index][1]:
            return self.comments[index]
        return None


def scan(html: str, mark: str = "") -> Scan:
    """Read ``html`` as a browser would, noting each comment that is exactly ``mark``."""
    seen = Scan()
    stack = seen.stack
    at = 0
    while (found := _TOKEN.search(html, at)) is not None:
        at = found.end()
        token = found.group(0)
        closing, tag, attrs, ended = found.groups()
        if token.startswith("<!--"):
            seen.comments.append((found.start(), at))
            if not token.endswith("-->") or len(token) < 7:  # the text ends inside it
                seen.within = "comment"
                break
            if mark and token == mark:
                seen.marks.append((found.start(), why_hidden(stack)))
            continue
        if tag is None:  # a doctype or a bogus comment
            if not token.endswith(">"):
                seen.within = "tag"
                break
            continue
        tag = tag.lower()
        if not ended:  # the text ends inside the tag
            seen.within = "tag"
            break
        if closing:
            if tag == "body":
                seen.body_end = found.start()
            for index in range(len(stack) - 1, -1, -1):
                if stack[index][0] == tag:
                    del stack[index:]
                    break
            continue
        if tag in _VOID or attrs.rstrip().endswith("/"):
            continue
        stack.append((tag, attrs))
        if tag in _RAW:
            end = re.compile(rf"</{tag}[\s/>]", re.IGNORECASE).search(html, at)
            if end is None or tag == "plaintext":
                seen.within = tag
                break
            at = end.start()
    return seen


def why_hidden(stack: list[tuple[str, str]], within: str | None = None) -> str | None:
    """Why a place with ``stack`` open around it (and ``within`` a comment, tag or raw
    text) is not in the body's rendered flow; None when a reader sees it."""
    if within == "comment":
        return "inside an HTML comment"
    if within == "tag":
        return "inside a tag (an attribute's value)"
    if within is not None:
        return f"inside <{within}>, whose content is shown as raw text or not at all"
    if not any(tag == "body" for tag, _ in stack):
        return "outside the <body>"
    if stack[-1][0] in _TABLE_PARTS:
        return f"directly inside <{stack[-1][0]}>, outside any cell: it is moved out of it"
    for tag, attrs in stack:
        if tag not in _FLOW or (tag in _WHEN_OPEN and "open" not in _names(attrs)):
            return _WHY.get(tag, f"inside <{tag}>, which is not shown as part of the mail")
        if _hides(attrs):
            shown = " ".join(attrs.split())
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            return f"inside <{tag} {shown}>, which hides it"
    return None


def _names(attrs: str) -> set[str]:
    return {found.group(1).lower() for found in _ATTRIBUTE.finditer(attrs)}


@lru_cache(maxsize=1024)  # a layout's elements, the same in every mail it makes
def _hides(attrs: str) -> bool:
    if _FLAGGED.search(attrs):
        return True
    given = _STYLE.search(attrs)
    style = _declarations(next((g for g in given.groups() if g is not None), "") if given else "")
    return (
        _fraction(style.get("opacity", "1")) < 0.5
        or style.get("display") == "none"
        or style.get("visibility") in ("hidden", "collapse")
        or "mso-hide" in style
        or style.get("position") in ("absolute", "fixed")
        or "clip" in style
        or "clip-path" in style
        or "transform" in style
        or style.get("text-indent", "0").startswith("-")
        or style.get("content-visibility") == "hidden"
        or style.get("filter", "none") != "none"  # opacity(0), brightness(0), blur(…)
        or _fraction(style.get("zoom", "1")) < 0.5
        or any(_far_back(style.get(p, "0")) for p in _MARGINS)
        or any(_ZERO.match(style.get(p, "auto")) for p in ("height", "max-height", "width"))
        or any(_ZERO.match(style.get(p, "auto")) for p in ("max-width",))
        or (
            style.get("overflow", "visible") == "hidden"
            and ("height" in style or "max-height" in style)
        )
    )


_MARGINS = {"margin", "margin-left", "margin-top", "margin-right", "margin-bottom"}
_MARGINS |= {"margin-inline-start", "margin-inline-end", "margin-block-start"}
# A negative length that moves a block off the page, not a design's nudge of a few pixels.
_LENGTH = re.compile(r"-(\d*\.?\d+)([a-z%]*)")
_FAR = {"px": 40.0, "pt": 30.0, "em": 3.0, "rem": 3.0, "ex": 6.0, "ch": 6.0}
_CSS_COMMENT = re.compile(r"/\*.*?(?:\*/|\Z)", re.DOTALL)
_CSS_ESCAPE = re.compile(r"\\(?:([0-9a-fA-F]{1,6})[ \t\n\r\f]?|(.))", re.DOTALL)


def _fraction(value: str) -> float:
    # A number or a percentage as a fraction; anything unreadable errs on the side of hidden.
    try:
        return float(value.rstrip("%")) / (100 if value.endswith("%") else 1)
    except ValueError:
        return 0.0


def _far_back(value: str) -> bool:
    # Any part of a margin that pulls the block far up or aside (off the page).
    # %, vw, cm…: any negative is far.
    return any(float(number) >= _FAR.get(unit, 0.0) for number, unit in _LENGTH.findall(value))


def _unescaped(style: str) -> str:
    # As a browser reads it: CSS comments are nothing (`display:/**/none`), and an escape is
    # the character it names (`display:\6e one` is `display:none`).
    def one(found: re.Match[str]) -> str:
        code, char = found.groups()
        if code is None:
            return char
        number = int(code, 16)
        return chr(number) if 0 < number <= sys.maxunicode else "\ufffd"

    style = _CSS_COMMENT.sub("", style) if "/*" in style else style
    return _CSS_ESCAPE.sub(one, style) if "\\" in style else style


def _declarations(style: str) -> dict[str, str]:
    found = {}
    for part in _unescaped(style).split(";"):
        name, colon, value = part.partition(":")
        if colon:
            found[name.strip().lower()] = value.replace("!important", "").strip().lower()
    return found
