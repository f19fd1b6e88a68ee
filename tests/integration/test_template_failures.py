"""Nothing a marketer writes in a template crashes a command or reaches a customer broken.

``validate`` renders every step for every kind of customer real data holds and reports
any failure, of any class, at ``template:line``; the other campaigns still load. A template
that fails for one customer only at send time marks that mail ``failed`` with the reason,
everyone else's mail still goes, and a person can list and re-send it once it is fixed.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from reengage import authoring, compose
from reengage.config import load_settings
from reengage.ingest import Kind, import_file
from reengage.mailer import SmtpMailer
from reengage.render import limits
from reengage.scheduler import Service
from reengage.store import Store
from tests.integration.smtp_sink import Sink, running_sink
from tests.integration.test_cli import cli

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 11, 23, 5, 0, tzinfo=UTC)  # a Monday

CAMPAIGN = """\
id: {id}
name: Trying a template
audience:
  lapsed: {{factor: 2.0, min_days_silent: 14}}
holdout_percent: 0
send_window: {{hours: "00:00-24:00", days: [mon, tue, wed, thu, fri, sat, sun]}}
from: "Acme <hello@acme.example>"
steps:
  - key: first
    after: 0d
    subject: "Hello {{{{ customer.first_name or 'there' }}}}"
    template: {template}
