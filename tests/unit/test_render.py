"""The text part derived from a mail's HTML: what a reader of plain-text mail gets."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from reengage.render import Rendered, Renderer, Sender, plain_text
from reengage.render.text import one_space_within

MAIL = """<!doctype html><html><head><title>Acme Supplies</title>
<style>p { color: red }</style></head><body>
<span style="display:none">preheader nobody should read twice</span>
<h1>Reorder checklist</h1>
<p>Hi &lt;script&gt;alert(1)&lt;/script&gt; &amp; co,</p>
<ul><li>Is a larger pack cheaper?</li><li>Can two orders become one?</li></ul>
<ol><li>First</li><li>Second, then open
    <a href="https://acme.example/c/ORDERS">your orders</a> again</li></ol>
<p>Read <a href="https://acme.example/c/TOKEN?u=1&amp;v=2">the guide</a>.<br>Thanks</p>
<img src="https://acme.example/o/TOKEN.gif" alt="">
</body></html>"""


def test_the_text_part_keeps_structure_and_link_targets() -> None:
    text = plain_text(MAIL)
    lines = text.splitlines()
    assert lines[0] == "Reorder checklist"
    assert lines[1] == ""  # a blank line after a heading, as between paragraphs
    # A link keeps its target, unescaped, beside its words: the reader can still follow it.
    assert "Read the guide (https://acme.example/c/TOKEN?u=1&v=2)." in lines
    assert "Thanks" in lines  # <br> is a line break
    assert [line.strip() for line in lines if line.strip().startswith(("•", "1.", "2."))] == [
        "• Is a larger pack cheaper?",
        "• Can two orders become one?",
        "1. First",
        # The template's line break and indentation around a link are one space.
        "2. Second, then open your orders (https://acme.example/c/ORDERS) again",
    ]


def test_the_text_part_leaves_out_what_a_reader_never_sees() -> None:
    text = plain_text(MAIL)
    assert "Acme Supplies" not in text  # <title>
    assert "color" not in text  # <style>
    assert "preheader" not in text  # hidden inline
    assert "TOKEN.gif" not in text  # the tracking pixel has no words


def test_a_customers_markup_is_shown_as_the_words_it_is() -> None:
    # Autoescaped in the HTML, so in the text it is plain characters, never a tag.
    assert "Hi <script>alert(1)</script> & co," in plain_text(MAIL)


def test_a_locale_variant_added_while_running_is_used_from_then_on(tmp_path: Path) -> None:
    import os

    (tmp_path / "tips").mkdir()
    (tmp_path / "tips" / "t.html.j2").write_text("<p>Hello</p>")
    renderer = Renderer(tmp_path, Sender("Acme", "1 Example Street"))
    assert renderer.resolve("tips/t.html.j2", "de-DE") == "tips/t.html.j2"
    (tmp_path / "tips" / "t.de.html.j2").write_text("<p>Hallo</p>")
    # A folder's time can tick coarsely: make sure it moved, as any later edit would.
    stamp = os.stat(tmp_path / "tips").st_mtime_ns
    os.utime(tmp_path / "tips", ns=(stamp + 10**9, stamp + 10**9))
    assert renderer.resolve("tips/t.html.j2", "de-DE") == "tips/t.de.html.j2"


def mail(tmp_path: Path, body: str, locale: str = "en") -> Rendered:
    """One template rendered as a mail, with the footer every mail gets."""
    (tmp_path / "t.html.j2").write_text(body)
    return Renderer(tmp_path, Sender("Acme", "1 Example Street")).render(
        subject="Hi",
        template="t.html.j2",
        text_template=None,
        context={},
        locale=locale,
        unsubscribe_url="https://x.example/u",
        pause_url="https://x.example/p",
    )


def test_a_locale_stored_as_zh_cn_gets_the_chinese_footer(tmp_path: Path) -> None:
    rendered = mail(tmp_path, "<p>您好</p>", locale="zh_CN")
    assert "退订" in rendered.text
    assert "Unsubscribe" not in rendered.text


def test_no_template_css_can_hide_the_footer(tmp_path: Path) -> None:
    rendered = mail(
        tmp_path,
        "<html><head><style>.reengage-footer, div, p, a { display: none !important; }"
        "</style></head><body><p>Hello</p></body></html>",
    )
    footer = rendered.html[rendered.html.index('<div class="reengage-footer"') :]
    assert "display: none" not in footer and "display:none" not in footer
    assert 'href="https://x.example/u"' in footer


def test_pinned_rendering_takes_the_files_as_refresh_last_saw_them(tmp_path: Path) -> None:
    # The daemon renders pinned: a file's changes are looked for once per batch (refresh()),
    # not for every mail. Preview and validation look every time.
    import os

    def touched(path: Path, text: str) -> None:
        path.write_text(text)
        stamp = os.stat(path).st_mtime_ns + 10**9  # as any later edit would move it
        os.utime(path, ns=(stamp, stamp))
        os.utime(path.parent, ns=(stamp, stamp))

    (tmp_path / "layout").mkdir()
    (tmp_path / "layout" / "base.html.j2").write_text("<p>{% block b %}{% endblock %} v1</p>")
    (tmp_path / "t.html.j2").write_text(
        '{% extends "layout/base.html.j2" %}{% block b %}Hi{% endblock %}'
    )
    renderer = Renderer(tmp_path, Sender("Acme", "1 Example Street"))

    def text(locale: str = "de", *, pinned: bool) -> str:
        return renderer.render(
            subject="Hi",
            template="t.html.j2",
            text_template=None,
            context={},
            locale=locale,
            unsubscribe_url="https://x.example/u",
            pause_url="https://x.example/p",
            pinned=pinned,
        ).text.splitlines()[0]

    assert text(pinned=True) == text(pinned=False) == "Hi v1"
    touched(tmp_path / "layout" / "base.html.j2", "<p>{% block b %}{% endblock %} v2</p>")
    touched(
        tmp_path / "t.de.html.j2",
        '{% extends "layout/base.html.j2" %}{% block b %}Hallo{% endblock %}',
    )
    assert text(pinned=False) == "Hallo v2"  # looked at now
    assert text(pinned=True) == "Hi v1"  # as the batch began: the layout and the variant
    renderer.refresh()
    assert text(pinned=True) == "Hallo v2"


# What one_space_within() must do, as one regular expression says it.
_SPACES_WITHIN = re.compile(r"(?<=\S) {2,}(?=\S)")


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=" \t\n\r\xa0\u3000ab.é", max_size=60))
def test_runs_of_spaces_between_words_become_one_as_the_expression_says(text: str) -> None:
    assert one_space_within(text) == _SPACES_WITHIN.sub(" ", text)
