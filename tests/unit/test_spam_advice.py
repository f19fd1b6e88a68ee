"""What ``validate --spam`` tells a marketer beside SpamAssassin's score: what to change for
a rule, and where a tag runs into a word."""

from __future__ import annotations

import pytest

from reengage.spamcheck import advice, tags_inside_words


@pytest.mark.parametrize(
    ("html", "spots"),
    [
        ("<p>两次<strong>点击</strong>即可</p>", ["'两次' | '点击'", "'点击' | '即可'"]),
        ("<p>打开<a href='x'>订单</a>，点击</p>", ["'打开' | '订单'", "'订单' | '，点击'"]),
        # The tester's paragraph as the daemon sends it (a tracked link, its CSS inlined):
        # every inline tag that splits words is quoted, <a> as well as <b>.
        (
            '<p style="margin: 0 0 14px;">请看<b>新的</b>咖啡豆<a href="https://go.acme.example/'
            'c/Atb0-h_Q" style="color: #1d6b43;">这里</a>购买</p>',
            ["'请看' | '新的'", "'新的' | '咖啡豆'", "'咖啡豆' | '这里'", "'这里' | '购买'"],
        ),
        ("<p>咖啡豆<span>这里</span><em>购买</em></p>", ["'咖啡豆' | '这里'", "'这里' | '购买'"]),
        # A space, ASCII punctuation or a block element between: no word is split.
        ("<p>Open <a href='x'>your orders</a>. Then</p>", []),
        ("<p>标题</p><p>正文</p><li>一</li><br>二", []),
        ("<li><strong>不再断货。</strong><br>经常购买</li>", []),
        # What the reader never sees is not text: styles and scripts.
        ("<style>p{color:red}</style><p>x</p>", []),
        # Entities are the characters they stand for, not tags.
        ("<p>Ana&#39;s &amp; Co &lt;b&gt;</p>", []),
    ],
)
def test_tags_inside_words_are_found_as_spamassassin_counts_them(
    html: str, spots: list[str]
) -> None:
    assert tags_inside_words(html) == spots


def test_the_common_rules_get_advice_and_any_other_where_to_read_it() -> None:
    assert "track_opens: true" in advice("HTML_IMAGE_ONLY_28")
    assert "line break" in advice("HTML_OBFUSCATE_05_10")
    assert "sentence case" in advice("SUBJ_ALL_CAPS")
    assert "<title>{{ subject }}</title>" in advice("HTML_TITLE_SUBJ_DIFF")
    assert "grep -rw SOME_NEW_RULE /usr/share/spamassassin/" in advice("SOME_NEW_RULE")
