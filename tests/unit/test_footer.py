"""Where the footer goes: inside the layout's card where it prints ``{{ footer }}``, never
anywhere a reader cannot see it, exactly once, and with the open pixel only when asked."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from resiliparse.parse.html import HTMLTree, Node

from reengage.errors import TemplateFailure
from reengage.render import Rendered, Renderer, Sender
from reengage.render.footer import hidden_at

UNSUBSCRIBE = "https://x.example/u/TOKEN"
PIXEL = "https://x.example/o/TOKEN.gif"
CARD = '<html><body><div class="card">{inner}</div>\n<p>after the card</p></body></html>'


def mail(tmp_path: Path, body: str, *, pixel: str | None = None, locale: str = "en") -> Rendered:
    (tmp_path / "t.html.j2").write_text(body)
    return Renderer(tmp_path, Sender("Acme & Co", "1 Example Street")).render(
        subject="Hi",
        template="t.html.j2",
        text_template=None,
        context={"links": {"pixel": "unused"}},
        locale=locale,
        unsubscribe_url=UNSUBSCRIBE,
        pause_url=UNSUBSCRIBE + "?pause=90",
        open_pixel=pixel,
    )


def inside_card(html: str) -> bool:
    return html.index('class="reengage-footer"') < html.index("</div>\n<p>after the card")


def test_the_footer_goes_where_the_layout_prints_it_inside_the_card(tmp_path: Path) -> None:
    html = mail(tmp_path, CARD.format(inner="<p>Hello</p>{{ footer }}")).html
    assert html.count('class="reengage-footer"') == 1
    assert inside_card(html)
    assert "<!--reengage:footer-->" not in html
    footer = html[html.index('class="reengage-footer"') :]
    # Inside the card it takes the card's typeface; on its own it would name one.
    assert "font-family" not in footer.split(">", 1)[0]
    assert f'href="{UNSUBSCRIBE}"' in footer and "Acme &amp; Co, 1 Example Street" in footer


def test_a_layout_without_the_place_gets_the_footer_at_the_end_of_the_body(
    tmp_path: Path,
) -> None:
    html = mail(tmp_path, CARD.format(inner="<p>Hello</p>")).html
    assert html.count('class="reengage-footer"') == 1
    assert html.index("after the card") < html.index('class="reengage-footer"')
    assert "max-width:600px;margin:0 auto" in html  # a centred box of its own


HIDING = [
    '<div style="display:none">{{ footer }}</div>',
    '<div style="display: none !important">{{ footer }}</div>',
    '<div style="visibility:hidden">{{ footer }}</div>',
    '<div style="max-height:0;overflow:hidden">{{ footer }}</div>',
    '<div style="height:0px">{{ footer }}</div>',
    '<div style="opacity:0.1">{{ footer }}</div>',
    '<div style="mso-hide:all">{{ footer }}</div>',
    '<div style="position:absolute;left:-9999px">{{ footer }}</div>',
    "<div hidden>{{ footer }}</div>",
    '<div aria-hidden="true">{{ footer }}</div>',
    '<a href="https://x.example">{{ footer }}</a>',
    "<noscript>{{ footer }}</noscript>",
    "<template>{{ footer }}</template>",
    # Hidden by a class: the template's CSS is inlined before the footer is placed.
    "<style>.secret { display: none }</style><div class='secret'><p>{{ footer }}</p></div>",
    # An element left open before the place still holds it.
    '<span style="display:none"><p>x</p>{{ footer }}',
    # Not in the body's rendered flow: a comment (whose end would be the mark's own),
    # collapsed or closed, raw source, an attribute, a table outside its cells.
    "<!-- {{ footer }} -->",
    "<![CDATA[ {{ footer }} ]]>",
    "<details>{{ footer }}</details>",
    "<details><summary>{{ footer }}</summary></details>",
    "<dialog>{{ footer }}</dialog>",
    "<xmp>{{ footer }}</xmp>",
    "<noembed>{{ footer }}</noembed>",
    "<textarea>{{ footer }}</textarea>",
    "<script>{{ footer }}</script>",
    "<iframe>{{ footer }}</iframe>",
    "<object>{{ footer }}</object>",
    "<video>{{ footer }}</video>",
    "<canvas>{{ footer }}</canvas>",
    "<select><option>{{ footer }}</option></select>",
    "<svg><foreignObject>{{ footer }}</foreignObject></svg>",
    "<div title='{{ footer }}'>x</div>",
    "<table>{{ footer }}<tr><td>x</td></tr></table>",
    # CSS as a browser reads it: a comment is nothing, an escape is its character.
    '<div style="display:/**/none">{{ footer }}</div>',
    '<div style="display:\\6e one">{{ footer }}</div>',
    '<div style="visibility:hidd\\65n">{{ footer }}</div>',
    '<div style="filter:opacity(0)">{{ footer }}</div>',
    '<div style="content-visibility:hidden">{{ footer }}</div>',
    '<div style="zoom:0.01">{{ footer }}</div>',
    '<div style="zoom:1%">{{ footer }}</div>',
    '<div style="margin-left:-10000px">{{ footer }}</div>',
    '<div style="margin:-5000px 0 0">{{ footer }}</div>',
    '<div style="margin-top:-100%">{{ footer }}</div>',
]
# Elements a reader sees, and what a browser's parser (:func:`shown_footers`) allows.
SHOWN = {"body", "div", "p", "span", "table", "tbody", "tr", "td", "center", "font", "details"}


def shown_footers(html: str) -> list[Node]:
    """The footers a browser shows: elements (an HTML5 parser's, not reengage's reading)
    with nothing around them that hides them."""
    found = []
    for footer in HTMLTree.parse(html).body.get_elements_by_class_name("reengage-footer"):
        node, seen = footer.parent, True
        while node is not None and node.tag != "html":
            style = (node.getattr("style") or "").replace(" ", "").lower()
            if node.tag not in SHOWN or "display:none" in style:
                seen = False
            if node.tag == "details" and node.getattr("open") is None:
                seen = False
            node = node.parent
        if seen:
            found.append(footer)
    return found


@pytest.mark.parametrize("hiding", HIDING)
def test_a_place_a_reader_never_sees_gets_the_footer_at_the_end_instead(
    tmp_path: Path, hiding: str
) -> None:
    made = mail(tmp_path, CARD.format(inner=f"<p>Hello</p>{hiding}"), pixel=PIXEL)
    html = made.html
    assert html.count('class="reengage-footer"') == 1
    assert html.index("after the card") < html.index('class="reengage-footer"')
    assert html.count(PIXEL) == 1
    [footer] = shown_footers(html)
    assert [a.getattr("href") for a in footer.get_elements_by_tag_name("a")][-1] == UNSUBSCRIBE
    # What followed the place is still shown (a comment the footer's mark ended, ends).
    assert "after the card" in HTMLTree.parse(html).body.text
    assert made.footer_moved  # and why, for `reengage validate`


@pytest.mark.parametrize(
    ("hiding", "why"),
    [
        ('<div style="display:none">{{ footer }}</div>', 'inside <div style="display:none">'),
        ("<!-- {{ footer }} -->", "inside an HTML comment"),
        ("<details>{{ footer }}</details>", "inside <details> without `open`"),
        ("<xmp>{{ footer }}</xmp>", "inside <xmp>, whose content is shown as raw text"),
        ("<textarea>{{ footer }}</textarea>", "inside <textarea>"),
    ],
)
def test_a_moved_footer_says_where_the_layout_put_it_and_why_that_is_hidden(
    tmp_path: Path, hiding: str, why: str
) -> None:
    made = mail(tmp_path, CARD.format(inner=f"<p>Hello</p>{hiding}"))
    assert made.footer_moved is not None and made.footer_moved.startswith(why)
    assert "reengage:footer" not in made.html


@pytest.mark.parametrize(
    "shown",
    [
        "<details open>{{ footer }}</details>",
        "<table><tr><td>{{ footer }}</td></tr></table>",
        "<center><font face='Arial'>{{ footer }}</font></center>",
        "<!-- a note --><p>{{ footer }}</p>",
        # A design's nudge is not hiding: a few pixels of negative margin, a zoom near 1.
        '<div style="margin:-8px 0 0;zoom:0.9">{{ footer }}</div>',
        '<div style="filter:none">{{ footer }}</div>',
    ],
)
def test_a_place_in_the_visible_flow_keeps_the_footer_there(tmp_path: Path, shown: str) -> None:
    made = mail(tmp_path, CARD.format(inner=f"<p>Hello</p>{shown}"))
    assert inside_card(made.html) and made.footer_moved is None
    assert len(shown_footers(made.html)) == 1


def test_a_layout_whose_end_no_reader_sees_is_refused_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(TemplateFailure, match=r"<plaintext> makes everything after it.*<pre>"):
        mail(tmp_path, CARD.format(inner="<plaintext>{{ footer }}"))


def test_a_place_in_the_head_is_not_used(tmp_path: Path) -> None:
    body = "<html><head><title>{{ footer }}</title></head><body><p>Hello</p></body></html>"
    html = mail(tmp_path, body).html
    assert html.index("</head>") < html.index('class="reengage-footer"')
    assert html.count('class="reengage-footer"') == 1


def test_a_layout_that_prints_the_place_twice_gets_one_footer(tmp_path: Path) -> None:
    html = mail(tmp_path, CARD.format(inner="{{ footer }}<p>Hello</p>{{ footer }}")).html
    assert html.count('class="reengage-footer"') == 1
    assert "reengage:footer" not in html


def test_the_open_pixel_is_the_footers_background_only_when_asked(tmp_path: Path) -> None:
    body = CARD.format(inner="<p>Hello</p>{{ footer }}")
    counted = mail(tmp_path, body, pixel=PIXEL).html
    footer_tag = counted[counted.index('<div class="reengage-footer"') :].split(">", 1)[0]
    assert f"background-image:url('{PIXEL}')" in footer_tag
    assert "<img" not in counted
    assert "/o/" not in mail(tmp_path, body).html


def test_a_pixel_address_cannot_break_out_of_its_css_or_attribute(tmp_path: Path) -> None:
    odd = "https://x.example/o/a'b\"c)d<e> f.gif"
    html = mail(tmp_path, CARD.format(inner="{{ footer }}"), pixel=odd).html
    footer_tag = html[html.index('<div class="reengage-footer"') :].split(">", 1)[0]
    assert "url('https://x.example/o/a%27b%22c%29d%3Ce%3E%20f.gif')" in footer_tag
    assert footer_tag.count('"') == 4  # class="…" style="…": nothing else opened or closed


def test_the_chinese_footer_keeps_its_links_apart_from_the_words(tmp_path: Path) -> None:
    html = mail(tmp_path, CARD.format(inner="<p>您好</p>{{ footer }}"), locale="zh-CN").html
    footer = html[html.index('class="reengage-footer"') :]
    assert "退订" in footer
    # A link's words never touch other words: spam filters count that as obfuscation.
    for before, after in re.findall(r"(.)<a [^>]*>[^<]*</a>(.)", footer):
        assert before in " >" and after in " <", (before, after)


def test_a_layout_still_printing_the_old_pixel_is_told_what_to_change(tmp_path: Path) -> None:
    from jinja2 import StrictUndefined

    (tmp_path / "t.html.j2").write_text('<p>Hi</p><img src="{{ links.pixel }}">')
    from reengage.compose import _PIXEL_GONE

    with pytest.raises(TemplateFailure) as failed:
        Renderer(tmp_path, Sender("Acme", "1 Example Street")).render(
            subject="Hi",
            template="t.html.j2",
            text_template=None,
            context={"links": {"pixel": StrictUndefined(hint=_PIXEL_GONE)}},
            locale="en",
            unsubscribe_url=UNSUBSCRIBE,
            pause_url=UNSUBSCRIBE,
        )
    assert "track_opens: true" in str(failed.value)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "<div>",
                "</div>",
                "<p>",
                "</p>",
                "<span style='color:red'>",
                "</span>",
                "<div style='display:none'>",
                "<table><tr><td>",
                "</td></tr></table>",
                "<br>",
                "<img src=x>",
                "<!-- <div style='display:none'> -->",
                "<!-- ",
                " -->",
                "<details>",
                "<details open>",
                "</details>",
                "<xmp>",
                "</xmp>",
                "<textarea>",
                "</textarea>",
                "<div title='",
                "'>",
                "<![CDATA[ ",
                " ]]>",
                "text & more",
                "<a href='https://x.example'>",
                "</a>",
                "{{ footer }}",
            ]
        ),
        max_size=12,
    )
)
def test_whatever_surrounds_the_place_every_mail_has_one_footer_with_its_links(
    parts: list[str],
) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        html = mail(Path(folder), "<html><body>x" + "".join(parts) + "</body></html>").html
    assert html.count('class="reengage-footer"') == 1
    assert html.count(f'href="{UNSUBSCRIBE}"') == 1
    assert "reengage:footer" not in html
    at = html.index('<div class="reengage-footer"')
    # Wherever it went, nothing before it leaves it hidden: not even an element left open.
    assert not hidden_at(html[:at])
    # And a browser's parser agrees: one footer, shown, with its link.
    [footer] = shown_footers(html)
    assert UNSUBSCRIBE in [a.getattr("href") for a in footer.get_elements_by_tag_name("a")]


def test_a_hidden_element_left_open_to_the_end_is_closed_before_the_footer(
    tmp_path: Path,
) -> None:
    html = mail(tmp_path, "<html><body><p>Hi</p><div style='display:none'><span>x").html
    at = html.index('<div class="reengage-footer"')
    assert html[:at].endswith("</span></div>")
    assert not hidden_at(html[:at])


def test_hidden_at_sees_no_hiding_in_the_shipped_kind_of_layout() -> None:
    before = (
        '<html><head><style></style></head><body style="margin: 0;">'
        '<div class="wrap" style="max-width: 600px;margin: 0 auto;line-height: 1.55;">'
        '<h1>Hi</h1><p>text <a href="x">link</a> more</p><img src="x" alt="">'
    )
    assert not hidden_at(before)
