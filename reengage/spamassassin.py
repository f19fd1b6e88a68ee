"""Scoring mail with SpamAssassin as it is installed, offline: what a receiving server's
filter says about a mail before it has learnt anything about the sender.

One ``spamassassin`` process reads a whole batch of mail as an mbox (compiling its rules
takes a second or two, once, rather than once a mail), with local tests only (``-L``: no
DNS blocklists, nothing leaves the machine), without Bayes (``use_bayes 0``: a fresh
install has learnt nothing) and without anyone's personal preferences (``-p /dev/null``).
Each mail comes back with headers naming its score and every rule that matched, with the
rule's points and description, and with the ``X-Reengage-Check`` mark it was given: the
mails come back in an order of SpamAssassin's own, and the mark is how each score finds
its mail.
"""

from __future__ import annotations

import mailbox
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from reengage.errors import ReengageError

HOW_TO_INSTALL = (
    "install SpamAssassin: `apt-get install spamassassin` (Debian, Ubuntu), "
    "`dnf install spamassassin` (Fedora, RHEL) or `brew install spamassassin` (macOS)"
)
_ARGS = (
    "-L",  # local tests only: no network
    "--mbox",
    "-p",
    "/dev/null",  # nobody's user_prefs
    "-x",  # and do not create one
    "--cf=use_bayes 0",
    "--cf=report_safe 0",  # the mail itself, with headers added, not wrapped as an attachment
    "--cf=clear_headers",
    "--cf=add_header all Score _SCORE_",
    "--cf=add_header all Tests _TESTSSCORES(,)_",
    "--cf=add_header all Report _REPORT_",
)
# The header each mail is marked with before scoring, to know it again when it comes back.
MARK = "X-Reengage-Check"
_HIT = re.compile(r"^\*\s+(-?[0-9.]+)\s+([A-Z0-9_]+)\s+(.*)$")
_TESTED = re.compile(r"([A-Za-z0-9_]+)=(-?[0-9.]+)")


class SpamAssassinFailed(ReengageError):
    """SpamAssassin is missing, or did not score the mail it was given."""


@dataclass(frozen=True)
class Hit:
    """One rule that matched: ``HTML_IMAGE_ONLY_28``, 2.8 points, and what it looks for."""

    rule: str
    points: float
    description: str


@dataclass(frozen=True)
class Score:
    """A mail's score and the rules that made it."""

    points: float
    hits: tuple[Hit, ...]

    def counted(self) -> tuple[Hit, ...]:
        """The rules that add or take away a tenth of a point or more, most points first
        (the 0.001-point "informational" ones change nothing)."""
        return tuple(sorted((h for h in self.hits if abs(h.points) >= 0.05), key=_weight))


def _weight(hit: Hit) -> tuple[float, str]:
    return -hit.points, hit.rule


def program() -> str | None:
    """Where ``spamassassin`` is, or None when it is not installed."""
    return shutil.which("spamassassin")


def version(path: str) -> str:
    """``SpamAssassin version 4.0.1``, as the installed program says."""
    done = subprocess.run([path, "-V"], capture_output=True, text=True, timeout=60, check=False)
    return (done.stdout.splitlines() or ["SpamAssassin (version unknown)"])[0].strip()


def score(
    messages: Sequence[bytes],
    *,
    path: str | None = None,
    timeout: float = 600,
    names: Sequence[str] = (),
) -> list[Score]:
    """Each message's score, in order, from one ``spamassassin`` run over all of them
    (``names``: what to call each mail when SpamAssassin loses it, the n-th mail and its
    subject otherwise).

    SpamAssassin 4.0.1 hands the mails of an mbox back in an order of its own, a different
    one each run, so each mail is marked with an ``X-Reengage-Check`` header of its own
    before it is scored and each score is given to the mail that carries it back, never by
    position. The same bytes score the same each time. Raises :class:`SpamAssassinFailed`
    when SpamAssassin is not installed, or a mail comes back without its mark or not at
    all."""
    labels = [_label(names, i, raw) for i, raw in enumerate(messages)]
    found = _scored(dict(enumerate(messages)), labels, path, timeout)
    return [found[i] for i in range(len(messages))]


