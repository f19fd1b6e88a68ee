"""Email templates: Jinja2, sandboxed, strict, with a footer no template can leave out.

Templates are written by marketers, not the operator, so they run in Jinja2's
``SandboxedEnvironment`` with ``StrictUndefined`` (a misspelt variable is an error, caught
by ``reengage validate``, not a blank in a customer's inbox) and HTML autoescaping (a
customer called ``<script>`` is shown, never run). Every mail gets an HTML part with its
CSS inlined (css-inline) and a text part (its own ``.txt.j2`` template, or derived from the
HTML). The footer — the sender's postal address and the unsubscribe and pause links — is
added here, after the template ran. Locale variants (``tip-1.zh-CN.html.j2`` beside
``tip-1.html.j2``) are chosen by the customer's locale, falling back to the plain one.
"""

from __future__ import annotations

import glob
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import css_inline
from jinja2 import (
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateNotFound,
    TemplateSyntaxError,
    Undefined,
    UndefinedError,
)
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup, escape
from resiliparse.extract.html2text import extract_plain_text

from reengage.errors import TemplateFailure
from reengage.locales import fallbacks, normalise_locale

# Stand-ins for a mail's own links in a footer built once per language: no company name,
# address or translation holds a NUL.
_UNSUBSCRIBE_AT, _PAUSE_AT = "\x00unsubscribe\x00", "\x00pause\x00"
_FOOTER = {
    "en": (
        "You get this because you are a customer of {name}. "
        "Too many emails? {pause}. Not for you? {unsubscribe}.",
        "Pause for 90 days",
        "Unsubscribe",
    ),
    "zh": (
        "您收到此邮件是因为您是 {name} 的客户。邮件太多？{pause}。不需要？{unsubscribe}。",
        "暂停 90 天",
        "退订",
    ),
}
_LINE_BREAKS = re.compile(r"[\r\n\t\x0b\x0c\x85\u2028\u2029]+")


class Missing(StrictUndefined):
    """A value this customer does not have (no company, a one-time buyer's rhythm).

    Falsy, so ``{% if customer.company %}`` and ``{{ customer.company or 'your team' }}``
    work, and ``| default(...)`` replaces it; printing it, doing sums with it or reading
    from it is an error that names the field — never "None" or a blank in a customer's mail.
    """

    __slots__ = ()

    # StrictUndefined makes each of these raise; a missing value is empty and falsy instead.
    def __bool__(self) -> bool:  # type: ignore[override]
        return False

    def __iter__(self) -> Any:
        return iter(())

    def __len__(self) -> int:  # type: ignore[override]
        return 0

    def __contains__(self, item: object) -> bool:  # type: ignore[override]
        return False

    def __eq__(self, other: object) -> bool:  # type: ignore[override]
        return other is None or isinstance(other, Missing)

    def __ne__(self, other: object) -> bool:  # type: ignore[override]
        return not self.__eq__(other)

    def __hash__(self) -> int:  # type: ignore[override]
        return 0

    __round__ = __trunc__ = __floor__ = __ceil__ = StrictUndefined._fail_with_undefined_error


@lru_cache(maxsize=256)
def missing(name: str) -> Missing:
    """The stand-in for an empty ``name`` (``customer.company``) in a template context.

    One per name, shared: it holds nothing about the customer, and every mail asks.
    """
    return Missing(
        hint=(
            f"{name} is empty for some customers (this one has none): put it inside "
            f"{{% if {name} is defined %}}…{{% endif %}}, or write "
            f"{{{{ {name} | default('…') }}}}"
        ),
        name=name,
    )


