"""Real campaign folders holding every kind of broken file: each is that file's problem
alone, and the good campaigns beside it still load."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reengage import authoring, compose
from reengage.campaigns import load_campaign, load_campaigns
from reengage.config import load_settings

GOOD = """\
id: {id}
name: Good
audience:
  lapsed: {{factor: 2}}
from: "Acme <hello@acme.example>"
steps:
  - key: one
    after: 0d
    subject: Hello
    template: x.html.j2
"""


def good(campaign_id: str) -> str:
    return GOOD.format(id=campaign_id)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    campaigns = tmp_path / "campaigns"
    campaigns.mkdir()
    (campaigns / "good.yaml").write_text(good("good"))
    return campaigns


def messages(folder: Path) -> tuple[set[str], list[str]]:
    result = load_campaigns([folder], root=folder.parent)
    return set(result.campaigns), [str(p) for p in result.problems]


def test_a_date_that_makes_yaml_raise_is_one_files_problem(folder: Path) -> None:
    (folder / "holidays.yaml").write_text(
        good("holidays") + "send_window: {skip_dates: [2026-02-30]}\n"
    )
    assert messages(folder) == (
        {"good"},
        [
            "campaigns/holidays.yaml:11: send_window.skip_dates[0]: '2026-02-30' is not a day "
            "in the calendar (day is out of range for month); write days like 2026-12-25"
        ],
    )


def test_a_file_saved_as_gbk_is_told_to_be_saved_as_utf8(folder: Path) -> None:
    text = good("chinese").replace("subject: Hello", "subject: 您好")
    (folder / "chinese.yaml").write_bytes(text.encode("gbk"))
    loaded, found = messages(folder)
    assert loaded == {"good"}
    assert found == [
        "campaigns/chinese.yaml:9: the file is not saved as UTF-8: byte 0xC4 on line 9, column "
        "14 is not UTF-8 (it looks like GBK or another Chinese encoding); open the file in your "
        "editor and save it as UTF-8"
    ]


def test_a_folder_named_like_a_campaign_file_is_reported_and_its_contents_still_read(
    folder: Path,
) -> None:
    (folder / "spring.yaml").mkdir()
    (folder / "spring.yaml" / "sale.yaml").write_text(good("sale"))
    assert messages(folder) == (
        {"good", "sale"},
        [
            "campaigns/spring.yaml:1: is a folder, not a campaign file: give it a name that "
            "does not end in .yaml"
        ],
    )


def test_a_pipe_a_dangling_link_and_an_empty_file_never_block_or_crash(folder: Path) -> None:
    os.mkfifo(folder / "pipe.yaml")  # reading it would wait for a writer for ever
    (folder / "link.yaml").symlink_to(folder / "gone.yaml")
    (folder / "empty.yaml").write_text("")
    assert messages(folder) == (
        {"good"},
        [
            "campaigns/empty.yaml:1: the file is empty: a campaign needs at least id:, name:, "
            "from: and steps:",
            f"campaigns/link.yaml:1: is a link to {folder / 'gone.yaml'}, which does not "
            "exist: a campaign is a .yaml text file",
            "campaigns/pipe.yaml:1: is not a plain file (a pipe or a device): a campaign is a "
            ".yaml text file",
        ],
    )


def test_a_file_that_cannot_be_read_says_why(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    locked = folder / "locked.yaml"
    locked.write_text(good("locked"))
    real_open = Path.open

    def refuse(self: Path, *args: object, **kwargs: object) -> object:
        if self.name == "locked.yaml":
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(Path, "open", refuse)
    assert messages(folder) == (
        {"good"},
        [
            "campaigns/locked.yaml:1: cannot be read (Permission denied): check that reengage "
            "may read it"
        ],
    )


def test_hidden_files_are_left_out(folder: Path) -> None:
    (folder / ".#good.yaml").symlink_to("root@host.1234")  # an editor's lock file
    (folder / ".drafts").mkdir()
    (folder / ".drafts" / "draft.yaml").write_text("id: [broken\n")
    assert messages(folder) == ({"good"}, [])


def aged(path: Path, text: str, seconds: int) -> Path:
    """Write ``path`` and give it a modification time ``seconds`` after the epoch."""
    path.write_text(text)
    os.utime(path, (seconds, seconds))
    return path


def kept_by(keeper: str, copy: str, why: str, line: int = 1) -> str:
    return (
        f"campaigns/{copy}:{line}: id: 'good' is already the id of campaigns/{keeper} ({why}), "
        "which keeps it: give this campaign its own id; this file does not load until then"
    )


def test_of_two_files_with_one_id_the_older_keeps_it_and_the_newer_is_reported(
    folder: Path,
) -> None:
    # Copying an existing campaign to start a new one leaves the campaign that was there
    # running: the copy, being newer, is the file with the problem.
    aged(folder / "good.yaml", good("good"), 1_000)
    copy = aged(folder / "copy.yaml", "# a copy\n" + good("good").replace("Good", "Copy"), 2_000)
    (folder / "other.yaml").write_text(good("other"))
    result = load_campaigns([folder], root=folder.parent)
    assert set(result.campaigns) == {"good", "other"}
    assert result.campaigns["good"].name == "Good"
    assert result.sources["good"] == folder / "good.yaml"
    assert result.labels["good"] == "campaigns/good.yaml"
    assert [str(p) for p in result.problems] == [
        kept_by("good.yaml", "copy.yaml", "the older file", line=2)
    ]
    assert [p.is_error for p in result.problems] == [True]

    # Whichever is older keeps the id, whatever the names.
    os.utime(copy, (500, 500))
    result = load_campaigns([folder], root=folder.parent)
    assert result.campaigns["good"].name == "Copy"
    assert result.sources["good"] == copy
    assert [str(p) for p in result.problems] == [
        kept_by("copy.yaml", "good.yaml", "the older file")
    ]


def test_of_files_with_one_id_and_one_age_the_first_by_name_keeps_it(folder: Path) -> None:
    aged(folder / "good.yaml", good("good"), 1_000)
    aged(folder / "b.yaml", good("good").replace("Good", "B"), 1_000)
    aged(folder / "c.yaml", good("good").replace("Good", "C"), 3_000)
    result = load_campaigns([folder], root=folder.parent)
    assert result.campaigns["good"].name == "B"
    assert [str(p) for p in result.problems] == [
        kept_by("b.yaml", "c.yaml", "the older file"),
        kept_by("b.yaml", "good.yaml", "as old as this one and first by name"),
    ]


def test_a_running_campaigns_file_keeps_its_id_even_when_the_other_is_older(
    folder: Path,
) -> None:
    aged(folder / "good.yaml", good("good"), 2_000)
    aged(folder / "copy.yaml", good("good").replace("Good", "Copy"), 1_000)
    result = load_campaigns([folder], root=folder.parent, keep={"good": folder / "good.yaml"})
    assert result.campaigns["good"].name == "Good"
    assert [str(p) for p in result.problems] == [
        kept_by("good.yaml", "copy.yaml", "the running service has this campaign from it")
    ]


def test_a_file_that_does_not_load_still_keeps_its_id_from_a_newer_copy(folder: Path) -> None:
    # The older file has a typo: its campaign waits for the fix, and the copy beside it
    # does not take its place (and its running sequences) in the meantime.
    broken = good("good").replace("after: 0d", "after: 0dd")
    aged(folder / "good.yaml", broken, 1_000)
    aged(folder / "copy.yaml", good("good"), 2_000)
    result = load_campaigns([folder], root=folder.parent)
    assert result.campaigns == {}
    found = [str(p) for p in result.problems]
    assert found[0].startswith("campaigns/good.yaml:8: steps[0].after: ")
    assert found[1:] == [kept_by("good.yaml", "copy.yaml", "the older file")]


def test_a_kept_file_whose_yaml_is_broken_still_holds_its_id(folder: Path) -> None:
    # Its id cannot be read now (mid-edit, say): it is taken to still be the one it had.
    aged(folder / "good.yaml", "id: good\nname: [broken\n", 2_000)
    aged(folder / "copy.yaml", good("good"), 1_000)
    keep = {"good": folder / "good.yaml"}
    result = load_campaigns([folder], root=folder.parent, keep=keep)
    assert result.campaigns == {}
    assert [p.file for p in result.problems] == ["campaigns/good.yaml", "campaigns/copy.yaml"]
    assert "already the id of campaigns/good.yaml" in result.problems[1].message
    # Without a running service to say so, the copy is the only file giving the id.
    assert set(load_campaigns([folder], root=folder.parent).campaigns) == {"good"}


def library(folder: Path) -> authoring.CampaignLibrary:
    """What ``reengage run`` (and ``run --once``, fresh each time) holds the campaigns in."""
    templates = folder.parent / "templates"
    templates.mkdir(exist_ok=True)
    (templates / "x.html.j2").write_text("<p>Hello</p>\n")
    settings = load_settings(
        env_file=None, templates_dir=templates, campaigns_dir=folder, secret_key="k" * 40
    )
    return authoring.CampaignLibrary(compose.Workspace.from_settings(settings))


def test_a_fresh_service_runs_the_older_file_and_reports_the_copy(folder: Path) -> None:
    aged(folder / "good.yaml", good("good"), 1_000)
    aged(folder / "copy.yaml", good("good").replace("Good", "Copy"), 2_000)
    campaigns = library(folder)
    report = campaigns.reload()
    assert campaigns.campaigns["good"].name == "Good"  # its sequences go on, none waits
    assert [(p.file, p.line, p.field) for p in report.problems] == [
        (str(folder / "copy.yaml"), 1, "id")
    ]
    assert f"already the id of {folder / 'good.yaml'} (the older file)" in str(report.problems[0])


def test_a_running_service_keeps_its_campaign_when_an_older_file_takes_its_id(
    folder: Path,
) -> None:
    aged(folder / "good.yaml", good("good"), 2_000)
    campaigns = library(folder)
    assert campaigns.reload().added == ["good"]
    running = campaigns.campaigns["good"]

    # Copied with its modification time kept (cp -p, an unpacked archive): older than good.
    copy = aged(folder / "copy.yaml", good("good").replace("Good", "Copy"), 1_000)
    report = campaigns.reload()
    assert campaigns.campaigns["good"] == running
    assert (report.added, report.changed, report.removed) == ([], [], [])
    assert [(p.file, p.line, p.field) for p in report.problems] == [(str(copy), 1, "id")]
    assert "the running service has this campaign from it" in report.problems[0].message

    # good.yaml changed: it still keeps the id, and its new version runs.
    aged(folder / "good.yaml", good("good").replace("Good", "Better"), 3_000)
    report = campaigns.reload()
    assert report.changed == ["good"]
    assert campaigns.campaigns["good"].name == "Better"
    assert [p.file for p in report.problems] == [str(copy)]

    # The copy given its own id loads beside it.
    aged(copy, good("copy"), 1_500)
    report = campaigns.reload()
    assert report.problems == []
    assert report.added == ["copy"]
    assert campaigns.campaigns["good"].name == "Better"


def test_an_id_that_is_not_sound_is_not_taken_from_anyone(folder: Path) -> None:
    aged(folder / "good.yaml", good("good"), 2_000)
    aged(folder / "bad.yaml", good("Good Bad"), 1_000)
    loaded, found = messages(folder)
    assert loaded == {"good"}
    assert found == ["campaigns/bad.yaml:1: id: 'Good Bad' is not an id like habit-lapsed-tips"]


def test_one_file_read_alone_is_read_from_its_bytes(folder: Path) -> None:
    (folder / "bom.yaml").write_bytes(b"\xef\xbb\xbf" + good("bom").encode())
    campaign, found = load_campaign(folder / "bom.yaml")
    assert found == []
    assert campaign is not None
    assert campaign.id == "bom"


def test_a_huge_file_is_not_read_whole(folder: Path) -> None:
    (folder / "export.yaml").write_text("# " + "x" * 5_000_000 + "\n")
    assert messages(folder) == (
        {"good"},
        [
            "campaigns/export.yaml:1: the file is over 1 MB: a campaign file is a few KB of YAML "
            "text saved as UTF-8 — is it the right file?"
        ],
    )


def test_a_folder_that_cannot_be_listed_is_reported_and_the_other_folders_load(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    real_rglob = Path.rglob

    def refuse(self: Path, pattern: str) -> object:
        if self.name == "locked":
            raise PermissionError(13, "Permission denied", str(self))
        return real_rglob(self, pattern)

    monkeypatch.setattr(Path, "rglob", refuse)
    result = load_campaigns([locked, folder], root=tmp_path)
    assert set(result.campaigns) == {"good"}
    assert [str(p) for p in result.problems] == [
        "locked:1: cannot list the folder (Permission denied)"
    ]
