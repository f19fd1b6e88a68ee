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

from urllib.parse import quote

from markupsafe import Markup, escape

from reengage.render.flow import scan, why_hidden

# What a layout prints for {{ footer }}: a comment, so css-inline and any HTML tool keep it
# as it is, and no customer's data can make it (their text is escaped).
FOOTER_MARK = Markup("<!--reengage:footer-->")
_MARK = str(FOOTER_MARK)
_ESCAPED_MARK, _WORDS_OF_MARK = str(escape(_MARK)), "reengage:footer"

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


def place(html: str, inside: str, alone: str) -> tuple[str, str | None]:
    """The mail with its footer where the layout put ``{{ footer }}`` if a reader sees that
    place (:mod:`reengage.render.flow`), else at the end of the body; and why it is not
    where the layout put it (None when it is, or the layout has no ``{{ footer }}``).
    Every other ``{{ footer }}`` is removed. Raises ValueError for a mail whose end no
    reader can see (``<plaintext>``: nothing ends it)."""
    seen = scan(html, _MARK)
    chosen = next((start for start, why in seen.marks if why is None), None)
    real = {start for start, _ in seen.marks}
    pieces, last, why = [], 0, None
    at = html.find(_MARK)
    while at >= 0:
        pieces.append(html[last:at])
        if at == chosen:
            pieces.append(inside)
        elif at not in real:
            # Inside a comment, raw text or a tag: not a place. A comment around it ended
            # where the mark did, and still must; nothing else may join across it.
            comment = seen.in_comment(at)
            pieces.append("-->" if comment and comment[1] == at + len(_MARK) else " ")
        last = at + len(_MARK)
        at = html.find(_MARK, last)
    pieces.append(html[last:])
    # Escaped or broken up by a parser (inside <textarea>, an attribute, CDATA): its
    # words alone, which change no tag, comment or quote around them.
    made = "".join(pieces).replace(_ESCAPED_MARK, "").replace(_WORDS_OF_MARK, "")
    if chosen is not None:
        return made, None
    first = html.find(_MARK)
    if first < 0:  # turned to text by a parser (<textarea>, <title>, CDATA) or never printed
        first = html.find(_WORDS_OF_MARK)
    if first >= 0:
        before = scan(html[:first])
        why = why_hidden(before.stack, before.within)
    html = made
    end = scan(html)
    if end.within is not None:  # nothing ends it: a browser shows all that follows as text
        raise ValueError(
            f"<{end.within}> makes everything after it, the footer too, show as raw source: "
            "remove it (use <pre> for preformatted text)"
        )
    index = end.body_end if end.body_end is not None else len(html)
    opened = scan(html[:index]).stack
    if why_hidden(opened) is not None:
        # A template that leaves a hidden element open to the end would hold the footer
        # there too: what is still open is closed first.
        alone = "".join(f"</{t}>" for t, _ in reversed(opened) if t not in ("html", "body")) + alone
    return f"{html[:index]}{alone}{html[index:]}", why


def without_mark(html: str) -> str:
    """The HTML with any ``{{ footer }}`` taken out (mail to our own people has none)."""
    return html.replace(_MARK, "")


def hidden_at(before: str) -> bool:
    """Whether whatever follows ``before`` (the HTML up to a place) is somewhere a reader
    never sees (:mod:`reengage.render.flow`). Errs on the side of hidden."""
    seen = scan(before)
    return why_hidden(seen.stack, seen.within) is not None
