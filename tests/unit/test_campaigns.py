"""Campaign files: every mistake a marketer can make, reported where it is."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from reengage.campaigns import (
    WEEKDAYS,
    Campaign,
    Problem,
    SendWindow,
    parse_campaign,
    parse_filter,
)
from reengage.sendtimes import next_send_time

GOOD = """\
id: habit
name: Habit lapsed
audience:
  lapsed: {factor: 2.0, min_days_silent: 21, max_days_silent: 365}
  where: ["total_value >= 100", "segment in ['retail', 'wholesale']"]
holdout_percent: 10
from: "Acme <hello@acme.example>"
steps:
  - key: we-miss-you
    after: 0d
    subject: "Hello {{ customer.first_name }}"
    template: habit/we-miss-you.html.j2
  - key: tip-1
    after: 7d
    subject: A tip
    template: tips/tip-1.html.j2
  - key: call
    after: 14d
    call: {reason: "No response to two emails", priority: high}
"""


def problems(text: str | bytes) -> list[str]:
    campaign, found = parse_campaign(text, "campaigns/habit.yaml")
    assert campaign is None
    return [str(p) for p in found]


def edit(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new)


def test_the_example_loads() -> None:
    campaign, found = parse_campaign(GOOD, "campaigns/habit.yaml")
    assert found == []
    assert isinstance(campaign, Campaign)
    assert [s.key for s in campaign.steps] == ["we-miss-you", "tip-1", "call"]
    assert campaign.steps[2].is_call


def test_bad_duration_names_file_line_and_field() -> None:
    assert problems(edit("after: 7d", "after: 7dd")) == [
        "campaigns/habit.yaml:14: steps[1].after: '7dd' is not a duration like 7d or 36h "
        "(units: w, d, h, min)"
    ]


def test_unknown_key_suggests_the_close_one() -> None:
    assert problems(edit("holdout_percent: 10", "holdout_precent: 10")) == [
        "campaigns/habit.yaml:6: holdout_precent: unknown key 'holdout_precent'; "
        "did you mean 'holdout_percent'?"
    ]


def test_unknown_nested_key_suggests_from_its_own_section() -> None:
    found = problems(edit("min_days_silent: 21", "min_day_silent: 21"))
    assert found == [
        "campaigns/habit.yaml:4: audience.lapsed.min_day_silent: unknown key 'min_day_silent'; "
        "did you mean 'min_days_silent'?"
    ]


def test_unknown_key_with_nothing_close_lists_the_known_ones() -> None:
    found = problems(edit("holdout_percent: 10", "zzz: 10"))
    assert len(found) == 1
    assert found[0].startswith("campaigns/habit.yaml:6: zzz: unknown key 'zzz'; known keys: ")
    assert "holdout_percent" in found[0]


def test_missing_field_is_named() -> None:
    assert problems(edit('from: "Acme <hello@acme.example>"\n', "")) == [
        "campaigns/habit.yaml:1: 'from' is missing"
    ]


def test_yaml_syntax_error_has_its_line() -> None:
    assert problems(edit("holdout_percent: 10", "holdout_percent: [10")) == [
        "campaigns/habit.yaml:7: this is not valid YAML: expected ',' or ']', but got ':'"
    ]


def test_misspelt_filter_field_suggests_the_right_one() -> None:
    found = problems(edit("total_value >= 100", "total_vlaue >= 100"))
    assert len(found) == 1
    assert found[0].startswith(
        "campaigns/habit.yaml:5: audience.where[0]: 'total_vlaue' is not a field you can "
        "filter on; did you mean 'total_value'?"
    )


@pytest.mark.parametrize(
    "unsafe",
    [
        "__import__('os').system('rm -rf /')",
        "segment.__class__ == 'x'",
        "total_value >= 100 or True",
        "open('/etc/passwd')",
    ],
)
def test_a_filter_that_tries_to_run_code_is_refused(unsafe: str) -> None:
    found = problems(edit("total_value >= 100", unsafe.replace('"', "'")))
    assert len(found) == 1
    assert found[0].startswith("campaigns/habit.yaml:5: audience.where[0]: ")


def test_comparing_text_with_a_number_is_explained() -> None:
    found = problems(edit("total_value >= 100", "segment > 3"))
    assert found == [
        "campaigns/habit.yaml:5: audience.where[0]: 'segment > 3': '>' compares numbers; "
        "'segment' is text"
    ]


def test_mail_step_without_template_and_call_step_with_subject() -> None:
    text = edit("    template: tips/tip-1.html.j2\n", "")
    assert problems(text) == [
        "campaigns/habit.yaml:13: steps[1]: a mail step needs a subject and a template "
        "(template is missing)"
    ]
    text = edit("    call: {reason", "    subject: Hi\n    call: {reason")
    assert problems(text) == [
        "campaigns/habit.yaml:17: steps[2]: a call step has no subject or template"
    ]


def test_duplicate_step_keys() -> None:
    assert problems(edit("key: tip-1", "key: we-miss-you")) == [
        "campaigns/habit.yaml:8: steps: step key 'we-miss-you' is used twice; keys must be unique"
    ]


@pytest.mark.parametrize("condition", ["previous_opened", "previous_not_opened"])
def test_a_condition_on_opens_needs_the_campaign_to_count_them(condition: str) -> None:
    with_condition = edit("subject: A tip\n", f"subject: A tip\n    condition: {condition}\n")
    assert problems(with_condition) == [
        f"campaigns/habit.yaml:8: steps: step 'tip-1' has condition {condition}, but this "
        "campaign does not count opens: add track_opens: true, or use previous_not_clicked "
        "or no_reply"
    ]
    counted, found = parse_campaign(
        with_condition.replace("holdout_percent: 10\n", "holdout_percent: 10\ntrack_opens: true\n"),
        "campaigns/habit.yaml",
    )
    assert found == [] and counted is not None and counted.track_opens


def test_opens_are_not_counted_unless_a_campaign_asks() -> None:
    campaign, _ = parse_campaign(GOOD, "campaigns/habit.yaml")
    assert campaign is not None and campaign.track_opens is False
    assert problems(edit("holdout_percent: 10\n", "holdout_percent: 10\ntrack_opens: maybe\n"))


def test_send_window_mistakes() -> None:
    text = GOOD + 'send_window: {hours: "9-17", days: [mon, funday], timezone: Mars/Base}\n'
    assert problems(text) == [
        "campaigns/habit.yaml:20: send_window.hours: '9-17' is not a time range like 09:00-17:00",
        "campaigns/habit.yaml:20: send_window.days[1]: 'funday' is not allowed; input should "
        "be 'mon', 'tue', 'wed', 'thu', 'fri', 'sat' or 'sun'",
        "campaigns/habit.yaml:20: send_window.timezone: 'Mars/Base' is not 'recipient' or an "
        "IANA time zone like Europe/Berlin",
    ]


def test_bad_sender_and_holdout() -> None:
    text = edit('from: "Acme <hello@acme.example>"', 'from: "Acme hello at acme"')
    assert problems(text) == [
        "campaigns/habit.yaml:7: from: 'Acme hello at acme' is not an address like "
        '"Acme <hello@acme.example>"'
    ]
    found = problems(edit("holdout_percent: 10", "holdout_percent: 80"))
    assert found == [
        "campaigns/habit.yaml:6: holdout_percent: Input should be less than or equal to 50"
    ]


def test_filters_match_as_written() -> None:
    facts = {"segment": "retail", "total_value": 250.0, "tags": ["vip", "b2b"], "locale": "en"}
    assert parse_filter("total_value >= 100").matches(facts)
    assert not parse_filter("total_value > 250").matches(facts)
    assert parse_filter("segment in ['retail', 'wholesale']").matches(facts)
    assert not parse_filter("segment not in ['retail']").matches(facts)
    assert parse_filter("'vip' in tags").matches(facts)
    assert parse_filter("'gold' not in tags").matches(facts)
    assert parse_filter("locale == 'en'").matches(facts)
    assert parse_filter("locale != 'zh-CN'").matches(facts)


def test_holdout_is_stable_and_close_to_its_percentage() -> None:
    campaign, _ = parse_campaign(GOOD, "x")
    assert campaign is not None
    held = [campaign.in_holdout(f"C{i:06d}") for i in range(20_000)]
    assert held == [campaign.in_holdout(f"C{i:06d}") for i in range(20_000)]
    assert 0.09 < sum(held) / len(held) < 0.11
    other, _ = parse_campaign(GOOD.replace("id: habit", "id: other"), "x")
    assert other is not None
    assert [other.in_holdout(f"C{i:06d}") for i in range(200)] != held[:200]


# -- a file can never crash a command ---------------------------------------------------------


def test_a_date_not_in_the_calendar_is_reported_at_its_line() -> None:
    found = problems(GOOD + "send_window: {skip_dates: [2026-12-25, 2026-02-30]}\n")
    assert found == [
        "campaigns/habit.yaml:20: send_window.skip_dates[1]: '2026-02-30' is not a day in the "
        "calendar (day is out of range for month); write days like 2026-12-25"
    ]


@pytest.mark.parametrize(
    ("hours", "why"),
    [
        ("09:00-24:30", "'09:00-24:30' closes after midnight: the latest closing time is 24:00"),
        ("24:00-24:00", "'24:00-24:00' is not a time range like 09:00-17:00: times run from"),
        ("17:00-09:00", "'17:00-09:00' closes before it opens: write the opening time first"),
        ("09:00-09:00", "'09:00-09:00' closes before it opens"),
        ("09:60-17:00", "'09:60-17:00' is not a time range like 09:00-17:00: times run from"),
    ],
)
def test_hours_that_would_never_open_are_refused_at_load(hours: str, why: str) -> None:
    found = problems(GOOD + f'send_window: {{hours: "{hours}"}}\n')
    assert len(found) == 1
    assert found[0].startswith(f"campaigns/habit.yaml:20: send_window.hours: {why}")


def test_a_window_closing_at_midnight_loads_and_opens() -> None:
    campaign, found = parse_campaign(GOOD + 'send_window: {hours: "9:30-24:00"}\n', "c.yaml")
    assert found == []
    assert campaign is not None
    assert campaign.send_window.bounds() == (time(9, 30), time(23, 59, 59))


def test_a_window_whose_every_day_is_skipped_for_a_year_is_refused_at_its_line() -> None:
    mondays = [date(2026, 1, 5) + timedelta(weeks=n) for n in range(52)]
    text = GOOD + f"send_window:\n  days: [mon]\n  skip_dates: [{', '.join(map(str, mondays))}]\n"
    assert problems(text) == [
        "campaigns/habit.yaml:20: send_window: the window never opens from 2025-12-30 to "
        "2027-01-03: every mon in between is in skip_dates, so a mail due then could never be "
        "sent; remove some of those dates"
    ]
    fewer = (
        GOOD + f"send_window:\n  days: [mon]\n  skip_dates: [{', '.join(map(str, mondays[:51]))}]\n"
    )
    campaign, found = parse_campaign(fewer, "c.yaml")
    assert found == []
    assert campaign is not None


@given(
    days=st.sets(st.sampled_from(WEEKDAYS), min_size=1),
    first=st.dates(date(2026, 1, 1), date(2026, 12, 31)),
    weeks=st.integers(45, 56),
    due_offset=st.integers(-3, 400),
    hour=st.integers(0, 23),
)
@settings(max_examples=150, deadline=None)
def test_a_window_that_loads_always_has_a_next_send_time(
    days: set[str], first: date, weeks: int, due_offset: int, hour: int
) -> None:
    skipped = [first + timedelta(days=n) for n in range(weeks * 7)]
    try:
        window = SendWindow.model_validate(
            {"hours": "09:00-17:00", "days": sorted(days), "skip_dates": skipped}
        )
    except ValidationError:
        return  # refused when it loads: nothing ever asks it for a time
    due = datetime.combine(first + timedelta(days=due_offset), time(hour), UTC)
    sent = next_send_time(window, ZoneInfo("UTC"), due)
    assert sent >= due


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "",
            "campaigns/habit.yaml:1: the file is empty: a campaign needs at least id:, name:, "
            "from: and steps:",
        ),
        ("# just a comment\n\n", "campaigns/habit.yaml:1: the file is empty"),
        (
            "- id: habit\n- name: x\n",
            "campaigns/habit.yaml:1: a campaign file is a mapping of "
            "keys like id: and name:, not a list",
        ),
        (
            "just words\n",
            "campaigns/habit.yaml:1: a campaign file is a mapping of keys like id: "
            "and name:, not the single value 'just words'",
        ),
        (GOOD + "1: x\n", "campaigns/habit.yaml:20: '1' is not a key: keys are words like id"),
        (
            GOOD + "? [a, b]\n: x\n",
            "campaigns/habit.yaml:20: this is not valid YAML: found "
            "unhashable key; a key is one word like subject, not a list or a mapping",
        ),
        (
            GOOD.replace("factor: 2.0", "factor: .inf"),
            "campaigns/habit.yaml:4: "
            "audience.lapsed.factor: expected a number (not .inf or .nan), not inf",
        ),
        (
            GOOD.replace("after: 7d", "after: 99999999999999999999d"),
            "campaigns/habit.yaml:14: "
            "steps[1].after: '99999999999999999999d' is longer than a hundred years",
        ),
        (GOOD + "priority: " + "9" * 5000 + "\n", "campaigns/habit.yaml:20: priority: "),
        (
            GOOD.replace("  - key: tip-1", "\t- key: tip-1"),
            "campaigns/habit.yaml:13: this is "
            "not valid YAML: found character '\\t' that cannot start any token; YAML indents with "
            "spaces, never tabs",
        ),
        (
            "a: " + "[" * 100_000 + "]" * 100_000 + "\n",
            "campaigns/habit.yaml:1: this is nested more than 20 levels deep",
        ),
        (
            "a: &a [x, x]\n"
            + "".join(
                f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}]\n"
                for i in range(24)
            ),
            "campaigns/habit.yaml:13: the aliases (*name) here expand to more than 10000 values",
        ),
        ("a: &a [*a]\n", "campaigns/habit.yaml:1: the alias *a is inside the &a it refers to"),
        (
            GOOD + "steps: []\n",
            "campaigns/habit.yaml:20: steps: 'steps' is given twice (first on line 8)",
        ),
        (
            GOOD + "---\nid: other\n",
            "campaigns/habit.yaml:20: this is not valid YAML: a second document starts here; "
            "a campaign file holds one campaign — remove the second '---' or split the file",
        ),
        (
            GOOD + 'reply_to: "hello@acme.example\n',
            "campaigns/habit.yaml:20: this is not valid YAML: the quote opened here is never "
            "closed",
        ),
        (
            GOOD.replace("A tip", "A \x07tip"),
            "campaigns/habit.yaml:15: character U+0007 on line "
            "15, column 16 cannot be in YAML text",
        ),
        (
            GOOD.replace("id: habit", "id: yes"),
            "campaigns/habit.yaml:1: id: expected a text (in "
            "quotes if YAML would read it as something else), not true (YAML reads yes/no/on/off "
            "as true/false: use quotes)",
        ),
        (
            GOOD + "x: !!python/object:os.system ls\n",
            "campaigns/habit.yaml:20: this is not valid YAML: could not determine a constructor",
        ),
    ],
)
def test_every_kind_of_broken_text_is_a_located_problem(text: str, expected: str) -> None:
    found = problems(text)
    assert found
    assert found[0].startswith(expected), found


def test_a_byte_order_mark_is_fine() -> None:
    for source in ("\ufeff" + GOOD, b"\xef\xbb\xbf" + GOOD.encode()):
        campaign, found = parse_campaign(source, "c.yaml")
        assert found == []
        assert campaign is not None


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [
        (
            "gbk",
            "campaigns/habit.yaml:15: the file is not saved as UTF-8: byte 0xC4 on line 15, "
            "column 20 is not UTF-8 (it looks like GBK or another Chinese encoding); open the file "
            "in your editor and save it as UTF-8",
        ),
        (
            "latin-1",
            "campaigns/habit.yaml:15: the file is not saved as UTF-8: byte 0xE9 on line "
            "15, column 19 is not UTF-8 (it looks like Latin-1 or Windows-1252); open the file in "
            "your editor and save it as UTF-8",
        ),
        (
            "utf-16",
            "campaigns/habit.yaml:1: the file is saved as UTF-16 (some editors call it "
            '"Unicode"); save it as UTF-8',
        ),
    ],
)
def test_a_file_not_saved_as_utf8_says_where_and_to_save_it_as_utf8(
    encoding: str, expected: str
) -> None:
    text = GOOD.replace(
        "subject: A tip", "subject: A tip 您好" if encoding == "gbk" else "subject: A café"
    )
    assert problems(text.encode(encoding)) == [expected]


def test_a_binary_file_is_not_read_as_text() -> None:
    assert problems(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR") == [
        "campaigns/habit.yaml:3: this is a binary file (it holds NUL bytes): a campaign file is "
        "a few KB of YAML text saved as UTF-8 — is it the right file?"
    ]


@given(st.text(max_size=400))
@settings(max_examples=400, deadline=None)
def test_no_text_makes_parsing_raise(text: str) -> None:
    parse_campaign(text, "c.yaml")
    parse_campaign(GOOD[: len(text) % len(GOOD)] + text, "c.yaml")


@given(st.binary(max_size=400))
@settings(max_examples=300, deadline=None)
def test_no_bytes_make_parsing_raise(data: bytes) -> None:
    parse_campaign(data, "c.yaml")
    parse_campaign(GOOD.encode()[: len(data) % len(GOOD)] + data, "c.yaml")


YAML_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.dates()
    | st.sampled_from(["0d", "7d", "1m", "09:00-24:30", "zh_CN", "default", "mon", "high"]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.text(max_size=8) | st.sampled_from(["default", "zh-CN", "days", "hours", "reason"]),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@given(data=st.data())
@settings(max_examples=400, deadline=None)
def test_any_value_in_any_field_is_a_problem_or_a_campaign(data: st.DataObject) -> None:
    document = yaml.safe_load(GOOD)
    paths = list(_paths(document))
    path = data.draw(st.sampled_from(paths))
    _put(document, path, data.draw(YAML_VALUES))
    campaign, found = parse_campaign(yaml.safe_dump(document, allow_unicode=True), "c.yaml")
    assert (campaign is None) == bool(found)
    assert all(p.line >= 1 and p.message for p in found)


def _paths(node: object, path: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    found = [path] if path else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*path, index))
    return found


def _put(document: Any, path: tuple[Any, ...], value: object) -> None:
    for part in path[:-1]:
        document = document[part]
    document[path[-1]] = value


# -- per-locale subjects ----------------------------------------------------------------------

LOCALISED = edit(
    "    subject: A tip\n",
    "    subject:\n"
    "      default: Three things you may have missed\n"
    "      zh_cn: 您可能错过的三件事\n"
    "      pt: Três coisas\n",
)


def test_a_subject_can_differ_by_locale_with_the_template_fallback() -> None:
    campaign, found = parse_campaign(LOCALISED, "campaigns/habit.yaml")
    assert found == []
    assert campaign is not None
    step = campaign.steps[1]
    assert step.subject_for("zh-CN") == "您可能错过的三件事"
    assert step.subject_for("zh_CN") == "您可能错过的三件事"
    assert step.subject_for("pt-BR") == "Três coisas"  # the language's, as templates fall back
    assert step.subject_for("zh-TW") == "Three things you may have missed"
    assert step.subject_for("en") == "Three things you may have missed"
    assert step.subject_for("") == "Three things you may have missed"
    assert step.subject == "Three things you may have missed"  # what older callers send
    assert step.subjects() == {
        "default": "Three things you may have missed",
        "zh-CN": "您可能错过的三件事",
        "pt": "Três coisas",
    }


def test_a_plain_subject_is_every_locales_subject() -> None:
    campaign, _ = parse_campaign(GOOD, "c.yaml")
    assert campaign is not None
    assert campaign.steps[1].subject_for("zh-CN") == "A tip"
    assert campaign.steps[1].subjects() == {"default": "A tip"}
    assert campaign.steps[2].subjects() == {}


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "      zh_cn: ",
            "      chinese: ",
            "campaigns/habit.yaml:17: steps[1].subject.chinese: 'chinese' is not a locale like "
            "en, zh-CN or zh-Hant-TW (it starts with a two- or three-letter language code), nor "
            "default",
        ),
        (
            "      pt: Três coisas\n",
            '      pt: ""\n',
            "campaigns/habit.yaml:18: steps[1].subject.pt: the subject is empty: write the text a "
            "customer sees",
        ),
        (
            "      default: Three things you may have missed\n",
            "",
            "campaigns/habit.yaml:15: steps[1].subject: add a default: subject, for customers in "
            "every other locale (this one has zh-CN, pt)",
        ),
        (
            "      pt: Três coisas\n",
            "      zh-CN: 三件事\n",
            "campaigns/habit.yaml:15: steps[1].subject: 'zh_cn' and 'zh-CN' are the same locale "
            "(zh-CN): keep one",
        ),
    ],
)
def test_subject_mapping_mistakes_are_reported_at_their_line(
    old: str, new: str, expected: str
) -> None:
    assert old in LOCALISED
    campaign, found = parse_campaign(LOCALISED.replace(old, new), "campaigns/habit.yaml")
    assert campaign is None
    assert [str(p) for p in found] == [expected]


def test_a_subject_keyed_as_written_is_located_by_its_normal_name() -> None:
    lines: dict[tuple[Any, ...], int] = {}
    campaign, _ = parse_campaign(LOCALISED, "c.yaml", lines)
    assert campaign is not None
    assert lines[("steps", 1, "subject", "zh-CN")] == 17


def test_a_warning_is_shown_as_one_and_is_not_an_error() -> None:
    warning = Problem("campaigns/habit.yaml", 14, "steps[1]", "switches to English", "warning")
    assert str(warning) == "campaigns/habit.yaml:14: warning: steps[1]: switches to English"
    assert not warning.is_error
    assert Problem("c.yaml", 1, "", "broken").is_error


def test_a_very_long_sender_is_refused_by_its_length_at_once() -> None:
    sender = "a@" + "b." * 100_000 + "@"  # the address pattern would take minutes on this
    assert problems(edit('from: "Acme <hello@acme.example>"', f'from: "{sender}"')) == [
        "campaigns/habit.yaml:7: from: is 200003 characters long; a name and address fit in 400"
    ]


def test_an_unknown_key_holding_a_bracket_is_named_not_a_crash() -> None:
    """A key typed as ``id[`` (hypothesis found it) is an unknown key with a hint, like any
    other, never an IndexError that stops the command."""
    campaign, problems = parse_campaign("id[:", "c.yaml")
    assert campaign is None
    assert "unknown key 'id['; did you mean 'id'?" in [p.message for p in problems]
