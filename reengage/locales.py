"""Locale names, spelt one way everywhere: ``zh_CN``, ``zh-cn`` and ``ZH-cn`` are ``zh-CN``.

Customers arrive with locales written by many systems; template files and campaign subjects
are named by marketers. Everything that compares locales normalises them here first, to
BCP-47 casing (language lower, script Title, region upper: ``zh-Hant-TW``), so a ``zh_CN``
customer finds a ``zh-CN`` translation. Pure.
"""

from __future__ import annotations

import re
from functools import lru_cache

MAX_LENGTH = 35  # what a customer's locale column holds
_LANGUAGE = re.compile(r"[a-z]{2,3}")
_SCRIPT = re.compile(r"[a-z]{4}")
_REGION = re.compile(r"[a-z]{2}|[0-9]{3}")
_VARIANT = re.compile(r"[a-z0-9]{5,8}|[0-9][a-z0-9]{3}")
_EXAMPLES = "like en, zh-CN or zh-Hant-TW"


def normalise_locale(text: str) -> str:
    """``text`` as a BCP-47 tag in its usual casing: ``zh_cn`` → ``zh-CN``, ``EN`` → ``en``.

    POSIX spellings are accepted (``zh_CN.UTF-8`` → ``zh-CN``). Raises ValueError saying
    what a locale looks like when ``text`` is not one.
    """
    raw = text.strip()
    # A POSIX locale (zh_CN.UTF-8, sr_RS@latin) carries its charset and modifier after the
    # name; neither says anything about the language a mail is written in.
    name = re.split(r"[.@]", raw, maxsplit=1)[0].replace("_", "-").lower()
    if not name:
        raise ValueError(f"{raw!r} is not a locale {_EXAMPLES}")
    language, *rest = name.split("-")
    if not _LANGUAGE.fullmatch(language):
        raise ValueError(
            f"{raw!r} is not a locale {_EXAMPLES} (it starts with a two- or three-letter "
            "language code)"
        )
    parts = [language]
    if rest and _SCRIPT.fullmatch(rest[0]):
        parts.append(rest.pop(0).title())
    if rest and _REGION.fullmatch(rest[0]):
        parts.append(rest.pop(0).upper())
    while rest and _VARIANT.fullmatch(rest[0]):
        parts.append(rest.pop(0))
    if rest:
        raise ValueError(f"{raw!r} is not a locale {_EXAMPLES} (cannot read {rest[0]!r})")
    tag = "-".join(parts)
    if len(tag) > MAX_LENGTH:
        raise ValueError(f"{raw!r} is longer than a locale can be ({MAX_LENGTH} characters)")
    return tag


def language_of(locale: str) -> str:
    """The language part of a normalised locale: ``zh-Hant-TW`` → ``zh``."""
    return locale.split("-", 1)[0]


def fallbacks(locale: str) -> tuple[str, ...]:
    """What to look for, best first, for a customer in ``locale``: itself, then its language.

    ``zh_CN`` → ``("zh-CN", "zh")``; a locale that cannot be read has nothing to look for
    (the caller uses its default).
    """
    return _fallbacks(locale)


@lru_cache(maxsize=1024)
def _fallbacks(locale: str) -> tuple[str, ...]:
    # Asked for every mail sent; a business has a handful of locales.
    try:
        tag = normalise_locale(locale)
    except ValueError:
        return ()
    language = language_of(tag)
    return (tag,) if language == tag else (tag, language)
