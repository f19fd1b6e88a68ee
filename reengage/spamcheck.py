"""``reengage validate --spam``: every mail step of every campaign, in every language the
templates are written in, scored by SpamAssassin offline, and what to change.

Each step is made for every kind of customer ``validate`` renders for
(:mod:`reengage.samples`), in English and in each locale any template or subject has a
variant for — a step without a Chinese variant still goes to Chinese customers, in
English with a Chinese footer — through the daemon's own :func:`render_for`, as the bytes
that go over SMTP. One ``spamassassin`` run scores them all (:mod:`reengage.spamassassin`);
each step and locale is reported by its worst mail, naming the kind of customer it is for.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from reengage.campaigns import Campaign
from reengage.compose import Workspace, render_for
from reengage.errors import TemplateFailure
from reengage.locales import normalise_locale
from reengage.message import wire
from reengage.samples import SAMPLE_MOMENT, Sample, samples
from reengage.spamassassin import Score, score

# reengage's promise for the mail it ships, and the default a marketer's is held to: an
# offline score of 1.0 leaves four points before SpamAssassin's own cut of 5.0 for what a
# receiving server adds (network blocklists, what its Bayes filter has learnt, its rules).
DEFAULT_THRESHOLD = 1.0


@dataclass(frozen=True)
class StepScore:
    """The worst score one step got in one locale, and for whom."""

    campaign: str
    step: str
    locale: str
    template: str  # the template file that made it (after the locale's fallback)
    score: Score
    who: str  # the kind of customer: "a one-time buyer with only an email (zh-CN)"
    html: str = ""  # the HTML of that worst mail

    def spots(self) -> list[str]:
        """Where the worst mail runs a tag into a word, when SpamAssassin counted that."""
        if not any(h.rule.startswith("HTML_OBFUSCATE") for h in self.score.counted()):
            return []
        return tags_inside_words(self.html)

    @property
    def where(self) -> str:
        """``habit-lapsed-tips/tip-1 [zh-CN]``."""
        return f"{self.campaign}/{self.step} [{self.locale}]"


def check(
    ws: Workspace,
    campaigns: Mapping[str, Campaign],
    *,
    program: str | None = None,
    more: Sequence[Sample] = (),
) -> list[StepScore]:
    """Every mail step of ``campaigns`` (loaded and valid) scored in every locale, sorted by
    campaign, step order and locale (``more``: customers to make each step for besides
    validate's). Raises :class:`~reengage.spamassassin.SpamAssassinFailed` when
    SpamAssassin is missing or loses a mail.

    A mail any rule counted against is made once more and scored again, keeping the lower
    score: its links carry tokens drawn at random for each mail, and now and then one reads
    to SpamAssassin as a word it counts (``FUZZY_CREDIT``, +1.7, about one mail in a
    thousand; a token that reads as a Bitcoin address is never issued, see
    :func:`reengage.tokens.sign`). Fresh tokens do not; what the template says is scored
    the same both times."""
    locales = _locales(ws, campaigns)
    people = [*samples(SAMPLE_MOMENT, locales), *more]
    made: list[_Made] = []
    order: dict[tuple[str, str], int] = {}
    for campaign_id in sorted(campaigns):
        campaign = campaigns[campaign_id]
        for index, step in enumerate(campaign.steps):
            if step.is_call:
                continue
            order[(campaign_id, step.key)] = index
            for sample in people:
                try:
                    made.append(_Made.of(ws, campaign, step.key, sample))
                except TemplateFailure:
                    continue  # validate reports it; nothing to score
    scores = score([m.mail for m in made], path=program, names=[m.name for m in made])
    again = [i for i, found in enumerate(scores) if found.counted()]
    remade = [_Made.of(ws, made[i].campaign, made[i].step, made[i].sample) for i in again]
    rescored = score([m.mail for m in remade], path=program, names=[m.name for m in remade])
    for i, second, better in zip(again, rescored, remade, strict=True):
        if second.points < scores[i].points:
            scores[i], made[i] = second, better
    worst: dict[tuple[str, str, str], StepScore] = {}
    for one, found in zip(made, scores, strict=True):
        where = (one.campaign.id, one.step, one.locale)
        kept = worst.get(where)
        if kept is None or found.points > kept.score.points:
            worst[where] = StepScore(*where, one.template, found, one.sample.label, one.html)
    return sorted(worst.values(), key=lambda s: (s.campaign, order[(s.campaign, s.step)], s.locale))


@dataclass(frozen=True)
class _Made:
    """One step's mail for one kind of customer, as sent: its bytes, template and HTML."""

    campaign: Campaign
    step: str
    sample: Sample
    mail: bytes
    template: str
    html: str

    @classmethod
    def of(cls, ws: Workspace, campaign: Campaign, step: str, sample: Sample) -> _Made:
        mail, template, html = _make(ws, campaign, step, sample)
        return cls(campaign, step, sample, mail, template, html)

    @property
    def locale(self) -> str:
        return normalise_locale(self.sample.customer.locale) or "en"

    @property
    def name(self) -> str:
        return f"{self.campaign.id}/{self.step} [{self.locale}] for {self.sample.label}"


def _make(
    ws: Workspace, campaign: Campaign, step_key: str, sample: Sample
) -> tuple[bytes, str, str]:
    # One step's mail for one kind of customer, as sent: its bytes, template and HTML.
    message, rendered = render_for(
        ws,
        campaign,
        step_key,
        sample.customer,
        sample.assessment,
        message_key="spamcheck",
        now=SAMPLE_MOMENT,
        rep_name=sample.rep_name,
    )
    return wire(message), rendered.template, rendered.html


def _locales(ws: Workspace, campaigns: Mapping[str, Campaign]) -> list[str]:
    # Every locale a template variant or a subject is written for, in any campaign: each is
    # a footer and a subject of its own for every step.
    found: set[str] = set()
    for campaign in campaigns.values():
        for step in campaign.steps:
            if step.is_call or not step.template:
                continue
            stem, _, rest = Path(step.template).name.partition(".")
            for variant in ws.renderer.variants(step.template):
                middle = Path(variant).name[len(stem) + 1 : -len(rest) - 1]
                found.add(normalise_locale(middle))
            found |= {normalise_locale(k) for k in step.subjects() if k != "default"}
    return sorted(found - {"en", ""})


# -- where a tag runs into a word ------------------------------------------------------------

# SpamAssassin's HTML_OBFUSCATE counts each piece of text that starts with a "word"
# character right after a piece that ended with one, a tag between them: anything but
# whitespace and ASCII punctuation (so every Chinese character and full-width mark).
_WORDISH = re.compile(r"[^\s\x21-\x2f\x3a-\x40\x5b-\x60\x7b-\x7e]")
# Tags after which SpamAssassin's renderer puts a space or line break: they end a word.
_BREAKS = {"br", "div", "li", "th", "td", "dt", "dd", "p", "hr", "blockquote", "pre"}
_BREAKS |= {"embed", "listing", "plaintext", "xmp", "title", "h1", "h2", "h3", "h4", "h5", "h6"}


def tags_inside_words(html: str, limit: int = 5) -> list[str]:
    """Up to ``limit`` places where a tag sits between two words, as the text on each
    side: ``'订单历史' | '，点击“再次购买”即可。'``."""
    finder = _WordJoins()
    finder.feed(html)
    finder.close()
    return finder.found[:limit]


class _WordJoins(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.last = " "
        self.skipping = 0
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.skipping += tag in ("style", "script")
        if tag in _BREAKS:
            self.last = " "

    def handle_endtag(self, tag: str) -> None:
        self.skipping -= tag in ("style", "script") and self.skipping > 0
        if tag in _BREAKS:
            self.last = " "

    def handle_data(self, data: str) -> None:
        if self.skipping or not data:
            return
        if _WORDISH.match(data[0]) and _WORDISH.match(self.last[-1]):
            self.found.append(f"{self.last.strip()[-12:]!r} | {data.strip()[:12]!r}")
        self.last = data


# -- what to change ---------------------------------------------------------------------------

# The rules a marketer's mail most often meets, by the start of their name: what each
# looks for in plain words and what to change in the campaign or template.
ADVICE: tuple[tuple[str, str], ...] = (
    (
        "HTML_IMAGE_ONLY",
        "an <img> beside a short text (it counts the HTML's bytes): take out images that "
        "carry no words (a tracking pixel, a spacer); to count opens, set track_opens: true "
        "and reengage adds what it needs without an <img>",
    ),
    (
        "HTML_IMAGE_RATIO",
        "large images for few words: use fewer or smaller images, or write more",
    ),
    (
        "HTML_SHORT_LINK_IMG",
        "a short mail whose link is an image: give the link words of its own",
    ),
    (
        "HTML_OBFUSCATE",
        "tags inside words: a link or <strong> runs straight into the text beside it (in "
        "Chinese or Japanese, which have no spaces, any inline tag does): put a line break "
        "(<br>) after a bold lead-in and give links a line or paragraph of their own",
    ),
    (
        "HTML_TAG_BALANCE",
        "a tag opened and never closed (or closed twice): close every <p>, <div>, <a>",
    ),
    ("HTML_EXTRA_CLOSE", "a closing tag without its opening one: remove it"),
    (
        "HTML_FONT_LOW_CONTRAST",
        "text in a colour close to its background (hidden text is a spammer's trick): make "
        "it readable or leave it out",
    ),
    ("HTML_FONT_SIZE_TINY", "very small text: 12px or larger"),
    ("HTML_FONT_SIZE_HUGE", "very large text: keep headings under 40px"),
    (
        "HTML_TITLE_SUBJ_DIFF",
        "the HTML's <title> is over 3.5 times as long as the subject (a short subject under "
        "a layout titled with the company name, say): make the subject the title, "
        "<title>{{ subject }}</title> in your layout, as the shipped layout/base.html.j2 does",
    ),
    ("SUBJ_ALL_CAPS", "the subject is in capitals: write it in sentence case"),
    ("UPPERCASE_", "much of the text is in capitals: write it in sentence case"),
    ("SUBJ_EXCLAIM", "exclamation marks in the subject: take them out"),
    ("SUBJ_BUY", "the subject starts with Buy: lead with what the reader gets from the mail"),
    ("FREEMAIL_", "a free-mail address (gmail.com…) in From or Reply-To: use your own domain"),
    (
        "NUMERIC_HTTP_ADDR",
        "links to a bare IP address: set REENGAGE_BASE_URL and REENGAGE_SHOP_URL to names",
    ),
    (
        "WEIRD_PORT",
        "links on an unusual port: serve REENGAGE_BASE_URL through your HTTPS proxy on 443",
    ),
    ("MONEY", "many money figures or money words: name one price plainly"),
    ("LOTS_OF_MONEY", "many money figures or money words: name one price plainly"),
    ("DEAR_", "a generic greeting (Dear friend): greet them by name, or just say hello"),
    ("EMPTY_MESSAGE", "the mail has almost no text: write what it is about"),
    ("MIME_HTML_ONLY", "no text part: reengage always adds one; check your mail is not HTML only"),
    ("T_KAM_HTML_FONT_INVALID", "an invalid font or colour value in the CSS: fix the value"),
)


def advice(rule: str) -> str:
    """What to change for ``rule``, or where to read what it looks for."""
    for prefix, said in ADVICE:
        if rule.startswith(prefix):
            return said
    return (
        f"see what it looks for: grep -rw {rule} /usr/share/spamassassin/ (or "
        "/var/lib/spamassassin/ after sa-update)"
    )
