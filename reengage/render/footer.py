"""The footer every customer's mail carries, and where it goes.

The footer (why they get the mail, the "pause for 90 days" and unsubscribe links, the
sender's postal address) is made by reengage, never by a template, and put in after the
template's CSS was inlined, so no rule of the template can reach it. The layout says where
it belongs with ``{{ footer }}`` — inside its centred card, so the footer is part of the
mail on a phone as on a desktop — and inherits the card's typeface. A layout without
``{{ footer }}``, or one that puts it inside something a reader never sees (``display:
none``, a zero height, ``<head>``, a link), gets it at the end of the body instead, in a
centred box of its own: a template can move the footer, never hide it.

When a campaign counts opens (``track_opens``) the footer carries the open pixel as its CSS
background image: an ``<img>`` beside a mail of a few kilobytes is what spam filters take
for an image-only mail (SpamAssassin's ``HTML_IMAGE_ONLY_*``), and a background loads (or
is blocked) with the other images all the same.

Its HTML never runs a link into the words beside it: filters count a tag in the middle of
a word as obfuscation (``HTML_OBFUSCATE_*``), and Chinese has no spaces between words.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from markupsafe import Markup, escape

# What a layout prints for {{ footer }}: a comment, so css-inline and any HTML tool keep it
# as it is, and no customer's data can make it (their text is escaped).
FOOTER_MARK = Markup("<!--reengage:footer-->")
_MARK = str(FOOTER_MARK)

# The words per language: the text part's sentence, the HTML's first line, the two links.
_WORDS = {
    "en": (
        "You get this because you are a customer of {name}. "
        "Too many emails? {pause}. Not for you? {unsubscribe}.",
        "You get this because you are a customer of {name}.",
        "Pause for 90 days",
        "Unsubscribe",
    ),
    "zh": (
        "您收到此邮件是因为您是 {name} 的客户。邮件太多？{pause}。不需要？{unsubscribe}。",
        "您收到此邮件是因为您是 {name} 的客户。",
        "暂停 90 天",
        "退订",
    ),
}
# Stand-ins for one mail's links in a footer made once per language: nothing holds a NUL.
UNSUBSCRIBE_AT, PAUSE_AT, PIXEL_AT = "\x00unsubscribe\x00", "\x00pause\x00", "\x00pixel\x00"

# Inside the card: the card's typeface; its own size and colours, and visible whatever an
# ancestor's inherited visibility says.
_INSIDE = "margin:28px 0 0;padding:16px 0 0;border-top:1px solid #e2e2dc;"
# On its own after the body: a centred box as wide as a usual card.
_ALONE = (
    "max-width:600px;margin:0 auto;padding:16px 24px 24px;box-sizing:border-box;"
    "font-family:Helvetica,Arial,sans-serif;"
)
_LOOK = "font-size:13px;line-height:1.5;color:#666666;visibility:visible;text-align:left;"
_P = "margin:0 0 8px;font-size:13px;line-height:1.5;color:#666666;"
_A = "color:#555555;text-decoration:underline;"
_PIXEL_STYLE = f"background-image:url('{PIXEL_AT}');background-repeat:no-repeat;"


def footer_shape(language: str, company: str, postal_address: str) -> tuple[str, str, str]:
    """The footer's text, its HTML inside a card and its HTML on its own, with stand-ins
    for the links (and for the pixel's style, :data:`PIXEL_AT`)."""
    sentence, first_line, pause, unsubscribe = _WORDS.get(language, _WORDS["en"])
    text = sentence.format(
        name=company,
        pause=f"{pause}: {PAUSE_AT}",
        unsubscribe=f"{unsubscribe}: {UNSUBSCRIBE_AT}",
    )
    link = Markup('<a href="{}" style="{}">{}</a>')
    # The links on a line of their own, apart from any word: see the module's docstring.
    body = Markup(
        '<p style="{p}">{first}</p><p style="{p}">{pause} &middot; {unsubscribe}</p>'
        '<p style="{last}">{company}, {address}</p></div>'
    ).format(
        p=_P,
        last=_P.replace("margin:0 0 8px", "margin:0"),
        first=escape(first_line).format(name=company),
        pause=link.format(Markup(PAUSE_AT), _A, pause),
        unsubscribe=link.format(Markup(UNSUBSCRIBE_AT), _A, unsubscribe),
        company=company,
        address=postal_address,
    )
    opening = '<div class="reengage-footer" style="{}{}\x00pixel-style\x00">'
    inside = opening.format(_INSIDE, _LOOK) + str(body)
    alone = opening.format(_ALONE, _LOOK) + str(body)
    return f"{text}\n{company}, {postal_address}", inside, alone


def with_pixel(html: str, pixel_url: str | None) -> str:
    """A footer shape's pixel stand-in filled: the open pixel as background, or nothing."""
    if pixel_url is None:
        return html.replace("\x00pixel-style\x00", "")
    # Within url('…') inside an attribute: nothing that ends either may pass.
    safe = quote(pixel_url, safe=":/?&=#%~._-+@,;!*$[]")
    return html.replace("\x00pixel-style\x00", _PIXEL_STYLE.replace(PIXEL_AT, safe))


def place(html: str, inside: str, alone: str) -> str:
    """The mail with its footer where the layout put ``{{ footer }}`` if a reader sees that
    place, else at the end of the body. Every other ``{{ footer }}`` is removed."""
    at = html.find(_MARK)
    if at >= 0:
        rest = html[at + len(_MARK) :].replace(_MARK, "")
        if not hidden_at(html[:at]):
            return f"{html[:at]}{inside}{rest}"
        html = html[:at] + rest
    index = html.lower().rfind("</body>")
    if index < 0:
        index = len(html)
    opened = open_elements(html[:index])
    if any(_hides(tag, attrs) for tag, attrs in opened):
        # A template that leaves a hidden element open to the end would hold the footer
        # there too: what is still open is closed first.
        alone = "".join(f"</{t}>" for t, _ in reversed(opened) if t not in ("html", "body")) + alone
    return f"{html[:index]}{alone}{html[index:]}"


def without_mark(html: str) -> str:
    """The HTML with any ``{{ footer }}`` taken out (mail to our own people has none)."""
    return html.replace(_MARK, "")


# -- is the place visible? ----------------------------------------------------------------

# Elements whose inside a reader never sees, and elements that have no inside.
_NOT_SHOWN = {"head", "title", "script", "style", "template", "noscript", "textarea"}
_NOT_SHOWN |= {"select", "option", "iframe", "object", "svg", "math", "a", "button"}
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta"}
_VOID |= {"source", "track", "wbr"}
# Tags, found at C speed: an HTML parser in Python would cost more than the rest of
# placing the footer, once for every mail the daemon sends. A tag written inside a comment
# counts as open: that errs on the side of hidden, never of shown.
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)((?:[^>\"']|\"[^\"]*\"|'[^']*')*)>")
_STYLE = re.compile(r"""\bstyle\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.IGNORECASE)
_FLAGGED = re.compile(r"""(?:^|\s)(?:hidden|aria-hidden\s*=\s*["']?true)\b""", re.IGNORECASE)
_ZERO = re.compile(r"^-?0*\.?0*(?:px|em|rem|pt|%)?$")


def hidden_at(before: str) -> bool:
    """Whether whatever follows ``before`` (the HTML up to a place) is inside an element a
    reader never sees. Errs on the side of hidden: the footer then goes to the body's end."""
    return any(_hides(tag, attrs) for tag, attrs in open_elements(before))


def open_elements(before: str) -> list[tuple[str, str]]:
    """The elements (tag, attributes as written) still open at the end of ``before``."""
    stack: list[tuple[str, str]] = []
    for found in _TAG.finditer(before):
        closing, tag, attrs = found.group(1), found.group(2).lower(), found.group(3)
        if not closing:
            if tag not in _VOID and not attrs.rstrip().endswith("/"):
                stack.append((tag, attrs))
            continue
        for index in range(len(stack) - 1, -1, -1):
            if stack[index][0] == tag:
                del stack[index:]
                break
    return stack


def _hides(tag: str, attrs: str) -> bool:
    if tag in _NOT_SHOWN or _FLAGGED.search(attrs):
        return True
    given = _STYLE.search(attrs)
    style = _declarations(next((g for g in given.groups() if g is not None), "") if given else "")
    opacity = style.get("opacity", "1")
    try:
        faint = float(opacity.rstrip("%")) / (100 if opacity.endswith("%") else 1) < 0.5
    except ValueError:
        faint = True
    return (
        faint
        or style.get("display") == "none"
        or style.get("visibility") in ("hidden", "collapse")
        or "mso-hide" in style
        or style.get("position") in ("absolute", "fixed")
        or "clip" in style
        or "clip-path" in style
        or "transform" in style
        or style.get("text-indent", "0").startswith("-")
        or any(_ZERO.match(style.get(p, "auto")) for p in ("height", "max-height", "width"))
        or any(_ZERO.match(style.get(p, "auto")) for p in ("max-width",))
        or (
            style.get("overflow", "visible") == "hidden"
            and ("height" in style or "max-height" in style)
        )
    )


def _declarations(style: str) -> dict[str, str]:
    found = {}
    for part in style.split(";"):
        name, colon, value = part.partition(":")
        if colon:
            found[name.strip().lower()] = value.replace("!important", "").strip().lower()
    return found