def _no_none(value: Any) -> Any:
    # Every {{ … }} passes here: what reaches a mail is text, a number or a date — never
    # "None", a Python list, a function or a control character, whatever produced it.
    if value is None:
        raise UndefinedError(
            "a value printed here is empty (None): guard it with {% if … %} or give a "
            "fallback with `or '…'`"
        )
    if isinstance(value, str):
        return _CONTROL.sub("", value) if _CONTROL.search(value) else value
    if isinstance(value, Undefined | bool | int | date | Yearly):  # Undefined: as its kind says
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"a number printed here is {value}: check the sum before it")
        return value
    if isinstance(value, Decimal):
        return value
    kind = type(value).__name__
    raise ValueError(
        f"prints a Python {kind}, not text: print its parts one by one "
        "(a {% for %} over a list, .label and .date of a date)"
    )


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # never wanted in a mail


MAX_MAIL_CHARS = 1_000_000  # what one template may make for one customer


class _TooLarge(Exception):
    """A template made more than :data:`MAX_MAIL_CHARS` (raised while it runs)."""


def _within_budget(chunks: Iterator[str]) -> str:
    # Rendered piece by piece so a template that would make gigabytes stops at the limit,
    # before it has taken the memory.
    made: list[str] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_MAIL_CHARS:
            raise _TooLarge
        made.append(chunk)
    return "".join(made)


def _is_none(value: Any) -> bool:
    return value is None or isinstance(value, Missing)


class Refused(SecurityError):
    """Something a template asked for that a mail must not do (a link to javascript:)."""


class _Sandbox(SandboxedEnvironment):
    """Jinja2's sandbox, where a text or list multiplied past a mail's size stops at once
    (``{{ 'word ' * 10**9 }}`` would take gigabytes before anything else could)."""

    intercepted_binops = frozenset(["*"])

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                sized = isinstance(seq, str | list | tuple) and isinstance(times, int)
                if sized and len(seq) * max(times, 0) > MAX_MAIL_CHARS:
                    raise _TooLarge
        return super().call_binop(context, operator, left, right)


@dataclass(frozen=True)
class Sender:
    """Who the mail is from, for the footer every mail must carry."""

    company: str
    postal_address: str


@dataclass(frozen=True)
class Rendered:
    """A mail ready to be put in an envelope."""

    subject: str
    html: str
    text: str
    template: str  # the template file actually used (after locale fallback)