"""


def workspace(tmp_path: Path, smtp_port: int = 25) -> compose.Workspace:
    settings = load_settings(
        env_file=None,
        campaigns_dir=tmp_path / "campaigns",
        templates_dir=tmp_path / "templates",
        secret_key="s" * 40,
        smtp_port=smtp_port,
        max_emails_per_week=0,
    )
    return compose.Workspace.from_settings(settings)


def folders(tmp_path: Path, templates: dict[str, str | bytes]) -> None:
    """Shipped campaigns and templates, plus one campaign per extra template."""
    shutil.copytree(ROOT / "campaigns", tmp_path / "campaigns")
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    for name, body in templates.items():
        path = tmp_path / "templates" / "try" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(body, bytes):
            path.write_bytes(body)
        else:
            path.write_text(body, encoding="utf-8")
        slug = name.split(".")[0]
        (tmp_path / "campaigns" / f"try-{slug}.yaml").write_text(
            CAMPAIGN.format(id=f"try-{slug}", template=f"try/{name}")
        )


LAYOUT = '{% extends "layout/base.html.j2" %}\n{% block content %}\n<p>Hello</p>\n'

# Each template fails for some or all customers; the line that fails is the third.
BROKEN: dict[str, tuple[str | bytes, str]] = {
    "divide.html.j2": (LAYOUT + "<p>{{ rhythm.orders / 0 }}</p>\n{% endblock %}\n", "by zero"),
    "add.html.j2": (
        LAYOUT + "<p>{{ customer.first_name + rhythm.orders }}</p>\n{% endblock %}\n",
        "cannot be worked out",
    ),
    "range.html.j2": (LAYOUT + "<p>{{ range(100000000) | list }}</p>\n{% endblock %}\n", "large"),
    "gbk.html.j2": (
        (LAYOUT + "<p>您好，欢迎回来</p>\n{% endblock %}\n").encode("gbk"),
        "save it as UTF-8",
    ),
    "interest.html.j2": (
        LAYOUT + "<p>{{ customer.interests[0] }}</p>\n{% endblock %}\n",
        "(for a one-time buyer with only an email)",
    ),
    "company.html.j2": (
        LAYOUT + "<p>{{ customer.company }}</p>\n{% endblock %}\n",
        "customer.company is empty for some customers",
    ),
    "gap.html.j2": (
        LAYOUT + "<p>{{ rhythm.expected_gap_days | round }}</p>\n{% endblock %}\n",
        "rhythm.expected_gap_days is empty for some customers",
    ),
    "silent.html.j2": (
        LAYOUT + "<p>{{ rhythm.days_silent }} days</p>\n{% endblock %}\n",
        "(for a customer with no orders yet)",
    ),
    "surrogate.html.j2": (
        LAYOUT + '<p>{{ "\\ud83d\\ude00" }}</p>\n{% endblock %}\n',
        "write the character itself",
    ),
    "huge.html.j2": (
        LAYOUT + '<p>{{ "lorem ipsum " * 3000000 }}</p>\n{% endblock %}\n',
        "mail servers refuse mail that large",
    ),
    "loops.html.j2": (
        LAYOUT
        + "<p>{% for a in range(3000) %}{% for b in range(3000) %}word {% endfor %}"
        + "{% endfor %}</p>\n{% endblock %}\n",
        "mail servers refuse mail that large",
    ),
    "listed.html.j2": (
        LAYOUT + "<p>{{ customer.interests }}</p>\n{% endblock %}\n",
        "prints a Python list, not text",
    ),
    "function.html.j2": (
        LAYOUT + "<p>{{ track }}</p>\n{% endblock %}\n",
        "prints a Python function, not text",
    ),
    "infinite.html.j2": (
        LAYOUT + "<p>{{ 9.9e307 * 10 }}</p>\n{% endblock %}\n",
        "a number printed here is inf",
    ),
    "script.html.j2": (
        LAYOUT + "<p><a href=\"{{ track('javascript:alert(1)') }}\">x</a></p>\n{% endblock %}\n",
        "track() takes a web address",
    ),
    "weekday.html.j2": (
        LAYOUT + "<p>{{ customer.birthday | date('%A %d %B') }}</p>\n{% endblock %}\n",
        "needs a year this date does not have",
    ),
    "none.html.j2": (
        LAYOUT + "<p>{{ none }}</p>\n{% endblock %}\n",
        "a value printed here is empty (None)",
    ),
    "pprint.html.j2": (
        LAYOUT + "<p>{{ customer.company | pprint }}</p>\n{% endblock %}\n",
        "customer.company is empty for some customers",
    ),
    "gap-pprint.html.j2": (
        LAYOUT + "<p>{{ rhythm.expected_gap_days | pprint }}</p>\n{% endblock %}\n",
        "rhythm.expected_gap_days is empty for some customers",
    ),
    "power.html.j2": (
        LAYOUT + "<p>{{ 2 ** 100000 }}</p>\n{% endblock %}\n",
        "a number here is too large to print",
    ),
    "first.html.j2": (
        LAYOUT + "<p>{{ customer.interests | first }}</p>\n{% endblock %}\n",
        "customer.interests is empty for this customer, so | first has no item to give: "
        "check it first with {% if customer.interests %}",
    ),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_validate_reports_each_crash_at_its_line_and_the_other_campaigns_still_load(
    tmp_path: Path, name: str
) -> None:
    body, says = BROKEN[name]
    folders(tmp_path, {name: body})
    ws = workspace(tmp_path)
    result = authoring.validate(ws, [tmp_path / "campaigns"], root=tmp_path)
    problems = [p for p in result.problems if "try" in p.file]
    assert problems, f"{name} should be reported"
    assert problems[0].file.endswith(f"try/{name}")
    # Where the size ran over, or which byte, is not a line of the template.
    unlined = ("gbk.html.j2", "surrogate.html.j2", "loops.html.j2")
    assert problems[0].line == 4 or name in unlined, problems[0]
    assert "templates/templates" not in problems[0].file
    assert says in problems[0].message, str(problems[0])
    assert "Traceback" not in str(problems[0])
    slug = name.split(".")[0]
    assert f"try-{slug}" not in result.campaigns
    assert {"habit-lapsed-tips", "declining-check-in", "what-we-changed"} <= set(result.campaigns)


def test_the_other_template_problems_a_marketer_meets(tmp_path: Path) -> None:
    folders(
        tmp_path,
        {
            "empty.html.j2": "",
            "blank.html.j2": "{% if customer.company %}<p>Hi {{ customer.company }}</p>{% endif %}",
            "layout.html.j2": '{% extends "layout/nowhere.html.j2" %}\n',
        },
    )
    result = authoring.validate(workspace(tmp_path), [tmp_path / "campaigns"], root=tmp_path)
    said = {Path(p.file).name: p for p in result.problems}
    assert "has no text" in said["empty.html.j2"].message
    # Empty only for a customer without a company: still a mail with nothing in it.
    assert "has no text" in said["blank.html.j2"].message
    assert "(for a one-time buyer with only an email)" in said["blank.html.j2"].message
    # The file that names a missing layout is blamed, and the layout it names is given.
    assert "'layout/nowhere.html.j2'" in said["layout.html.j2"].message
    assert said["layout.html.j2"].line == 1


def test_validate_on_the_terminal_names_the_line_and_still_passes_the_good_ones(
    tmp_path: Path,
) -> None:
    folders(tmp_path, {"company.html.j2": BROKEN["company.html.j2"][0]})
    result = cli(
        "validate",
        cwd=tmp_path,
        env={
            "REENGAGE_CAMPAIGNS_DIR": str(tmp_path / "campaigns"),
            "REENGAGE_TEMPLATES_DIR": str(tmp_path / "templates"),
        },
    )
    assert result.returncode == 1
    assert "templates/try/company.html.j2:4: customer.company is empty" in result.stderr
    assert "Traceback" not in result.stderr
    assert "ok  campaigns/habit-lapsed-tips.yaml" in result.stdout


# Each runs long for every customer, printing nothing while it does; the loop is line 4.
SLOW = {
    "nested.html.j2": (
        LAYOUT + "<p>{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}"
        "{% endfor %}done</p>\n{% endblock %}\n"
    ),
    "quadratic.html.j2": (
        LAYOUT + "{% set ns = namespace(s=[]) %}{% for i in range(99999) %}"
        "{% set ns.s = ns.s + [i] %}{% endfor %}<p>x</p>\n{% endblock %}\n"
    ),
}


@pytest.mark.parametrize("name", sorted(SLOW))
def test_validate_stops_a_template_that_runs_too_long_at_its_loop(
    tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A shorter limit than the real one, so four sample customers take two seconds in all;
    # the real one is run by the next test, through the command.
    monkeypatch.setattr(limits, "MAX_RENDER_SECONDS", 0.5)
    folders(tmp_path, {name: SLOW[name]})
    started = time.monotonic()
    result = authoring.validate(workspace(tmp_path), [tmp_path / "campaigns"], root=tmp_path)
    assert time.monotonic() - started < 60  # it ends: before, it never did (or took minutes)
    problems = [p for p in result.problems if "try" in p.file]
    assert [(p.file.split("templates/")[-1], p.line) for p in problems] == [(f"try/{name}", 4)]
    assert problems[0].message.startswith(
        "takes over 0.5 seconds to make for this customer (a loop that runs too long"
    ), problems[0].message
    assert f"try-{name.split('.')[0]}" not in result.campaigns
    assert {"habit-lapsed-tips", "declining-check-in", "what-we-changed"} <= set(result.campaigns)


def test_the_validate_command_ends_when_a_loop_runs_too_long_for_one_customer(
    tmp_path: Path,
) -> None:
    # Too long only for the sample customer called Ana: the real limit, once.
    loop = (
        SLOW["nested.html.j2"]
        .replace("<p>{% for", "<p>{% if customer.first_name == 'Ana' %}{% for")
        .replace("done</p>", "{% endif %}done</p>")
    )
    folders(tmp_path, {"slow.html.j2": loop})
    started = time.monotonic()
    result = cli(
        "validate",
        cwd=tmp_path,
        env={
            "REENGAGE_CAMPAIGNS_DIR": str(tmp_path / "campaigns"),
            "REENGAGE_TEMPLATES_DIR": str(tmp_path / "templates"),
        },
    )
    assert time.monotonic() - started < 120
    assert result.returncode == 1
    assert (
        "templates/try/slow.html.j2:4: takes over 2 seconds to make for this customer"
        in result.stderr
    ), result.stderr
    assert "(for a steady customer with every field filled)" in result.stderr
    assert "Traceback" not in result.stderr
    assert "ok  campaigns/habit-lapsed-tips.yaml" in result.stdout


@pytest.fixture
def sink() -> Iterator[tuple[Sink, int]]:
    with running_sink() as running:
        yield running


ZED_FAILS = "{% if customer.first_name == 'Zed' %}{{ 1 / 0 }}{% endif %}"


@pytest.mark.parametrize("broken", ["template", "subject"])
def test_a_template_that_fails_for_one_customer_fails_that_mail_alone_until_it_is_fixed(
    store: Store, tmp_path: Path, sink: tuple[Sink, int], database_url: str, broken: str
) -> None:
    handler, port = sink
    # Passes validate (no sample customer is called Zed), fails for the real Zed: in the
    # template's body, or in the campaign file's subject line.
    template = LAYOUT + f"<p>{ZED_FAILS if broken == 'template' else 'Hi'}</p>\n{{% endblock %}}\n"
    (tmp_path / "campaigns").mkdir()
    (tmp_path / "templates" / "try").mkdir(parents=True)
    shutil.copytree(ROOT / "templates" / "layout", tmp_path / "templates" / "layout")
    (tmp_path / "templates" / "try" / "zed.html.j2").write_text(template)
    campaign = CAMPAIGN.format(id="try-zed", template="try/zed.html.j2")
    if broken == "subject":
        campaign = campaign.replace('subject: "Hello', f'subject: "{ZED_FAILS}Hello')
    (tmp_path / "campaigns" / "try-zed.yaml").write_text(campaign)
    (tmp_path / "customers.csv").write_text(
        "customer_id,email,first_name\nc1,ana@example.com,Ana\nc2,zed@example.com,Zed\n"
        "c3,bo@example.com,Bo\n"
    )
    lines = ["customer_id,occurred_at,amount"]
    for cid in ("c1", "c2", "c3"):
        lines += [f"{cid},{(START - timedelta(days=60 + 7 * i)).date()},50" for i in range(6)]
    (tmp_path / "orders.csv").write_text("\n".join(lines) + "\n")
    for kind, name in ((Kind.CUSTOMERS, "customers.csv"), (Kind.ACTIVITIES, "orders.csv")):
        assert import_file(store, kind, tmp_path / name, now=START, zone=ZoneInfo("UTC")).ok
    ws = workspace(tmp_path, port)
    clock = {"now": START}
    service = Service(store, SmtpMailer("127.0.0.1", port), ws, clock=lambda: clock["now"])

    async def passes(count: int) -> None:
        for _ in range(count):
            await service.run_once()
            clock["now"] += timedelta(hours=1)
        await service.mailer.close()

    asyncio.run(passes(3))
    assert sorted(m["to"][0] for m in handler.received) == ["ana@example.com", "bo@example.com"]
    assert store.sending.message_counts() == {"sent": 2, "failed": 1}
    env = {
        "REENGAGE_DATABASE_URL": database_url,
        "REENGAGE_CAMPAIGNS_DIR": str(tmp_path / "campaigns"),
        "REENGAGE_TEMPLATES_DIR": str(tmp_path / "templates"),
        "REENGAGE_SMTP_PORT": str(port),
        "REENGAGE_NOW": clock["now"].isoformat(),
    }
    listed = cli("sends", "list", "--status", "failed", cwd=tmp_path, env=env)
    assert listed.returncode == 0, listed.stderr
    assert "c2 <zed@example.com>" in listed.stdout
    assert "try-zed/first" in listed.stdout
    assert "by zero" in listed.stdout
    if broken == "template":
        assert "zed.html.j2:4" in listed.stdout
    else:  # which campaign, which step, which line of it, and where to see its file
        assert "campaign 'try-zed', step 'first', subject:" in listed.stdout
        assert "reengage validate" in listed.stdout
    doctor = cli("doctor", cwd=tmp_path, env=env)
    assert "1 message(s) were never sent: a template failed" in doctor.stdout

    # Still failing: another pass sends nothing more, and nobody gets a second mail.
    asyncio.run(passes(2))
    assert len(handler.received) == 2
    # Fixed, then retried on purpose: Zed gets the mail once; nobody else gets another.
    (tmp_path / "templates" / "try" / "zed.html.j2").write_text(
        LAYOUT + "<p>Nice to see you, {{ customer.first_name or 'friend' }}.</p>\n{% endblock %}\n"
    )
    (tmp_path / "campaigns" / "try-zed.yaml").write_text(
        CAMPAIGN.format(id="try-zed", template="try/zed.html.j2")
    )
    retried = cli("sends", "retry", "--failed", cwd=tmp_path, env=env)
    assert retried.returncode == 0, retried.stderr
    assert "1 mail(s) queued to be sent again" in retried.stdout
    asyncio.run(passes(3))
    assert sorted(m["to"][0] for m in handler.received) == [
        "ana@example.com",
        "bo@example.com",
        "zed@example.com",
    ]
    assert "Nice to see you, Zed" in str(handler.received[-1]["message"].get_body(("html",)))
    assert store.sending.message_counts() == {"sent": 3}


def test_a_sequence_that_changes_language_mid_way_is_a_warning_that_names_what_to_add(
    tmp_path: Path,
) -> None:
    folders(tmp_path, {})
    # The shipped habit campaign speaks Chinese in every step; take one step's variant away.
    (tmp_path / "templates" / "tips" / "tip-2.zh-CN.html.j2").unlink()
    result = authoring.validate(workspace(tmp_path), [tmp_path / "campaigns"], root=tmp_path)
    assert "habit-lapsed-tips" in result.campaigns  # a warning does not stop it loading
    [warning] = result.problems
    assert warning.severity == "warning"
    assert warning.file == "campaigns/habit-lapsed-tips.yaml"
    assert "steps[2]" in warning.field
    assert "add tips/tip-2.zh-CN.html.j2" in warning.message
    shown = cli(
        "validate",
        cwd=tmp_path,
        env={
            "REENGAGE_CAMPAIGNS_DIR": str(tmp_path / "campaigns"),
            "REENGAGE_TEMPLATES_DIR": str(tmp_path / "templates"),
        },
    )
    assert shown.returncode == 0, shown.stderr
    assert "warning: steps[2].template: zh-CN customers get this step" in shown.stderr
    assert "1 warning(s)" in shown.stdout


def test_validate_says_when_the_footer_is_moved_and_why_and_still_loads_the_campaign(
    tmp_path: Path,
) -> None:
    page = "<html><body><p>Hello, a tip about your grinder.</p>{}</body></html>"
    folders(
        tmp_path,
        {
            "comment.html.j2": page.format("<!-- {{ footer }} -->"),
            "details.html.j2": page.format("<details>{{ footer }}</details>"),
            "xmp.html.j2": page.format("<xmp>{{ footer }}</xmp>"),
            "none.html.j2": page.format('<div style="display:none">{{ footer }}</div>'),
            "shown.html.j2": page.format("<div>{{ footer }}</div>"),
        },
    )
    result = authoring.validate(workspace(tmp_path), [tmp_path / "campaigns"], root=tmp_path)
    moved = {p.file: p for p in result.problems if "footer" in p.message}
    assert sorted(moved) == [
        "campaigns/try-comment.yaml",
        "campaigns/try-details.yaml",
        "campaigns/try-none.yaml",
        "campaigns/try-xmp.yaml",
    ]
    for name, why in [
        ("comment", "inside an HTML comment"),
        ("details", "inside <details> without `open`"),
        ("xmp", "inside <xmp>, whose content is shown as raw text"),
        ("none", 'inside <div style="display:none">, which hides it'),
    ]:
        warning = moved[f"campaigns/try-{name}.yaml"]
        assert warning.severity == "warning" and warning.line > 1
        assert f"moved to the end of the mail: try/{name}.html.j2" in warning.message
        assert why in warning.message
        assert f"try-{name}" in result.campaigns  # the mail still goes, footer and all


TWO_STEPS = """\
id: live
name: Live
audience:
  lapsed: {factor: 2.0, min_days_silent: 14}
