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

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import css_inline
from jinja2 import (
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
)
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup, escape
from resiliparse.extract.html2text import extract_plain_text

from reengage.errors import TemplateFailure

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
        self._html = SandboxedEnvironment(loader=loader, autoescape=True, undefined=StrictUndefined)
        self._text = SandboxedEnvironment(
            loader=loader, autoescape=False, undefined=StrictUndefined
        )
        for env in (self._html, self._text):
            env.filters["date"] = _format_date
        self._subjects: dict[str, Template] = {}
        self._footers: dict[str, tuple[str, str]] = {}

    def resolve(self, name: str, locale: str) -> str:
        """The template for ``locale``: ``x.zh-CN.html.j2``, then ``x.zh.html.j2``, then ``x``."""
        stem, dot, rest = name.partition(".")
        candidates = []
        if locale:
            candidates.append(f"{stem}.{locale}.{rest}" if dot else f"{name}.{locale}")
            language = locale.split("-")[0]
            if language != locale:
                candidates.append(f"{stem}.{language}.{rest}" if dot else f"{name}.{language}")
        for candidate in candidates:
            if (self.templates_dir / candidate).is_file():
                return candidate
        return name

    def variants(self, name: str) -> list[str]:
        """The locale variants that exist beside ``name`` (``x.zh-CN.html.j2`` …)."""
        stem, dot, rest = name.partition(".")
        if not dot:
            return []
        folder = (self.templates_dir / stem).parent
        prefix = Path(stem).name + "."
        found = []
        for path in sorted(folder.glob(f"{prefix}*.{rest}")):
            middle = path.name[len(prefix) : -len(rest) - 1]
            if middle and "." not in middle:
                found.append(str(path.relative_to(self.templates_dir)))
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
        """Subject, HTML (CSS inlined, footer added) and text part for one customer."""
        chosen = self.resolve(template, locale)
        body = self._html.get_template(chosen).render(context)
        footer_text, footer_html = self._footer(locale, unsubscribe_url, pause_url)
        html = css_inline.inline(_with_footer(body, footer_html))
        if text_template:
            text = self._text.get_template(self.resolve(text_template, locale)).render(context)
        else:
            text = plain_text(body)
        text = f"{text.rstrip()}\n\n-- \n{footer_text}\n"
        return Rendered(self.subject(subject, context), html, text, chosen)

    def render_internal(
        self, template: str, text_template: str, context: dict[str, Any]
    ) -> tuple[str, str]:
        """HTML (CSS inlined) and text of a mail to our own people (the reps' digest).

        The same sandbox and autoescaping as customers' mail, without the marketing footer.
        """
        try:
            html = css_inline.inline(self._html.get_template(template).render(context))
            text = self._text.get_template(text_template).render(context)
        except TemplateNotFound as exc:
            raise TemplateFailure(f"{self.templates_dir / str(exc)}: not found") from exc
        except TemplateError as exc:
            raise TemplateFailure(f"{template}: {_explain(exc, context)}") from exc
        return html, text

    def _footer(self, locale: str, unsubscribe_url: str, pause_url: str) -> tuple[str, Markup]:
        # Built once per language with stand-ins for the two links (Markup's formatting is
        # a real cost at one call per mail), then the mail's own links are put in.
        language = locale.split("-")[0]
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
        """Everything that would break at send time, found now: missing files, syntax
        errors, undefined variables and sandbox violations, for every locale variant."""
        problems: list[TemplateProblem] = []
        try:
            self.subject(subject, context)
        except TemplateSyntaxError as exc:
            problems.append(TemplateProblem("subject", exc.lineno, f"syntax error: {exc.message}"))
        except (UndefinedError, SecurityError) as exc:
            problems.append(TemplateProblem("subject", 1, _explain(exc, context)))
        names = {template, *self.variants(template)}
        if text_template:
            names |= {text_template, *self.variants(text_template)}
        for name in sorted(names):
            env = self._text if name.endswith(".txt.j2") else self._html
            label = str(self.templates_dir / name)
            try:
                env.get_template(name).render(context)
            except TemplateNotFound:
                problems.append(
                    TemplateProblem(
                        label, 1, f"template not found: {name} (looked in {self.templates_dir})"
                    )
                )
            except TemplateSyntaxError as exc:
                where = str(self.templates_dir / exc.name) if exc.name else label
                problems.append(TemplateProblem(where, exc.lineno, f"syntax error: {exc.message}"))
            except (UndefinedError, SecurityError) as exc:
                problems.append(TemplateProblem(label, _line_in(exc), _explain(exc, context)))
            except TemplateError as exc:
                problems.append(TemplateProblem(label, _line_in(exc), str(exc)))
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


def _explain(exc: Exception, context: dict[str, Any]) -> str:
    if isinstance(exc, UndefinedError):
        names = [f"{k}()" if callable(v) else k for k, v in context.items()]
        usable = ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else "".join(names)
        return f"{exc.message}: templates can use {usable}"
    return f"not allowed in a template: {exc}"


def _line_in(exc: BaseException) -> int:
    # Jinja2 rewrites tracebacks so template frames carry the template's own line numbers.
    tb = exc.__traceback__
    line = 1
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith(".j2"):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _format_date(value: Any, fmt: str = "%d %B %Y") -> str:
    return value.strftime(fmt) if hasattr(value, "strftime") else str(value)