@dataclass(frozen=True)
class TemplateProblem:
    """Something wrong in a template, located for the marketer."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class Renderer:
    """Renders subjects and bodies from ``templates_dir``."""

    def __init__(self, templates_dir: Path, sender: Sender) -> None:
        self.templates_dir = templates_dir
        self.sender = sender
        loader = FileSystemLoader(str(templates_dir))
        self._html = _Sandbox(
            loader=loader, autoescape=True, undefined=StrictUndefined, finalize=_no_none
        )
        self._text = _Sandbox(
            loader=loader, autoescape=False, undefined=StrictUndefined, finalize=_no_none
        )
        for env in (self._html, self._text):
            env.filters["date"] = _format_date
            # A mail that changes on every rendering could never equal its preview.
            del env.filters["random"]
            env.globals.pop("lipsum", None)
            env.tests["none"] = _is_none  # `x is none` holds for a missing value too
        self._subjects: dict[str, Template] = {}
        self._footers: dict[str, tuple[str, str]] = {}
        self._variants: dict[str, tuple[str, int, dict[str, str]]] = {}

    def resolve(self, name: str, locale: str) -> str:
        """The template for ``locale``: its own variant (``x.zh-CN.html.j2``), then its
        language's (``x.zh.html.j2``), then ``x``. A variant is found however its file spells
        the locale (``x.zh_CN.html.j2``, ``x.zh-cn.html.j2``), and so is the customer's."""
        wanted = fallbacks(locale)
        base = Path(name).name
        if not wanted or "." not in base:  # a name without a suffix has x.zh-CN variants
            spelt = (f"{name}.{candidate}" for candidate in wanted)
            return next((v for v in spelt if (self.templates_dir / v).is_file()), name)
        by_locale = self._by_locale(name)
        return next((by_locale[c] for c in wanted if c in by_locale), name)

    def _by_locale(self, name: str) -> dict[str, str]:
        # Listing the folder is most of the cost of picking a variant, and it runs for every
        # mail sent: the listing is kept until the folder changes (a file added or removed
        # changes the folder's modification time).
        kept = self._variants.get(name)
        folder = kept[0] if kept else str(self.templates_dir / Path(name).parent)
        try:
            stamp = os.stat(folder).st_mtime_ns
        except OSError:
            return {}
        if kept is not None and kept[1] == stamp:
            return kept[2]
        stem, _, rest = Path(name).name.partition(".")
        by_locale: dict[str, str] = {}
        for variant in self.variants(name):  # sorted: x.zh-CN comes before x.zh_CN
            middle = Path(variant).name[len(stem) + 1 : -len(rest) - 1]
            by_locale.setdefault(normalise_locale(middle), variant)
        self._variants[name] = (folder, stamp, by_locale)
        return by_locale

    def variants(self, name: str) -> list[str]:
        """The locale variants that exist beside ``name`` (``x.zh-CN.html.j2`` …).

        A file whose middle part is not a locale (``x.backup-2.html.j2``) is no variant: no
        customer is ever sent it.
        """
        folder, base = Path(name).parent, Path(name).name
        stem, dot, rest = base.partition(".")
        if not dot:
            return []
        pattern = f"{glob.escape(stem)}.*.{glob.escape(rest)}"
        found = []
        for path in sorted((self.templates_dir / folder).glob(pattern)):
            middle = path.name[len(stem) + 1 : -len(rest) - 1]
            try:
                if "." not in middle and normalise_locale(middle):
                    found.append(str(path.relative_to(self.templates_dir)))
            except ValueError:
                continue
        return found

    def exists(self, name: str) -> bool:
        """Whether the template file is there."""
        return (self.templates_dir / name).is_file()

    def subject(self, source: str, context: dict[str, Any]) -> str:
        """Render a subject line: one line, whatever the data holds."""
        compiled = self._subjects.get(source)
        if compiled is None:  # compiling is most of the cost of a subject: once per text
            compiled = self._subjects[source] = self._text.from_string(source)
        text = compiled.render(context)
        return _LINE_BREAKS.sub(" ", text).strip()[:300]

    def render(
        self,
        *,
        subject: str,
        template: str,
        text_template: str | None,
        context: dict[str, Any],
        locale: str,
        unsubscribe_url: str,
        pause_url: str,
    ) -> Rendered:
        """Subject, HTML (CSS inlined, footer added) and text part for one customer.

        Raises :class:`TemplateFailure` naming the file and line, whatever went wrong: a
        missing value, a sum that fails, a file that is not UTF-8, a mail with no words.
        """
        chosen = self.resolve(template, locale)
        body = self._run(self._html, chosen, context)
        try:
            derived = plain_text(body)
            # The template's CSS is inlined before the footer goes in, so no rule of the
            # template (display:none, say) can reach the unsubscribe link or the address.
            inlined = css_inline.inline(body)
        except Exception as exc:  # a library refusing what the template made
            raise TemplateFailure(
                self._label(chosen), 1, f"its HTML cannot be made into a mail: {exc}"
            ) from exc
        if not derived:
            raise TemplateFailure(
                self._label(chosen),
                1,
                "the mail has no text for this customer: an empty "
                "template, or every part of it is inside an {% if %} that is false",
            )
        footer_text, footer_html = self._footer(locale, unsubscribe_url, pause_url)
        html = _with_footer(inlined, footer_html)
        if text_template:
            text = self._run(self._text, self.resolve(text_template, locale), context)
        else:
            text = derived
        text = f"{text.rstrip()}\n\n-- \n{footer_text}\n"
        try:
            title = self.subject(subject, context)
        except Exception as exc:  # "subject": the caller knows which campaign line that is
            raise TemplateFailure("subject", 1, _subject_problem(exc, context)) from exc
        if not title:
            raise TemplateFailure("subject", 1, "the subject is empty for this customer")
        return Rendered(title, html, text, chosen)

    def render_internal(
        self, template: str, text_template: str, context: dict[str, Any]
    ) -> tuple[str, str]:
        """HTML (CSS inlined) and text of a mail to our own people (the reps' digest).

        The same sandbox and autoescaping as customers' mail, without the marketing footer.
        """
        body = self._run(self._html, template, context)
        try:
            html = css_inline.inline(body)
        except Exception as exc:  # a library refusing what the template made
            raise TemplateFailure(
                self._label(template), 1, f"its HTML cannot be made into a mail: {exc}"
            ) from exc
        return html, self._run(self._text, text_template, context)

    def subject_problem(self, source: str, context: dict[str, Any]) -> str | None:
        """What is wrong with a subject line for this context, or None."""
        try:
            if not self.subject(source, context):
                return "the subject is empty for this customer"
        except Exception as exc:  # any failure of a marketer's text is a finding
            return _subject_problem(exc, context)
        return None

    def _run(self, env: SandboxedEnvironment, name: str, context: dict[str, Any]) -> str:
        # Every failure of any class becomes one located, readable TemplateFailure.
        try:
            made = _within_budget(env.get_template(name).generate(context))
            made.encode("utf-8")  # a lone surrogate ("\ud83d") can be rendered, not sent
            return made
        except TemplateFailure:
            raise
        except _TooLarge as exc:
            raise TemplateFailure(
                self._label(name),
                _line_in(exc),
                f"makes a mail over {MAX_MAIL_CHARS // 1_000_000} MB for this customer: mail "
                "servers refuse mail that large (and Gmail clips HTML over 102 KB); keep it short",
            ) from exc
        except UnicodeEncodeError as exc:
            bad = exc.object[exc.start : exc.end].encode("unicode_escape").decode()
            raise TemplateFailure(
                self._label(name),
                1,
                f"makes a character no mail can carry ({bad}, half of an emoji written as an "
                "escape): write the character itself, like 😀",
            ) from exc
        except TemplateNotFound as exc:
            missing_name = exc.name or name
            if missing_name == name:
                raise TemplateFailure(
                    self._label(name), 1, f"not found (looked in {self.templates_dir})"
                ) from exc
            raise TemplateFailure(
                self._label(name),
                _line_in(exc),
                f"uses {missing_name!r}, which is not in {self.templates_dir}",
            ) from exc
        except TemplateSyntaxError as exc:
            where = self._label(exc.name) if exc.name else self._label(name)
            raise TemplateFailure(where, exc.lineno, f"syntax error: {exc.message}") from exc
        except UnicodeDecodeError as exc:
            file, line = _undecodable(self.templates_dir, name, exc)
            if file is None:  # not a template file: something the template produced
                where, at = _where(exc, name)
                raise TemplateFailure(self._label(where), at, _explain(exc, context)) from exc
            raise TemplateFailure(
                self._label(file),
                line,
                f"is not UTF-8 (byte {exc.object[exc.start]:#04x}); save it as UTF-8",
            ) from exc
        except RecursionError as exc:
            raise TemplateFailure(
                self._label(name),
                1,
                "never ends: a macro that calls itself, or a template that includes or "
                "extends itself",
            ) from exc
        except Exception as exc:  # any failure of a marketer's template
            file, line = _where(exc, name)
            raise TemplateFailure(self._label(file), line, _explain(exc, context)) from exc

    def _label(self, name: str) -> str:
        # Template frames carry the loader's absolute path; messages name the file as the
        # marketer knows it, under the templates folder.
        path = Path(name)
        if path.is_absolute() or path.parts[: len(self.templates_dir.parts)] == (
            self.templates_dir.parts
        ):
            try:
                path = path.resolve().relative_to(self.templates_dir.resolve())
            except ValueError:
                return name
        return str(self.templates_dir / path)

    def _footer(self, locale: str, unsubscribe_url: str, pause_url: str) -> tuple[str, Markup]:
        # Built once per language with stand-ins for the two links (Markup's formatting is
        # a real cost at one call per mail), then the mail's own links are put in.
        found = fallbacks(locale)  # a stored zh_CN is zh, as for templates and subjects
        language = found[-1] if found else "en"
        shape = self._footers.get(language)
        if shape is None:
            shape = self._footers[language] = self._footer_shape(language)
        text, html = shape
        return (
            text.replace(_UNSUBSCRIBE_AT, unsubscribe_url).replace(_PAUSE_AT, pause_url),
            Markup(
                html.replace(_UNSUBSCRIBE_AT, escape(unsubscribe_url)).replace(
                    _PAUSE_AT, escape(pause_url)
                )
            ),
        )

    def _footer_shape(self, language: str) -> tuple[str, str]:
        sentence, pause, unsubscribe = _FOOTER.get(language, _FOOTER["en"])
        text = sentence.format(
            name=self.sender.company,
            pause=f"{pause}: {_PAUSE_AT}",
            unsubscribe=f"{unsubscribe}: {_UNSUBSCRIBE_AT}",
        )
        link = Markup('<a href="{}">{}</a>')
        html = Markup(
            '<div class="reengage-footer" style="margin-top:32px;padding-top:12px;'
            'border-top:1px solid #ddd;font-size:12px;color:#666;font-family:sans-serif">'
            "<p>{sentence}</p><p>{company}, {address}</p></div>"
        ).format(
            sentence=escape(sentence).format(
                name=self.sender.company,
                pause=link.format(Markup(_PAUSE_AT), pause),
                unsubscribe=link.format(Markup(_UNSUBSCRIBE_AT), unsubscribe),
            ),
            company=self.sender.company,
            address=self.sender.postal_address,
        )
        return f"{text}\n{self.sender.company}, {self.sender.postal_address}", str(html)

    def check(
        self,
        *,
        subject: str,
        template: str,
        text_template: str | None,
        context: dict[str, Any],
    ) -> list[TemplateProblem]:
        """Everything that would break at send time for this context, found now: missing
        files, syntax errors, missing values and any other failure, in every locale variant."""
        problems: list[TemplateProblem] = []
        if (problem := self.subject_problem(subject, context)) is not None:
            problems.append(TemplateProblem("subject", 1, problem))
        names = {template, *self.variants(template)}
        if text_template:
            names |= {text_template, *self.variants(text_template)}
        for name in sorted(names):
            env = self._text if name.endswith(".txt.j2") else self._html
            try:
                self._run(env, name, context)
            except TemplateFailure as exc:
                problems.append(TemplateProblem(exc.file, exc.line, exc.problem))
        return problems


