"""`reengage demo` as a newcomer runs it, on a clock pinned to Berlin's spring-forward night.

The demo's clock ends at the moment it was run: its history ends three weeks before, the
real daemon runs those weeks, and nothing is left dated after the end, so `reengage run
--once` in the demo's folder goes on from there.
"""

from __future__ import annotations

import email
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email import policy
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel

from reengage import models
from tests.integration.smtp_sink import running_sink
from tests.integration.test_cli import script

pytestmark = pytest.mark.clock
END = datetime(2026, 3, 29, 0, 45, tzinfo=UTC)  # 01:45 in Berlin, a quarter before 03:00
DAYS = 21  # the demo's default
# When something is planned for rather than when it happened: these may lie after the end.
PLANNED = {
    ("customers", "paused_until"),
    ("enrollments", "next_due_at"),
    ("messages", "retry_at"),
    ("digests", "retry_at"),
    ("call_tasks", "due_at"),
    ("call_outcomes", "call_again_on"),
    ("customer_stats", "look_again_at"),
}


@dataclass(frozen=True)
class Demo:
    folder: Path
    stdout: str

    @property
    def url(self) -> str:
        return f"sqlite:///{self.folder / 'demo.db'}"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """The demo, run once for this module's tests, with REENGAGE_NOW at END."""
    cwd = tmp_path_factory.mktemp("demo")
    env = {"REENGAGE_NOW": END.isoformat()}
    result = script("demo", "--customers", "120", "--folder", str(cwd / "demo"), cwd=cwd, env=env)
    assert result.returncode == 0, result.stderr
    return Demo(cwd / "demo", result.stdout)


def latest(url: str) -> dict[tuple[str, str], datetime | date]:
    """The latest value of every date and time column in the database, by table and column."""
    engine = sa.create_engine(url)
    found: dict[tuple[str, str], datetime | date] = {}
    try:
        with engine.connect() as conn:
            for table in SQLModel.metadata.sorted_tables:
                for column in table.columns:
                    if isinstance(column.type, (models.UTCDateTime, sa.Date)):
                        value = conn.execute(sa.select(sa.func.max(column))).scalar()
                        if value is not None:
                            found[(table.name, column.name)] = value
    finally:
        engine.dispose()
    return found


def test_the_demo_leaves_nothing_dated_after_the_moment_it_ran_to(demo: Demo) -> None:
    found = latest(demo.url)
    # A rep's local date at END is at most the date fourteen hours east of Greenwich.
    last_day = (END + timedelta(hours=14)).date()
    after = {
        where: value
        for where, value in found.items()
        if where not in PLANNED
        and (value > END if isinstance(value, datetime) else value > last_day)
    }
    assert after == {}
    # ... and the daemon did run those three weeks, up to the last hours before the end.
    first_enrolled = sa_first(demo.url, models.Enrollment, "enrolled_at")
    assert END - timedelta(days=DAYS) <= first_enrolled < END - timedelta(days=DAYS - 3)
    # Every working morning: the last on Friday, as the weekend is off (REENGAGE_DIGEST_DAYS).
    assert END - timedelta(days=2) < found[("digests", "created_at")]
    assert END - timedelta(days=5) < found[("messages", "sent_at")]  # the weekend is closed


