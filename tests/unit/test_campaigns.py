"""Campaign files: every mistake a marketer can make, reported where it is."""

from __future__ import annotations

import pytest

from reengage.campaigns import Campaign, parse_campaign, parse_filter

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


def problems(text: str) -> list[str]:
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
