"""Reading one field of a record: each ``read_*`` function takes a row (column name →
text, as a CSV row or a flattened JSON item holds it) and returns the column's value, clean,
or raises ``RowError(column, problem)`` saying what is wrong and how to write it instead.
Texts, addresses, money, yes/no, time zones, locales, lists, contacts and dates live here;
what a whole record needs of them is ``records``."""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Mapping
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from reengage.addresses import AddressError, normalize
from reengage.errors import RowError
from reengage.locales import normalise_locale
from reengage.timeutil import parse_date

_EMAIL = re.compile(r"^[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;]+$")
_SPACE = re.compile(r"\s+")
_YES = {"1", "yes", "y", "true", "t", "on"}
_NO = {"0", "no", "n", "false", "f", "off"}
# The largest amount or margin one activity may carry: a trillion in any currency (a big
# order in dong or rupiah fits). Beyond it a value is a mistake, and summed into a customer's
# value per year it would turn scores into infinity and priorities into NaN.
MAX_MONEY = 1e12


def read_text(row: Mapping[str, str], column: str, *, max_len: int = 200) -> str | None:
    raw = row.get(column)
    if raw is None:
        return None
    if raw.isprintable():  # the common case, checked at C speed: nothing to clean
        value = raw.strip()
    else:
        try:
            raw.encode("utf-8")  # fails only on the surrogate-escaped bytes of invalid UTF-8
        except UnicodeEncodeError:
            raise RowError(column, "is not valid UTF-8 text; save the file as CSV UTF-8") from None
        if "\x00" in raw:  # PostgreSQL cannot store it, and it is never meant
            raise RowError(column, "contains a NUL character (\\x00); remove it")
        value = _SPACE.sub(" ", raw).strip()  # a line break or tab in a name is never wanted
        if found := _CONTROL.search(value):
            raise RowError(column, _control_problem(value, found.start()))
    if len(value) > max_len:
        raise RowError(column, f"is {len(value)} characters long; the limit is {max_len}")
    return value or None


# Control characters left once whitespace (tab, line breaks) became spaces: C0, DEL and C1.
# Never meant in a name or a note, and dangerous on a rep's terminal (ESC starts sequences
# that clear the screen or retitle the window), so a row holding one is refused, not cleaned:
# what else a careless export garbled is for a person to look at.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def _control_problem(value: str, at: int) -> str:
    return (
        f"contains a control character ({value[at]!r}, in "
        f"{value[max(0, at - 10) : at + 20]!r}): remove it (it is never text, and some "
        "clear or retitle the terminal that shows it)"
    )


def read_required(row: Mapping[str, str], column: str, max_len: int = 200) -> str:
    value = read_text(row, column, max_len=max_len)
    if value is None:
        raise RowError(column, "is empty; every row needs one")
    return value


def looks_like_email(text: str) -> bool:
    """Whether ``text`` has the shape of an address (what imports accept as one)."""
    return len(text) <= 320 and "\x00" not in text and bool(_EMAIL.match(text.strip()))


def read_email(row: Mapping[str, str], column: str = "email") -> str:
    value = read_required(row, column, max_len=320)
    if not _EMAIL.match(value):
        raise RowError(column, f"{value!r} is not an email address like ana@example.com")
    try:
        return normalize(value)
    except AddressError as exc:
        raise RowError(column, str(exc)) from exc


def read_money(row: Mapping[str, str], column: str) -> float | None:
    """An amount of money: a finite number within ±``MAX_MONEY``, or None when empty; an
    ``amount`` is never negative (a refund is not a purchase), a ``margin`` may be.

    Only plain ASCII notation is read (``-1234.50``, ``.5``, ``1e3``): ``float`` would also
    take ``1_000``, full-width or Arabic-Indic digits and more, which an export never means.
    A non-zero amount smaller than a cent (``0.001``, ``-1e-320``, ``1e-400`` that underflows
    to 0) is refused, not rounded: ingest stores amounts as given, so rounding only these
    would silently turn a misplaced decimal point or exponent into a free order.
    """
    raw = row.get(column)
    if raw is None or not raw.strip():
        return None
    text = raw.strip(_ASCII_SPACE)
    if not (plain := _PLAIN_NUMBER.fullmatch(text)):
        if text.lower().lstrip("+-") in ("inf", "infinity"):
            raise _out_of_range(column, text)
        shown = read_text(row, column, max_len=40)
        fixed = _plain_spelling(raw)
        if fixed is None:
            raise RowError(column, f"{shown!r} is not a number like 1234.50")
        raise RowError(
            column,
            f"{shown!r} is not a plain number: write {fixed} (ASCII digits 0-9, '.' before "
            "the decimals, no digit grouping)",
        )
    value = float(text)
    if not -MAX_MONEY <= value <= MAX_MONEY:  # also 1e400 that became infinity
        raise _out_of_range(column, text)
    if abs(value) == MAX_MONEY and Decimal(text).copy_abs() > MAX_MONEY:  # exact, unrounded
        raise _out_of_range(column, text)  # 1000000000000.000001: beyond, though it reads as 1e12
    if abs(value) < MIN_MONEY and (value or _NON_ZERO.search(plain["mantissa"])):
        raise RowError(
            column,
            f"{text[:40]!r} is not zero but smaller than a cent (0.01): write 0 if there was "
            f"no {column}, or check the decimal point and the exponent",
        )
    if value < 0 and column == "amount":
        raise RowError(
            column,
            f"{text[:40]!r} is negative: an amount is what the customer paid, and reengage "
            "counts no refunds or returns (one would read as the customer buying again); "
            "leave refunds out of the file (a negative margin, a sale at a loss, is fine)",
        )
    return value or 0.0  # -0 is 0


