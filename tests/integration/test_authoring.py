"""validate, preview and simulate against real template files and real databases."""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email import policy
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from reengage import authoring, compose
from reengage.campaigns import Campaign, parse_campaign
from reengage.config import load_settings
from reengage.ingest import Kind, import_file
from reengage.seed import write_dataset
from reengage.store import Store

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def workspace(
    templates: Path = ROOT / "templates", campaigns: Path = ROOT / "campaigns", **extra: object
) -> compose.Workspace:
    settings = load_settings(
        env_file=None,
        templates_dir=templates,
        campaigns_dir=campaigns,
        secret_key="k" * 40,
        **extra,
    )
    return compose.Workspace.from_settings(settings)


def test_the_shipped_campaigns_and_templates_validate() -> None:
    result = authoring.validate(workspace(), [ROOT / "campaigns"], root=ROOT)
    assert [str(p) for p in result.problems] == []
    assert set(result.campaigns) == {"habit-lapsed-tips", "declining-check-in", "what-we-changed"}


CAMPAIGN = """\
id: broken-templates
name: Broken templates
audience:
  lapsed: {factor: 2}
from: "Acme <hello@acme.example>"
steps:
  - key: one
    after: 0d
    subject: "Hi {{ customer.first_name or 'there' }}"
    template: {template}
"""


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (None, "campaigns/c.yaml:10: steps[0].template: {templates}/x.html.j2 not found"),
        (
            "<p>\n{% if customer.first_name %}\n<b>hi</b>\n",
            "{templates}/x.html.j2:2: syntax "
            "error: Unexpected end of template. Jinja was looking for the following tags: "
            "'elif' or 'else' or 'endif'. The innermost block that needs to be closed is 'if'.",
        ),
        (
            "<p>Hello</p>\n<p>{{ customer.frist_name }}</p>\n",
            "{templates}/x.html.j2:2: "
            "'dict object' has no attribute 'frist_name': templates can use customer, rhythm, "
            "campaign, step, company, links, track(), subject and footer",
        ),
        ("<p>{{ customer.__class__.__mro__ }}</p>\n", "{templates}/x.html.j2:1: "),
    ],
)
def test_template_problems_are_caught_by_validation(
    tmp_path: Path, body: str | None, expected: str
) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    if body is not None:
        (templates / "x.html.j2").write_text(body)
    campaigns = tmp_path / "campaigns"
    campaigns.mkdir()
    (campaigns / "c.yaml").write_text(CAMPAIGN.replace("{template}", "x.html.j2"))
    result = authoring.validate(workspace(templates, campaigns), [campaigns], root=tmp_path)
    found = [str(p) for p in result.problems]
    assert len(found) == 1
    assert found[0].startswith(expected.replace("{templates}", str(templates)))
    assert result.campaigns == {}


def test_a_broken_file_is_skipped_and_the_others_load(tmp_path: Path) -> None:
    campaigns = tmp_path / "campaigns"
    campaigns.mkdir()
    for name in ("habit-lapsed-tips.yaml", "what-we-changed.yaml"):
        (campaigns / name).write_text((ROOT / "campaigns" / name).read_text())
    (campaigns / "broken.yaml").write_text("id: [oops\n")
    result = authoring.validate(workspace(campaigns=campaigns), [campaigns], root=tmp_path)
    assert set(result.campaigns) == {"habit-lapsed-tips", "what-we-changed"}
    assert [p.file for p in result.problems] == ["campaigns/broken.yaml"]


@pytest.fixture
def seeded(store: Store, tmp_path: Path) -> Store:
    data = write_dataset(tmp_path / "data", 300, seed=5, now=NOW)
    for kind, path in (
        (Kind.REPS, data.reps),
        (Kind.CUSTOMERS, data.customers),
        (Kind.ACTIVITIES, data.activities),
    ):
        import_file(store, kind, path, now=NOW, zone=ZoneInfo("UTC"))
    return store


def load(campaign_id: str) -> Campaign:
    campaign, problems = parse_campaign(
        (ROOT / "campaigns" / f"{campaign_id}.yaml").read_text(), campaign_id
    )
    assert problems == []
    assert campaign is not None
    return campaign


def test_every_mail_step_previews_for_a_demo_customer(seeded: Store, tmp_path: Path) -> None:
    ws = workspace()
    for campaign_id in ("habit-lapsed-tips", "declining-check-in", "what-we-changed"):
        campaign = load(campaign_id)
        for step in campaign.steps:
            if step.is_call:
                continue
            shown = authoring.preview(
                ws, seeded, campaign, step.key, "C000002", now=NOW, out_dir=tmp_path / "out"
            )
            parsed = email.message_from_bytes(shown.eml.read_bytes(), policy=policy.default)
            assert parsed.get_content_type() == "multipart/alternative"
            html = parsed.get_body(preferencelist=("html",))
            text = parsed.get_body(preferencelist=("plain",))
            assert html is not None
            assert text is not None
            assert "Unsubscribe" in text.get_content()
            assert "1 Example Street" in html.get_content()
            assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            assert "<style" not in shown.rendered.html  # CSS went inline for mail clients
            assert 'style="' in shown.rendered.html


HOSTILE = [
    ("<script>alert(1)</script>", "Smith"),
    ("Eve\r\nBcc: victim@example.org", "O'Hara"),
    ("Bartholomew" * 18, "Long" * 40),
    ("王", "小明"),
]