# What a mail hides from its reader (the preheader a client shows beside the subject, say)
# stays out of the text part too.
_HIDDEN = ["[hidden]", '[style*="display:none" i]', '[style*="display: none" i]']


_SPACES_WITHIN = re.compile(r"(?<=\S) {2,}(?=\S)")


def plain_text(html: str) -> str:
    """The text part of a mail whose template has no text twin: paragraphs, headings, list
    bullets and link targets ("Read the guide (https://…)") kept; head, style and hidden
    elements left out.

    resiliparse (C++) rather than inscriptis: a tenth of a millisecond against half of one,
    and it is run once for every mail the daemon sends (bench/send.py).
    """
    text: str = extract_plain_text(
        html, preserve_formatting=True, links=True, alt_texts=True, skip_elements=_HIDDEN
    )
    # Inside a list item resiliparse keeps the template's line break and indentation around
    # a link ("open     order history     (url)"); a run of spaces between words is one.
    return _SPACES_WITHIN.sub(" ", text).strip()


def _with_footer(body: str, footer: Markup) -> str:
    # After the template ran, so no template can leave the footer out.
    index = body.lower().rfind("</body>")
    return f"{body[:index]}{footer}{body[index:]}" if index >= 0 else f"{body}{footer}"


def _subject_problem(exc: Exception, context: dict[str, Any]) -> str:
    if isinstance(exc, TemplateSyntaxError):
        return f"syntax error: {exc.message}"
    return _explain(exc, context)