def sa_first(url: str, model: type[SQLModel], column: str) -> datetime:
    """The earliest value of one time column."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            table = model.__table__  # type: ignore[attr-defined]
            value: datetime = conn.execute(sa.select(sa.func.min(table.c[column]))).scalar_one()
    finally:
        engine.dispose()
    return value


def test_reengage_run_once_in_the_demo_folder_goes_on_from_where_the_demo_stopped(
    demo: Demo, tmp_path: Path
) -> None:
    # On a copy, so the other tests see the demo as it ended.
    folder = tmp_path / "demo"
    shutil.copytree(demo.folder, folder)
    url = f"sqlite:///{folder / 'demo.db'}"
    engine = sa.create_engine(url)
    locks = models.JobLock.__table__
    query = sa.select(locks.c.holder, locks.c.locked_until).where(
        locks.c.name == "detect_and_enroll"
    )
    try:
        with engine.connect() as conn:
            demo_holder, _ = conn.execute(query).one()
        with running_sink() as (sink, port):
            env = {
                "REENGAGE_NOW": END.isoformat(),
                "REENGAGE_DATABASE_URL": url,
                "REENGAGE_SMTP_PORT": str(port),
            }
            result = script("run", "--once", cwd=folder, env=env)
        assert result.returncode == 0, result.stderr
        assert "one pass:" in result.stdout
        with engine.connect() as conn:
            holder, until = conn.execute(query).one()
    finally:
        engine.dispose()
    # The demo left no lock running on: this pass ran detection itself, as of END.
    assert holder != demo_holder
    assert END < until.replace(tzinfo=UTC) < END + timedelta(minutes=10)
    # Whatever fell due in the demo's last hours went out now, each once.
    ids = sink.message_ids()
    assert len(ids) == len(set(ids))


def test_the_first_mail_shown_is_the_first_one_the_daemon_sent(demo: Demo) -> None:
    mailbox = sorted((demo.folder / "mailbox").glob("[0-9][0-9][0-9][0-9].eml"))
    assert mailbox, "the daemon sent no mail to a customer"
    raw = (demo.folder / "first-mail.eml").read_bytes()
    assert raw == mailbox[0].read_bytes()  # the mail as the SMTP server received it
    mail = email.message_from_bytes(raw, policy=policy.default)
    shown = demo.stdout.split("The first mail the daemon sent", 1)[1]
    for header in ("Date", "From", "To", "Subject", "List-Unsubscribe-Post"):
        assert f"{header}: {mail[header]}" in shown, header
    text = mail.get_body(("plain",))
    assert text is not None
    first_line = str(text.get_content()).strip().splitlines()[0]
    assert first_line in shown
    sent = parsedate_to_datetime(str(mail["Date"]))
    assert END - timedelta(days=DAYS) <= sent < END


def test_demo_on_a_fresh_machine_shows_data_and_who_looks_inactive(demo: Demo) -> None:
    out = demo.stdout
    assert "120 customers" in out
    assert "Look inactive" in out
    assert "Usually orders every" in out
    assert "The story starts 21 days ago, on Sun 08 Mar 2026" in out
    assert (demo.folder / "demo.db").exists()
    # the real daemon sends to a real SMTP server
    assert "mails arrived" in out
    saved = sorted((demo.folder / "mailbox").glob("[0-9][0-9][0-9][0-9].eml"))
    assert saved
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in saved[0].read_bytes()
    # the reps' morning digests landed in the same mailbox, and one client's form is shown
    digests = sorted((demo.folder / "mailbox").glob("*-digest.eml"))
    assert digests and b"clients to call today" in digests[0].read_bytes()
    assert "The reps' mornings" in out
    assert "Why did you decide to stop?" in out
    assert re.search(r"records the call at http://127\.0\.0\.1:\d+/call/\S+", out)
    # simulated reps recorded their calls through the real outcome form
    assert re.search(r"The reps recorded \d+ calls through the outcome form", out)
    # the stats table and the dashboard's address end the demo
    assert "Lift against the holdout" in out
    assert re.search(r"delivery\s*│\s*\d+\s*│\s*0\s*│\s*[1-9]", out)  # systemic
    assert re.search(r"http://127\.0\.0\.1:\d+/dashboard\?token=\S+", out)
    assert '"event"' not in out  # no log noise in the demo's tables
    # simulated customers answered through the real web app and inbound SMTP listener
    responses = out.split("What the customers did", 1)[1]
    assert re.search(r"open\s*│\s*[1-9]", responses), responses
    assert not (demo.folder.parent / "reengage.db").exists()  # never a real database


def test_the_demos_mail_to_customers_scores_at_most_one_in_spamassassin(demo: Demo) -> None:
    """The mail the demo's daemon really sent, as it arrived: two of each campaign, step
    and customer language (one spamassassin process; every one would take a minute of CI),
    each printed with its score."""
    from reengage import spamassassin
    from tests.integration.test_spam_scores import require_spamassassin

    program = require_spamassassin()
    engine = sa.create_engine(demo.url)
    messages, customers = models.Message.__table__, models.Customer.__table__  # type: ignore[attr-defined]
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    messages.c.message_id,
                    messages.c.campaign_id,
                    messages.c.step_key,
                    customers.c.locale,
                )
                .join(customers, customers.c.id == messages.c.customer_id)
                .where(messages.c.message_id.is_not(None))
                .order_by(messages.c.id)
            ).all()
    finally:
        engine.dispose()
    kinds = {
        row.message_id.strip("<>"): (row.campaign_id, row.step_key, row.locale) for row in rows
    }
    arrived = {}
    for path in sorted((demo.folder / "mailbox").glob("*.eml")):
        raw = path.read_bytes()
        mail = email.message_from_bytes(raw, policy=policy.default)
        kind = kinds.get(str(mail["Message-ID"]).strip("<>"))
        if kind is not None:  # a customer's mail (the reps' digests are not in messages)
            arrived.setdefault(kind, []).append((f"{path.name} {'/'.join(kind)}", raw))
    chosen = [mail for found in arrived.values() for mail in found[:2]]
    assert {campaign for campaign, _, _ in arrived} >= {"habit-lapsed-tips", "declining-check-in"}
    assert {locale for _, _, locale in arrived} >= {"en", "zh-CN"}
    scores = spamassassin.score([raw for _, raw in chosen], path=program)
    for (name, _), found in zip(chosen, scores, strict=True):
        rules = ", ".join(f"{h.rule}={h.points:+.1f}" for h in found.counted())
        print(f"spamassassin: demo mailbox/{name}: {found.points:.1f} {rules}".rstrip())
    assert [
        (name, s.points) for (name, _), s in zip(chosen, scores, strict=True) if s.points > 1.0
    ] == []