holdout_percent: 0
send_window: {hours: "00:00-24:00", days: [mon, tue, wed, thu, fri, sat, sun]}
from: "Acme <hello@acme.example>"
steps:
  - key: s1
    after: 0d
    subject: "Hello {{ customer.first_name or 'there' }}"
    template: try/live.html.j2
  - key: s2
    after: 1d
    subject: "Again"
    template: try/live.html.j2
"""


@pytest.mark.parametrize("breakage", ["yaml", "template"])
@pytest.mark.parametrize("process", ["running daemon", "fresh process"])
def test_a_campaign_broken_mid_sequence_never_ends_its_sequences(
    store: Store, tmp_path: Path, sink: tuple[Sink, int], breakage: str, process: str
) -> None:
    handler, port = sink
    (tmp_path / "campaigns").mkdir()
    (tmp_path / "templates" / "try").mkdir(parents=True)
    shutil.copytree(ROOT / "templates" / "layout", tmp_path / "templates" / "layout")
    template = tmp_path / "templates" / "try" / "live.html.j2"
    good = LAYOUT + "<p>Good</p>\n{% endblock %}\n"
    template.write_text(good)
    campaign = tmp_path / "campaigns" / "live.yaml"
    campaign.write_text(TWO_STEPS)
    (tmp_path / "customers.csv").write_text(
        "customer_id,email,first_name\nc1,ana@example.com,Ana\nc2,bo@example.com,Bo\n"
    )
    lines = ["customer_id,occurred_at,amount"]
    for cid in ("c1", "c2"):
        lines += [f"{cid},{(START - timedelta(days=60 + 7 * i)).date()},50" for i in range(6)]
    (tmp_path / "orders.csv").write_text("\n".join(lines) + "\n")
    for kind, name in ((Kind.CUSTOMERS, "customers.csv"), (Kind.ACTIVITIES, "orders.csv")):
        assert import_file(store, kind, tmp_path / name, now=START, zone=ZoneInfo("UTC")).ok
    clock = {"now": START}

    def daemon() -> Service:
        ws = workspace(tmp_path, port)
        return Service(store, SmtpMailer("127.0.0.1", port), ws, clock=lambda: clock["now"])

    async def passes(service: Service, count: int) -> None:
        for _ in range(count):
            await service.run_once()
            clock["now"] += timedelta(hours=6)
        await service.mailer.close()

    first = daemon()
    asyncio.run(passes(first, 1))
    assert len(handler.received) == 2  # the first step went to both
    if breakage == "yaml":
        campaign.write_text(TWO_STEPS.replace("holdout_percent: 0", "holdout_percent: lots"))
    else:
        template.write_text(LAYOUT + "<p>{{ customer.first_name or 'there' </p>\n")
    if process == "running daemon":
        asyncio.run(passes(first, 8))
        if breakage == "yaml":  # it keeps the last good version: step two goes out on time
            assert len(handler.received) == 4
            return
        # A broken template cannot make the mail: the sequences wait, nothing is failed.
        assert len(handler.received) == 2
        assert store.sending.message_counts() == {"sent": 2}
        template.write_text(good)
        asyncio.run(passes(first, 8))
        assert len(handler.received) == 4
        return
    # A fresh process (cron's run --once, a restart) has no last good version: the
    # sequences wait for the fix instead of ending.
    asyncio.run(passes(daemon(), 8))
    assert len(handler.received) == 2
    held = [
        s
        for _, c, s, _ in store.sending.enrollment_history(
            list(store.customers.customer_ids(["c1", "c2"]).values()), START
        )
        if c == "live"
    ]
    assert held == ["active", "active"]
    template.write_text(good)
    campaign.write_text(TWO_STEPS)
    asyncio.run(passes(daemon(), 8))
    assert sorted(str(m["message"]["Subject"]) for m in handler.received) == [
        "Again",
        "Again",
        "Hello Ana",
        "Hello Bo",
    ]