def _label(names: Sequence[str], index: int, raw: bytes) -> str:
    if index < len(names):
        return names[index]
    subject = mailbox.mboxMessage(raw).get("Subject")
    return f"mail {index + 1} (subject {str(subject or '')!r})"


def _scored(
    messages: Mapping[int, bytes], labels: Sequence[str], path: str | None, timeout: float
) -> dict[int, Score]:
    found = path or program()
    if found is None:
        raise SpamAssassinFailed(f"SpamAssassin is not installed: {HOW_TO_INSTALL}")
    if not messages:
        return {}
    with tempfile.TemporaryDirectory(prefix="reengage-spam-") as folder:
        given, scored = Path(folder) / "in.mbox", Path(folder) / "out.mbox"
        box = mailbox.mbox(given)  # "From " lines in a body are escaped as mbox needs
        for index, raw in messages.items():
            marked = mailbox.mboxMessage(raw)
            del marked[MARK]
            marked[MARK] = str(index)
            box.add(marked)
        box.close()
        with given.open("rb") as stdin, scored.open("wb") as stdout:
            try:
                done = subprocess.run(
                    [found, *_ARGS],
                    stdin=stdin,
                    stdout=stdout,
                    stderr=subprocess.PIPE,
                    timeout=timeout,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise SpamAssassinFailed(f"{found} did not run: {exc}") from exc
        if done.returncode != 0:
            said = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
            raise SpamAssassinFailed(
                f"{found} failed (exit {done.returncode}): {' / '.join(said) or 'no message'}"
            )
        answered = mailbox.mbox(scored, create=False)
        try:
            returned = [(str(message.get(MARK) or "").strip(), message) for message in answered]
        finally:
            answered.close()
    return _matched(messages, labels, returned, found)


def _matched(
    messages: Mapping[int, bytes],
    labels: Sequence[str],
    returned: Sequence[tuple[str, mailbox.mboxMessage]],
    found: str,
) -> dict[int, Score]:
    # Each returned mail to the one that carries its mark; any mail lost or unknown is an
    # error naming it, never a score given to another mail or left out.
    by_mark = {str(index): index for index in messages}
    results: dict[int, Score] = {}
    by_hand = f"run it by hand on one: {found} -L -t < mail.eml"
    for mark, message in returned:
        index = by_mark.get(mark)
        if index is None or index in results:
            subject = str(message.get("Subject") or "")
            raise SpamAssassinFailed(
                f"{found} returned a mail it was not given, or one twice "
                f"({MARK}: {mark or 'missing'}, subject {subject!r}); {by_hand}"
            )
        try:
            results[index] = _read(message)
        except SpamAssassinFailed as exc:
            raise SpamAssassinFailed(f"{labels[index]}: {exc}; {by_hand}") from exc
    lost = [labels[index] for index in messages if index not in results]
    if lost:
        raise SpamAssassinFailed(
            f"{found} answered for {len(results)} of {len(messages)} mails, not for "
            f"{'; '.join(lost[:5])}{' and more' if len(lost) > 5 else ''}; {by_hand}"
        )
    return results


def _read(message: mailbox.mboxMessage) -> Score:
    # The headers add_header asked for; folded lines are joined first.
    def header(name: str) -> str:
        value = message.get(f"X-Spam-{name}")
        return re.sub(r"\s*\n\s*", "\n" if name == "Report" else "", str(value or ""))

    try:
        points = float(header("Score") or "nan") + 0.0  # -0.0 is 0.0
    except ValueError:
        points = float("nan")
    if points != points:  # nan: a mail SpamAssassin passed through without scoring it
        raise SpamAssassinFailed("SpamAssassin returned a mail without its score")
    weights = {rule: float(value) for rule, value in _TESTED.findall(header("Tests"))}
    described: dict[str, str] = {}
    last = None
    for line in header("Report").splitlines():
        hit = _HIT.match(line.strip())
        if hit:
            last = hit.group(2)
            described[last] = hit.group(3).strip()
        elif last and line.strip().startswith("*"):  # a description that went on a line
            described[last] += " " + line.strip().lstrip("*").strip()
    hits = tuple(Hit(rule, value, described.get(rule, "")) for rule, value in weights.items())
    return Score(points, hits)