def _explain(exc: Exception, context: dict[str, Any]) -> str:
    if isinstance(exc, UndefinedError):
        message = exc.message or "a value is undefined"
        if "is empty for some customers" in message or "is empty (None)" in message:
            return message
        if "has no element" in message:
            return (
                f"{message}: the list is empty or shorter for some customers; check it "
                "first with {% if … %} or loop over it with {% for %}"
            )
        names = [f"{k}()" if callable(v) else k for k, v in context.items()]
        usable = ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else "".join(names)
        return f"{message}: templates can use {usable}"
    if isinstance(exc, SecurityError):
        return f"not allowed in a template: {exc}"
    if isinstance(exc, OverflowError):
        return f"too large: {exc}"
    if isinstance(exc, ZeroDivisionError):
        return "divides by zero for this customer: check the value first with {% if … %}"
    if isinstance(exc, TypeError | ValueError):
        return f"cannot be worked out for this customer ({exc}): check the values' kinds"
    return f"fails with {type(exc).__name__}: {exc}"


def _where(exc: BaseException, fallback: str) -> tuple[str, int]:
    # Jinja2 rewrites tracebacks so template frames carry the template's own file and line;
    # the innermost template frame is where it went wrong (an included file, say).
    tb = exc.__traceback__
    file, line = fallback, 1
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_filename.endswith(".j2"):
            file, line = code.co_filename, tb.tb_lineno
        tb = tb.tb_next
    return file, line


