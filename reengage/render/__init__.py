"""Email templates: Jinja2, sandboxed, strict, with a footer no template can leave out.

Templates are written by marketers, not the operator, so they run in Jinja2's
``SandboxedEnvironment`` with ``StrictUndefined`` (a misspelt variable is an error, caught
by ``reengage validate``, not a blank in a customer's inbox) and HTML autoescaping (a
customer called ``<script>`` is shown, never run). Every mail gets an HTML part with its
CSS inlined (css-inline) and a text part (its own ``.txt.j2`` template, or derived from the
HTML). The footer — the sender's postal address and the unsubscribe and pause links — is
added here, after the template ran, where the layout prints ``{{ footer }}`` (inside its
card) unless that place is hidden (:mod:`reengage.render.footer`). Locale variants
(``tip-1.zh-CN.html.j2`` beside ``tip-1.html.j2``) are chosen by the customer's locale,
falling back to the plain one.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import css_inline
from jinja2 import (
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateNotFound,
    TemplateSyntaxError,
)
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import escape

from reengage.errors import TemplateFailure
from reengage.locales import fallbacks
from reengage.render.footer import (
    FOOTER_MARK,
    PAUSE_AT,
    UNSUBSCRIBE_AT,
    footer_shape,
    place,
    with_pixel,
    without_mark,
)
from reengage.render.guards import GuardedSandbox
from reengage.render.limits import MAX_MAIL_CHARS, MAX_RENDER_SECONDS, time_limit, within_budget
from reengage.render.problems import explain, line_in, located, subject_problem_of, undecodable
from reengage.render.text import plain_text
from reengage.render.values import (
    Missing,
    Refused,
    Yearly,
    format_date,
    is_none,
    missing,
    printable,
)
from reengage.render.variants import LocaleVariants

__all__ = [
    "MAX_MAIL_CHARS",
    "MAX_RENDER_SECONDS",
    "Missing",
    "Refused",
    "Rendered",
    "Renderer",
    "Sender",
    "TemplateProblem",
    "Yearly",
    "missing",
    "plain_text",
]

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
    # Why the footer is at the end of the mail rather than where the layout printed
    # {{ footer }} (a place a reader never sees); None when it is there, or none is printed.
    footer_moved: str | None = None


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
        self._html, self._text = _environments(loader, auto_reload=True)
        # The daemon's sending renders through these: a file's changes are looked for once
        # per batch (refresh(), in the batch's thread), not on every mail on the event loop,
        # where each look at the disk hands the GIL to whatever thread waits for it.
        self._pinned_html, self._pinned_text = _environments(loader, auto_reload=False)
        self._subjects: dict[str, Template] = {}
        self._footers: dict[str, tuple[str, str, str]] = {}
        self._locales = LocaleVariants(templates_dir)

    def refresh(self) -> None:
        """Look once at every template file and folder the pinned rendering has kept
        (``render(..., pinned=True)``): a changed one is read again at its next use.

        Called once per batch of mail, off the event loop; a file changed meanwhile is
        picked up by the next batch. What the process has rendered otherwise (validation
        renders every step) is compiled here too, so no mail compiles one on the loop."""
        for env, pinned in ((self._html, self._pinned_html), (self._text, self._pinned_text)):
            cache = pinned.cache
            if cache is None:
                continue
            for key in list(cache):  # a copy; get() answers None for one gone meanwhile
                template = cache.get(key)
                if template is not None and not template.is_up_to_date:
                    with contextlib.suppress(KeyError):  # gone already: read at next use
                        del cache[key]
            for key in list(env.cache or ()):
                if key not in cache and isinstance(key, tuple) and isinstance(key[-1], str):
                    with contextlib.suppress(Exception):  # a broken one fails when rendered
                        pinned.get_template(key[-1])
        self._locales.refresh()

    def resolve(self, name: str, locale: str, *, pinned: bool = False) -> str:
        """The template for ``locale`` (:meth:`LocaleVariants.resolve`)."""
        return self._locales.resolve(name, locale, pinned=pinned)

    def variants(self, name: str) -> list[str]:
        """The locale variants that exist beside ``name`` (:meth:`LocaleVariants.variants`)."""
        return self._locales.variants(name)

    def exists(self, name: str) -> bool:
        """Whether the template file is there."""
        return (self.templates_dir / name).is_file()

    def subject(self, source: str, context: dict[str, Any]) -> str:
        """Render a subject line: one line, whatever the data holds."""
        compiled = self._subjects.get(source)
        if compiled is None:  # compiling is most of the cost of a subject: once per text
            compiled = self._subjects[source] = self._text.from_string(source)
        with time_limit():
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
        pinned: bool = False,
        open_pixel: str | None = None,
    ) -> Rendered:
        """Subject, HTML (CSS inlined, footer added) and text part for one customer.

        ``open_pixel``: the address that counts an open, carried by the footer (the
        campaign's ``track_opens``); None for none. ``pinned``: the files as
        :meth:`refresh` last saw them (the daemon's sending), rather than looked at again
        now. Raises :class:`TemplateFailure` naming the file and line, whatever went wrong:
        a missing value, a sum that fails, a file that is not UTF-8, a mail with no words.
        """
        html_env, text_env = (
            (self._pinned_html, self._pinned_text) if pinned else (self._html, self._text)
        )
        try:
            title = self.subject(subject, context)
        except Exception as exc:  # "subject": the caller knows which campaign line that is
            raise TemplateFailure("subject", 1, subject_problem_of(exc, context)) from exc
        if not title:
            raise TemplateFailure("subject", 1, "the subject is empty for this customer")
        # The subject as this customer gets it, for the layout's <title>: a <title> much
        # longer than the subject is what SpamAssassin's HTML_TITLE_SUBJ_DIFF counts.
        context = {**context, "subject": title}
        chosen = self.resolve(template, locale, pinned=pinned)
        body = self._run(html_env, chosen, context)
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
        footer_text, inside, alone = self._footer(locale, unsubscribe_url, pause_url)
        try:
            html, moved = place(
                inlined, with_pixel(inside, open_pixel), with_pixel(alone, open_pixel)
            )
        except ValueError as exc:  # a mail whose end, and footer, no reader would see
            raise TemplateFailure(self._label(chosen), 1, str(exc)) from exc
        if text_template:
            chosen_text = self.resolve(text_template, locale, pinned=pinned)
            text = self._run(text_env, chosen_text, context)
        else:
            text = derived
        text = f"{text.rstrip()}\n\n-- \n{footer_text}\n"
        return Rendered(title, html, text, chosen, moved)

    def render_internal(
        self, template: str, text_template: str, context: dict[str, Any]
    ) -> tuple[str, str]:
        """HTML (CSS inlined) and text of a mail to our own people (the reps' digest).

        The same sandbox and autoescaping as customers' mail, without the marketing footer.
        """
        body = self._run(self._html, template, context)
        try:
            html = without_mark(css_inline.inline(body))
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
            return subject_problem_of(exc, context)
        return None

    def _run(self, env: SandboxedEnvironment, name: str, context: dict[str, Any]) -> str:
        # Every failure of any class becomes one located, readable TemplateFailure.
        # Too large or too slow (TooLarge, TooSlow) is told by explain() at the innermost
        # line the template was on, in the file it was in (an included one, say).
        if env.autoescape and "footer" not in context:  # where the layout wants the footer
            context = {**context, "footer": FOOTER_MARK}
        try:
            # Compiling is reading the file, not running the marketer's loops: outside the
            # time budget, which a busy machine's compile of a long template could eat.
            template = env.get_template(name)
            with time_limit():
                made = within_budget(template.generate(context))
            made.encode("utf-8")  # a lone surrogate ("\ud83d") can be rendered, not sent
            return made
        except TemplateFailure:
            raise
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
                line_in(exc),
                f"uses {missing_name!r}, which is not in {self.templates_dir}",
            ) from exc
        except TemplateSyntaxError as exc:
            where = self._label(exc.name) if exc.name else self._label(name)
            raise TemplateFailure(where, exc.lineno, f"syntax error: {exc.message}") from exc
        except UnicodeDecodeError as exc:
            file, line = undecodable(self.templates_dir, name, exc)
            if file is None:  # not a template file: something the template produced
                where, at = located(exc, name)
                raise TemplateFailure(self._label(where), at, explain(exc, context)) from exc
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
            file, line = located(exc, name)
            raise TemplateFailure(self._label(file), line, explain(exc, context)) from exc

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

    def _footer(self, locale: str, unsubscribe_url: str, pause_url: str) -> tuple[str, str, str]:
        # Made once per language with stand-ins for the two links (Markup's formatting is
        # a real cost at one call per mail), then the mail's own links are put in.
        found = fallbacks(locale)  # a stored zh_CN is zh, as for templates and subjects
        language = found[-1] if found else "en"
        shape = self._footers.get(language)
        if shape is None:
            shape = self._footers[language] = footer_shape(
                language, self.sender.company, self.sender.postal_address
            )
        text, inside, alone = shape
        unsubscribe, pause = str(escape(unsubscribe_url)), str(escape(pause_url))
        return (
            text.replace(UNSUBSCRIBE_AT, unsubscribe_url).replace(PAUSE_AT, pause_url),
            inside.replace(UNSUBSCRIBE_AT, unsubscribe).replace(PAUSE_AT, pause),
            alone.replace(UNSUBSCRIBE_AT, unsubscribe).replace(PAUSE_AT, pause),
        )

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
        context = {**context, "subject": "" if problem else self.subject(subject, context)}
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


def _environments(
    loader: FileSystemLoader, *, auto_reload: bool
) -> tuple[GuardedSandbox, GuardedSandbox]:
    # The sandboxes for HTML (autoescaped) and for text, with reengage's filters and tests.
    html = GuardedSandbox(
        loader=loader,
        autoescape=True,
        undefined=StrictUndefined,
        finalize=printable,
        auto_reload=auto_reload,
    )
    text = GuardedSandbox(
        loader=loader,
        autoescape=False,
        undefined=StrictUndefined,
        finalize=printable,
        auto_reload=auto_reload,
    )
    for env in (html, text):
        env.filters["date"] = format_date
        # A mail that changes on every rendering could never equal its preview.
        del env.filters["random"]
        env.globals.pop("lipsum", None)
        env.tests["none"] = is_none  # `x is none` holds for a missing value too
    return html, text
