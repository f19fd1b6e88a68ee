"""A template stops within its time, and what it prints is never Python's words.

Loops that print nothing, a list rebuilt on every step, loops in macros, includes, layouts
and recursive loops each stop after :data:`MAX_RENDER_SECONDS` with a failure at the line
of the loop. The limit is lowered here so each test takes a fraction of a second; one test
keeps the real limit. No test times anything but an upper bound: that it did not hang.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from reengage.errors import TemplateFailure
from reengage.render import MAX_RENDER_SECONDS, Renderer, Sender, limits, missing

NESTED = (
    "<p>Hello</p>\n"
    "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}done\n"
)
QUADRATIC = (
    "<p>Hello</p>\n"
    "{% set ns = namespace(s=[]) %}\n"
    "{% for i in range(99999) %}{% set ns.s = ns.s + [i] %}{% endfor %}x\n"
)
HANGS = 10.0  # seconds: far past any limit here, short of a hang


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_RENDER_SECONDS", 0.25)


def renderer(tmp_path: Path, files: dict[str, str]) -> Renderer:
    for name, body in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(body, encoding="utf-8")
    return Renderer(tmp_path, Sender("Acme", "1 Example Street"))


def context(**customer: Any) -> dict[str, Any]:
    fields = {"first_name": "Ana", "company": missing("customer.company"), "interests": []}
    return {
        "customer": {**fields, **customer},
        "rhythm": {"expected_gap_days": missing("rhythm.expected_gap_days")},
    }


def failure(tmp_path: Path, files: dict[str, str], name: str = "t.html.j2") -> TemplateFailure:
    r = renderer(tmp_path, files)
    started = time.monotonic()
    with pytest.raises(TemplateFailure) as caught:
        r.render(
            subject="Hi",
            template=name,
            text_template=None,
            context=context(),
            locale="en",
            unsubscribe_url="https://x.example/u",
            pause_url="https://x.example/p",
        )
    assert time.monotonic() - started < HANGS
    assert "Traceback" not in str(caught.value)
    return caught.value


def test_a_loop_in_a_loop_that_prints_nothing_stops_at_its_line_in_real_time(
    tmp_path: Path,
) -> None:
    assert MAX_RENDER_SECONDS == 2.0  # the real limit, once
    failed = failure(tmp_path, {"t.html.j2": NESTED})
    assert (Path(failed.file).name, failed.line) == ("t.html.j2", 2)
    assert failed.problem.startswith(
        "takes over 2 seconds to make for this customer (a loop that runs too long"
    )
    assert failed.problem.endswith("loop over fewer items")


def test_a_list_rebuilt_on_every_step_of_a_long_loop_stops(tmp_path: Path, quick: None) -> None:
    failed = failure(tmp_path, {"t.html.j2": QUADRATIC})
    assert (Path(failed.file).name, failed.line) == ("t.html.j2", 3)
    assert "takes over 0.25 seconds" in failed.problem


def test_a_recursive_loop_stops(tmp_path: Path, quick: None) -> None:
    # Each level loops over items the loop itself hands over: loop(...), not the {% for %}.
    body = (
        "<p>Hello</p>\n"
        "{% for i in range(2) recursive %}\n"
        "{% if loop.depth < 5 %}{{ loop(range(999)) }}{% endif %}{% endfor %}\n"
    )
    failed = failure(tmp_path, {"t.html.j2": body})
    # Stopped at the {% for %} handing out the items, or at loop(…) asking for more.
    assert Path(failed.file).name == "t.html.j2" and failed.line in (2, 3), failed
    assert "takes over" in failed.problem


def test_a_loop_in_a_macro_called_in_a_loop_stops_in_the_macro(tmp_path: Path, quick: None) -> None:
    files = {
        "macros.html.j2": (
            "{% macro row(n) %}\n{% for j in range(n) %}{% endfor %}\n{% endmacro %}\n"
        ),
        "t.html.j2": (
            '{% from "macros.html.j2" import row %}<p>Hello</p>\n'
            "{% for i in range(99999) %}{{ row(99999) }}{% endfor %}\n"
        ),
    }
    failed = failure(tmp_path, files)
    assert (Path(failed.file).name, failed.line) == ("macros.html.j2", 2)


def test_a_macro_calling_itself_over_and_over_stops_without_any_loop(
    tmp_path: Path, quick: None
) -> None:
    body = (
        "<p>Hello</p>\n{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}"
        "{% endmacro %}\n{{ f(60) }}\n"
    )
    failed = failure(tmp_path, {"t.html.j2": body})
    assert Path(failed.file).name == "t.html.j2"
    assert "takes over" in failed.problem


def test_a_loop_in_a_layout_or_in_a_file_customer_data_names_stops_there(
    tmp_path: Path, quick: None
) -> None:
    loop = "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}"
    included = {
        "parts/slow.html.j2": f"<p>Part</p>\n{loop}\n",
        "t.html.j2": (
            "<p>Hello</p>\n"
            '{% include (customer.company or "parts/slow.html.j2") ignore missing %}\n'
        ),
    }
    failed = failure(tmp_path / "include", included)
    assert (failed.file.split("include/")[-1], failed.line) == ("parts/slow.html.j2", 2)
    extended = {
        "layout.html.j2": f"<html><body>{{% block content %}}{{% endblock %}}\n{loop}\n",
        "t.html.j2": '{% extends "layout.html.j2" %}{% block content %}<p>Hi</p>{% endblock %}',
    }
    failed = failure(tmp_path / "extends", extended)
    assert (Path(failed.file).name, failed.line) == ("layout.html.j2", 2)
    in_block = {
        "layout.html.j2": "<html><body>{% block content %}{% endblock %}</body></html>",
        "t.html.j2": (
            '{% extends "layout.html.j2" %}{% block content %}<p>Hi</p>\n'
            f"{{% for x in range(5) %}}{{{{ loop.index }}}}{loop}{{% else %}}none{{% endfor %}}\n"
            "{% endblock %}"
        ),
    }
    failed = failure(tmp_path / "block", in_block)
    assert (Path(failed.file).name, failed.line) == ("t.html.j2", 2)


def test_a_subject_with_a_long_loop_stops(tmp_path: Path, quick: None) -> None:
    r = renderer(tmp_path, {"t.html.j2": "<p>Hello</p>"})
    subject = "Hi {% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}"
    started = time.monotonic()
    problem = r.subject_problem(subject, context())
    assert problem is not None and problem.startswith("takes over 0.25 seconds")
    with pytest.raises(TemplateFailure) as caught:
        r.render(
            subject=subject,
            template="t.html.j2",
            text_template=None,
            context=context(),
            locale="en",
            unsubscribe_url="https://x.example/u",
            pause_url="https://x.example/p",
        )
    assert (caught.value.file, caught.value.line) == ("subject", 1)
    assert "takes over" in caught.value.problem
    assert time.monotonic() - started < HANGS


def test_each_rendering_has_its_own_time_in_its_own_thread(tmp_path: Path, quick: None) -> None:
    r = renderer(
        tmp_path, {"slow.html.j2": NESTED, "fine.html.j2": "<p>{{ customer.first_name }}</p>"}
    )

    def run(name: str) -> str:
        try:
            return r._run(r._html, name, context())
        except TemplateFailure as exc:
            return exc.problem

    with ThreadPoolExecutor(2) as pool:
        slow = pool.submit(run, "slow.html.j2")
        fine = [pool.submit(run, "fine.html.j2") for _ in range(50)]
        assert slow.result(timeout=HANGS).startswith("takes over")
        assert {f.result() for f in fine} == {"<p>Ana</p>"}
    # No clock is left behind: outside a rendering nothing counts or stops.
    assert limits._CLOCK.get() is None
    assert r._html.from_string("{% for i in range(3) %}{{ i }}{% endfor %}").render() == "012"


def test_loops_still_do_what_they_did(tmp_path: Path) -> None:
    body = (
        "{% for i in range(100) %}{% if loop.last %}{{ loop.index }}/{{ loop.length }}"
        "{% endif %}{% endfor %}|{% for x in [] %}x{% else %}empty{% endfor %}"
        "|{% for x in 'abc' %}{{ loop.revindex }}{{ loop.cycle('-', '+') }}{% endfor %}"
        "|{% for x in range(200) if x % 50 == 0 %}{{ x }},{% endfor %}"
        "|{% for n in tree recursive %}{{ n.name }}{% if n.kids %}({{ loop(n.kids) }})"
        "{% endif %}{% endfor %}"
        "|{% for a, b in pairs.items() %}{{ a }}{{ b }}{% endfor %}"
    )
    r = renderer(tmp_path, {"t.html.j2": body})
    tree = [{"name": "a", "kids": [{"name": "b", "kids": []}, {"name": "c", "kids": []}]}]
    made = r._run(r._html, "t.html.j2", {"tree": tree, "pairs": {"k": 1}})
    assert made == "100/100|empty|3-2+1-|0,50,100,150,|a(bc)|k1"


def test_no_template_can_reach_the_loop_counter(tmp_path: Path) -> None:
    # The counting filter's name holds a space: no template can spell it.
    r = renderer(tmp_path, {"t.html.j2": "{{ [1, 2] | reengage counted }}"})
    with pytest.raises(TemplateFailure):
        r._run(r._html, "t.html.j2", {})
    assert " " in limits._COUNTED


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("<p>{{ none }}</p>", "a value printed here is empty (None)"),
        ("<p>{{ [none][0] }}</p>", "a value printed here is empty (None)"),
        ("<p>{{ customer.company | pprint }}</p>", "customer.company is empty for some"),
        ("<p>{{ rhythm.expected_gap_days | pprint }}</p>", "rhythm.expected_gap_days is empty"),
        ("<p>{{ [1, customer.company] | pprint }}</p>", "customer.company is empty for some"),
        ("<p>{{ none | pprint }}</p>", "a value printed here is empty (None)"),
        ("<p>{{ customer.company | default(none) }}</p>", "a value printed here is empty"),
        ("<p>{{ customer.company | default(none) | upper }}</p>", "a value printed here is empty"),
        ("<p>{{ customer.company | default(none) | e }}</p>", "a value printed here is empty"),
    ],
)
def test_nothing_prints_none_or_undefined(tmp_path: Path, body: str, says: str) -> None:
    r = renderer(tmp_path, {"t.html.j2": body, "t.txt.j2": body})
    for env, name in ((r._html, "t.html.j2"), (r._text, "t.txt.j2")):
        with pytest.raises(TemplateFailure) as caught:
            r._run(env, name, context())
        assert says in caught.value.problem, caught.value.problem
        assert caught.value.line == 1


def test_pprint_still_prints_what_is_there(tmp_path: Path) -> None:
    r = renderer(tmp_path, {"t.txt.j2": "{{ customer.first_name | pprint }} {{ [1, 2] | pprint }}"})
    assert r._run(r._text, "t.txt.j2", context()) == "'Ana' [1, 2]"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (
            "{{ 2 ** 100000 }}",
            "a number here is too large to print (over 4300 digits): check the sum",
        ),
        ("{{ 9 ** (9 ** 9) }}", "a number or date here is too large to work out"),
        ("{{ range(100000000) | list }}", "range() here is too large"),
        (
            "{{ customer.interests | first }}",
            "customer.interests is empty for this customer, so | first has no item to give: "
            "check it first with {% if customer.interests %}",
        ),
        ("{{ customer['interests'] | last }}", "{% if customer.interests %}"),
        ("{{ customer.interests | sort | first }}", "the list is empty for this customer"),
        ("{{ customer.company | first }}", "customer.company is empty for some customers"),
        ("{{ customer.interests | max }}", "a list here is empty for this customer"),
    ],
)
def test_problems_are_told_in_a_marketers_words(tmp_path: Path, body: str, says: str) -> None:
    r = renderer(tmp_path, {"t.html.j2": f"<p>Hello</p>\n<p>{body}</p>"})
    started = time.monotonic()
    with pytest.raises(TemplateFailure) as caught:
        r._run(r._html, "t.html.j2", context())
    assert time.monotonic() - started < HANGS
    assert says in caught.value.problem, caught.value.problem
    assert caught.value.line == 2
    for internal in ("sys.", "set_int_max_str_digits", "sequence was empty", "MAX_RANGE"):
        assert internal not in caught.value.problem
    assert "templates can use" not in caught.value.problem


def test_an_empty_lists_first_item_can_have_a_fallback(tmp_path: Path) -> None:
    body = "{{ customer.interests | first | default('coffee') }} {{ [3, 1] | first }}"
    r = renderer(tmp_path, {"t.txt.j2": body})
    assert r._run(r._text, "t.txt.j2", context()) == "coffee 3"


@pytest.mark.parametrize(
    "body",
    [
        '{{ "x" ~ none }}',
        '{{ customer.get("nickname") ~ "" }}',
        '{{ ["a", none] | join(",") }}',
        "{{ [1, none] | map('default', 'q') | join }}",
        '{{ "{!r}".format(customer.company) }}',
        '{{ "{a}".format_map({"a": none}) }}',
        '{{ "%s" | format(none) }}',
        '{{ "%s" % customer.company }}',
        '{{ "a" | replace("a", none) }}',
        '{{ {"a": none} | urlencode }}',
        "{{ none | tojson }}",
        '{{ namespace(a=none).a ~ "" }}',
    ],
)
def test_no_filter_format_or_join_turns_an_empty_value_into_words(
    tmp_path: Path, body: str
) -> None:
    r = renderer(tmp_path, {"t.html.j2": f"<p>Hello</p>\n<p>{body}</p>"})
    with pytest.raises(TemplateFailure) as caught:
        r._run(r._html, "t.html.j2", context())
    assert "empty" in caught.value.problem, caught.value.problem
    assert caught.value.line == 2


def test_joining_a_python_list_into_text_is_a_problem_too(tmp_path: Path) -> None:
    r = renderer(tmp_path, {"t.html.j2": '<p>{{ [none] ~ "" }}</p>'})
    with pytest.raises(TemplateFailure) as caught:
        r._run(r._html, "t.html.j2", context())
    assert "prints a Python list" in caught.value.problem


@pytest.mark.parametrize(
    "body",
    [
        '{% set s = "ab" * 490000 %}{{ (s | replace("a", "a" * 2000)) | length }}',
        '{{ "x" | center(300000000) | length }}',
        '{{ "%0300000000d" | format(1) | length }}',
        '{{ "{:>300000000}".format("x") | length }}',
        '{{ ("%0300000000d" % 1) | length }}',
        '{{ ("line\\n" * 100000) | indent(1000) | length }}',
    ],
)
def test_a_filter_cannot_make_more_than_a_mail_holds(tmp_path: Path, body: str) -> None:
    failed = failure(tmp_path, {"t.html.j2": f"<p>Hello</p>\n<p>{body}</p>"})
    assert "makes a mail over 1 MB" in failed.problem, failed.problem
    assert failed.line == 2


@pytest.mark.alone  # a time budget: measured with the cores to itself
def test_filters_that_work_hard_without_a_loop_stop_in_time(tmp_path: Path, quick: None) -> None:
    heavy = " + ".join(["(s | list | sort | unique | list | length)"] * 12)
    body = f'<p>Hello</p>\n{{% set s = "a" * 999999 %}}<p>{{{{ {heavy} }}}}</p>'
    failed = failure(tmp_path, {"t.html.j2": body})
    assert "takes over" in failed.problem, failed.problem


def test_guarded_filters_still_do_what_they_did(tmp_path: Path) -> None:
    body = (
        '{{ customer.first_name ~ "!" }} {{ ["a", "b"] | join(", ") }} '
        '{{ "%s-%d" | format("x", 3) }} {{ "{} {}".format("a", 1) }} {{ "%s" % "y" }} '
        '{{ "ab" | replace("a", "c") }} {{ "x" | center(5) }}| {{ 3 ~ 4 }}'
    )
    r = renderer(tmp_path, {"t.txt.j2": body})
    assert r._run(r._text, "t.txt.j2", context()) == "Ana! a, b x-3 a 1 y cb   x  | 34"