def _line_in(exc: BaseException) -> int:
    return _where(exc, "")[1]


def _undecodable(root: Path, name: str, exc: UnicodeDecodeError) -> tuple[str | None, int]:
    # The loader does not say which file failed to decode (the one asked for, a layout it
    # extends, a file it includes): the file whose bytes are the ones that failed is it.
    failed = bytes(exc.object)
    candidates = [name, *(str(p.relative_to(root)) for p in sorted(root.rglob("*")))]
    for candidate in candidates:
        try:
            if (root / candidate).is_file() and (root / candidate).read_bytes() == failed:
                return candidate, failed[: exc.start].count(b"\n") + 1
        except OSError:
            continue
    return None, 1


class Yearly:
    """A yearly date whose year is unknown or private (a birthday): it formats without one."""

    __slots__ = ("day", "month")

    def __init__(self, month: int, day: int) -> None:
        self.month, self.day = month, day

    def strftime(self, fmt: str) -> str:
        """Format like a date, leaving the year (and what joins it to the rest) out; a
        weekday or a whole-date form would be made up, so they are refused."""
        if _INVENTED.search(fmt):
            raise ValueError(
                f"{fmt!r} needs a year this date does not have (a birthday, or a yearly "
                "date of unknown year): use %d and %B, or .next for the coming one"
            )
        bare = _YEAR.sub("", fmt).strip(" ,./-")
        return date(2000, self.month, self.day).strftime(bare or "%d %B")

    def __str__(self) -> str:
        return self.strftime("%d %B")


_YEAR = re.compile(r"[\s,./-]*%[Yy]|%[Yy][\s,./-]*")
_INVENTED = re.compile(r"%[aAwuUWVjcxFDGgCs]")


def _format_date(value: Any, fmt: str = "%d %B %Y") -> str:
    if isinstance(value, Missing):
        return str(value)  # raises, naming the field
    if not hasattr(value, "strftime"):
        raise ValueError(f"the date filter needs a date, not {value!r}")
    return str(value.strftime(fmt))