# Plain decimal notation: ASCII digits only (``[0-9]`` is never a Unicode digit).
_PLAIN_NUMBER = re.compile(
    r"(?P<mantissa>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(?:[eE][+-]?[0-9]+)?"
)
_NON_ZERO = re.compile(r"[1-9]")
_ASCII_SPACE = " \t\r\n\f\v"
MIN_MONEY = 0.01  # the smallest non-zero amount or margin: a cent


def _out_of_range(column: str, text: str) -> RowError:
    return RowError(
        column,
        f"{text[:40]!r} is out of range: {column} must be between "
        f"{'0' if column == 'amount' else f'-{MAX_MONEY:,.0f}'} and {MAX_MONEY:,.0f}; check "
        "that the column holds money, "
        "not an id or a phone number",
    )


def _plain_spelling(raw: str) -> str | None:
    """How to write ``raw`` plainly, if it is a number ``float`` reads but this importer does
    not: ``1_000`` (1000), ``１２`` (12), ``٣٤`` (34), ``12`` with a no-break space (12)."""
    text = unicodedata.normalize("NFKC", raw).strip().replace("_", "")
    text = "".join(str(d) if (d := unicodedata.decimal(c, None)) is not None else c for c in text)
    return text if _PLAIN_NUMBER.fullmatch(text) and text != raw.strip(_ASCII_SPACE) else None


def read_bool(row: Mapping[str, str], column: str, default: bool) -> bool:
    raw = read_text(row, column)
    if raw is None:
        return default
    if raw.lower() in _YES:
        return True
    if raw.lower() in _NO:
        return False
    raise RowError(column, f"{raw!r} is not yes or no")


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def read_timezone(row: Mapping[str, str], column: str = "timezone") -> str | None:
    raw = read_text(row, column, max_len=64)
    if raw is None:
        return None
    try:
        _zone(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise RowError(column, f"{raw!r} is not an IANA time zone like Europe/Berlin") from None
    return raw


def read_list(row: Mapping[str, str], column: str) -> list[str]:
    raw = read_text(row, column, max_len=5000)
    return [part.strip() for part in raw.split(";") if part.strip()] if raw else []


def read_choice(raw: str, allowed: list[str], column: str) -> str:
    if raw in allowed:
        return raw
    value = raw.strip().lower().replace(" ", "_").replace("-", "_")
    if value in allowed:
        return value
    close = difflib.get_close_matches(value, allowed, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise RowError(column, f"{raw!r} is not known; {hint}use one of {', '.join(allowed)}")


def read_contacts(row: Mapping[str, str]) -> list[dict[str, str]]:
    contacts = []
    for entry in read_list(row, "contacts"):
        parts = [p.strip() for p in entry.split("|")]
        if not parts[0] or len(parts) > 4:
            raise RowError(
                "contacts",
                f"{entry!r} is not 'name|role|phone|email' (entries separated by ';')",
            )
        parts += [""] * (4 - len(parts))
        contact = dict(zip(("name", "role", "phone", "email"), parts, strict=True))
        contacts.append({k: v for k, v in contact.items() if v})
    return contacts


def read_important_dates(row: Mapping[str, str]) -> list[dict[str, str]]:
    dates = []
    for entry in read_list(row, "important_dates"):
        label, sep, when = entry.rpartition("=")
        if not sep or not label.strip():
            raise RowError(
                "important_dates",
                f"{entry!r} is not 'label=YYYY-MM-DD' (entries separated by ';')",
            )
        try:
            dates.append({"label": label.strip(), "date": parse_date(when).isoformat()})
        except ValueError as exc:
            raise RowError("important_dates", str(exc)) from None
    if (birthday := read_text(row, "birthday", max_len=10)) is not None:
        try:
            dates.append({"label": "birthday", "date": parse_date(birthday).isoformat()})
        except ValueError as exc:
            raise RowError("birthday", str(exc)) from None
    return dates


def read_locale(row: Mapping[str, str]) -> str:
    try:  # zh_CN, zh-cn and ZH-cn are one locale, stored as zh-CN
        return normalise_locale(read_text(row, "locale", max_len=35) or "en")
    except ValueError as exc:
        raise RowError("locale", str(exc)) from None