@pytest.mark.parametrize(("first", "last"), HOSTILE)
def test_a_hostile_name_is_escaped_and_never_breaks_headers_or_layout(
    seeded: Store, tmp_path: Path, first: str, last: str
) -> None:
    csv = tmp_path / "hostile.csv"
    csv.write_text(
        "customer_id,email,first_name,last_name\n"
        f'C000002,x@example.com,"{first}","{last}"\n'.replace('"', '"'),
        encoding="utf-8",
    )
    report = import_file(seeded, Kind.CUSTOMERS, csv, now=NOW, zone=ZoneInfo("UTC"))
    assert report.ok, report.rejected
    shown = authoring.preview(
        workspace(),
        seeded,
        load("habit-lapsed-tips"),
        "we-miss-you",
        "C000002",
        now=NOW,
        out_dir=tmp_path / "out",
    )
    raw = shown.eml.read_bytes()
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert parsed["Bcc"] is None
    assert "victim@example.org" not in (parsed["To"] or "").split("<")[-1]
    assert parsed["To"].addresses[0].addr_spec == "x@example.com"
    html = shown.rendered.html
    assert "<script>alert" not in html
    assert html.count("reengage-footer") == 1
    assert html.rstrip().endswith("</html>")
    subject = parsed["Subject"]
    assert "\n" not in subject
    assert "\r" not in subject
    if first == "王":
        assert subject.startswith("王")


def test_customer_locale_picks_the_translation_with_fallback(seeded: Store, tmp_path: Path) -> None:
    csv = tmp_path / "locale.csv"
    csv.write_text(
        "customer_id,email,locale\nC000002,a@example.com,zh-CN\nC000003,b@example.com,fr\n"
    )
    import_file(seeded, Kind.CUSTOMERS, csv, now=NOW, zone=ZoneInfo("UTC"))
    campaign = load("habit-lapsed-tips")
    chinese = authoring.preview(
        workspace(), seeded, campaign, "tip-1", "C000002", now=NOW, out_dir=tmp_path
    )
    french = authoring.preview(
        workspace(), seeded, campaign, "tip-1", "C000003", now=NOW, out_dir=tmp_path
    )
    assert chinese.rendered.template == "tips/tip-1.zh-CN.html.j2"
    assert "五分钟小技巧" in chinese.rendered.html
    assert "退订" in chinese.rendered.text
    assert french.rendered.template == "tips/tip-1.html.j2"


def test_library_reloads_changed_added_and_removed_files_and_names_vanished_steps(
    tmp_path: Path,
) -> None:
    import os
    import shutil

    campaigns = tmp_path / "campaigns"
    shutil.copytree(ROOT / "campaigns", campaigns)
    library = authoring.CampaignLibrary(workspace(campaigns=campaigns))
    first = library.reload()
    assert sorted(first.added) == ["declining-check-in", "habit-lapsed-tips", "what-we-changed"]
    assert library.reload().quiet  # nothing changed: nothing reloaded

    habit = campaigns / "habit-lapsed-tips.yaml"
    habit.write_text(habit.read_text().replace("key: tip-2", "key: tip-two"))
    os.utime(habit, (1, 1))  # a different modification time, whatever the clock says
    (campaigns / "what-we-changed.yaml").unlink()
    shutil.copy(ROOT / "campaigns" / "declining-check-in.yaml", campaigns / "copy.yaml")
    (campaigns / "copy.yaml").write_text(
        (campaigns / "copy.yaml").read_text().replace("id: declining-check-in", "id: copy")
    )
    report = library.reload()
    assert report.changed == ["habit-lapsed-tips"]
    assert report.added == ["copy"]
    assert report.removed == ["what-we-changed"]
    assert report.vanished_steps == {
        "habit-lapsed-tips": ["tip-2"],
        "what-we-changed": ["what-we-changed"],
    }

    (campaigns / "copy.yaml").write_text("id: copy\nname: [broken\n")
    broken = library.reload()
    assert [p.file for p in broken.problems] == [str(campaigns / "copy.yaml")]
    assert "copy" in library.campaigns  # the last good version keeps running
    assert broken.new_problems == broken.problems
    assert broken.kept == {str(campaigns / "copy.yaml"): "copy"}
    # Another file changes: the broken one is still broken, but not news (a daemon logs a
    # problem once, not on every reload), and the news is the new file's alone.
    habit.write_text(habit.read_text().replace("7d", "8d"))
    os.utime(habit, (2, 2))
    (campaigns / "bad-date.yaml").write_text("id: bad-date\nname: x\nskip_dates: [2026-02-30]\n")
    again = library.reload()
    assert str(campaigns / "copy.yaml") in {p.file for p in again.problems}
    assert {p.file for p in again.new_problems} == {str(campaigns / "bad-date.yaml")}
    assert "copy" in library.campaigns


def test_library_keeps_the_running_campaign_when_a_copy_takes_its_id(tmp_path: Path) -> None:
    import os
    import shutil

    campaigns = tmp_path / "campaigns"
    shutil.copytree(ROOT / "campaigns", campaigns)
    library = authoring.CampaignLibrary(workspace(campaigns=campaigns))
    library.reload()
    running = library.campaigns["habit-lapsed-tips"]

    copy = campaigns / "habit-copy.yaml"
    copy.write_text((campaigns / "habit-lapsed-tips.yaml").read_text().replace("7d", "3d"))
    clash = library.reload()
    # The copy is the problem: the file that had the id keeps it and runs on.
    assert sorted((p.file, p.line, p.field) for p in clash.problems) == [(str(copy), 2, "id")]
    assert library.campaigns["habit-lapsed-tips"] == running  # the last good version runs on
    assert clash.removed == []
    assert clash.added == []

    copy.write_text(copy.read_text().replace("id: habit-lapsed-tips", "id: habit-faster"))
    os.utime(copy, (1, 1))  # a different modification time, whatever the clock says
    fixed = library.reload()
    assert fixed.problems == []
    assert fixed.added == ["habit-faster"]
    assert library.campaigns["habit-lapsed-tips"] == running
