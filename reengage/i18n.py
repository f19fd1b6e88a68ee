"""The reps' and marketers' language: translated words, dates and money for a locale.

reengage speaks to customers through the marketers' own templates (one file per locale,
see :mod:`reengage.compose`); what it writes itself — the reps' digest, the call form and
its confirmation, the dashboard — comes from message catalogues here. English is written
in the code and templates as the message ids; every other shipped language is a gettext
catalogue, ``reengage/locale/<locale>/LC_MESSAGES/messages.po``, read as it is (no compile
step). Adding a language is adding that catalogue (``pybabel init``; ``reengage/locale/babel.cfg``
says where the messages are) and, for the digest, a template for the locale.

A template or a module asks :func:`texts` for a locale's :class:`Texts` and calls
``_("...")`` / ``ngettext(...)`` with it; dates and money go through :meth:`Texts.date`
and :meth:`Texts.money` (Babel's CLDR data: ``2026年12月1日``, ``€1,234``, ``1.234 €``).
A locale without a catalogue falls back to the closest shipped one by language (``zh-TW``
gets ``zh-CN``'s words only when no better exists; ``fr`` gets English words) but keeps its
own formats for dates and money.
"""

from __future__ import annotations

import gettext
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from io import BytesIO

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal

from reengage.locales import normalise_locale

DEFAULT = "en"


@lru_cache(maxsize=1)
def shipped() -> tuple[str, ...]:
    """The locales reengage's own words come in: English and each catalogue under
    ``reengage/locale`` (as BCP-47 tags: ``zh-CN``)."""
    found = {DEFAULT}
    root = resources.files("reengage") / "locale"
    if root.is_dir():
        for entry in root.iterdir():
            if (entry / "LC_MESSAGES" / "messages.po").is_file():
                found.add(normalise_locale(entry.name))
    return tuple(sorted(found))


def closest(locale: str | None) -> str:
    """The shipped locale whose words suit ``locale`` best: itself, else the first shipped
    one of its language, else English. Accepts any spelling (``zh_CN``); never raises."""
    try:
        wanted = normalise_locale(locale or DEFAULT)
    except ValueError:
        return DEFAULT
    available = shipped()
    if wanted in available:
        return wanted
    language = wanted.split("-")[0]
    return next((s for s in available if s.split("-")[0] == language), DEFAULT)


@lru_cache(maxsize=32)
def _catalogue(locale: str) -> gettext.NullTranslations:
    if locale == DEFAULT:
        return gettext.NullTranslations()
    path = resources.files("reengage") / "locale" / locale.replace("-", "_") / "LC_MESSAGES"
    with (path / "messages.po").open("rb") as po:
        catalogue = read_po(po, locale=locale.replace("-", "_"))
    compiled = BytesIO()
    write_mo(compiled, catalogue)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def _babel_locale(locale: str) -> Locale:
    try:
        return Locale.parse(locale.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return Locale.parse(DEFAULT)


@dataclass(frozen=True)
class Texts:
    """One locale's words and formats. ``locale`` is the one asked for (formats follow
    it); ``words`` the shipped catalogue its words come from."""

    locale: str
    words: str

    def gettext(self, message: str) -> str:
        return _catalogue(self.words).gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return _catalogue(self.words).ngettext(singular, plural, n)

    def date(self, day: date | datetime, form: str = "medium") -> str:
        """A day as the locale writes it: ``Dec 1, 2026``, ``2026年12月1日``."""
        if isinstance(day, datetime):
            day = day.date()
        return format_date(day, format=form, locale=_babel_locale(self.locale))

    def moment(self, when: datetime, form: str = "short") -> str:
        """A date and time (already in the reader's zone) as the locale writes it."""
        return format_datetime(when, format=form, locale=_babel_locale(self.locale))

    def money(self, amount: float | Decimal, currency: str, *, cents: bool = False) -> str:
        """An amount in ``currency`` as the locale writes it, in whole units unless
        ``cents``: ``€2,607``, ``2.607 €``; ``€542.82`` with cents."""
        where = _babel_locale(self.locale)
        value = Decimal(str(amount))
        if cents:
            return format_currency(value, currency, locale=where)
        pattern = where.currency_formats["standard"].pattern.split(";")[0]
        whole = pattern.replace(".00", "")
        return format_currency(
            value.quantize(Decimal(1)), currency, format=whole, locale=where, currency_digits=False
        )

    def number(self, value: float | int) -> str:
        return format_decimal(value, locale=_babel_locale(self.locale))

    def in_template(self) -> dict[str, object]:
        """What a Jinja2 template needs in its context: ``_``, ``ngettext`` and ``texts``."""
        return {"_": self.gettext, "ngettext": self.ngettext, "texts": self}


def texts(locale: str | None) -> Texts:
    """The words and formats for ``locale`` (any spelling; unknown ones get English)."""
    try:
        asked = normalise_locale(locale or DEFAULT)
    except ValueError:
        asked = DEFAULT
    return Texts(asked, closest(asked))


def days(count: float, t: Texts | None = None) -> str:
    """``1 day``, ``41 days`` (rounded to whole days) in ``t``'s words; English without
    one, as the operator's commands speak."""
    whole = round(count)
    return (t or texts(DEFAULT)).ngettext("{n} day", "{n} days", whole).format(n=whole)


def hours(count: float, t: Texts | None = None) -> str:
    """``1 hour``, ``24 hours`` (rounded to whole hours), like :func:`days`."""
    whole = round(count)
    return (t or texts(DEFAULT)).ngettext("{n} hour", "{n} hours", whole).format(n=whole)


def negotiate(accept_language: str | None) -> str:
    """The shipped locale a browser's ``Accept-Language`` header prefers (else English)."""
    if not accept_language:
        return DEFAULT
    wanted: list[tuple[float, str]] = []
    for part in accept_language.split(",")[:20]:
        name, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        if name and name != "*":
            wanted.append((quality, name))
    for _, name in sorted(wanted, key=lambda w: -w[0]):
        try:
            tag = normalise_locale(name)
        except ValueError:
            continue
        best = closest(tag)
        if best != DEFAULT or tag.split("-")[0] == "en":
            return best
    return DEFAULT
