"""Real campaign folders holding every kind of broken file: each is that file's problem
alone, and the good campaigns beside it still load."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reengage.campaigns import load_campaign, load_campaigns

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


def test_two_files_with_one_id_are_both_reported_and_neither_loads(folder: Path) -> None:
    (folder / "copy.yaml").write_text("# a copy to start a new campaign from\n" + good("good"))
    (folder / "other.yaml").write_text(good("other"))
    assert messages(folder) == (
        {"other"},
        [
            "campaigns/copy.yaml:2: id: 'good' is also the id of campaigns/good.yaml; ids must "
            "be unique, so neither file loads until one is renamed",
            "campaigns/good.yaml:1: id: 'good' is also the id of campaigns/copy.yaml; ids must "
            "be unique, so neither file loads until one is renamed",
        ],
    )


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
