"""The outcome form's refusals over real HTTP (uvicorn on loopback, httpx), on both databases.

A link that was changed, cut short, signed for something else or is too old records
nothing; a client removed since the digest gets a clear page; values a browser would not
send are refused beside their fields; "today" is the rep's own date. ``reengage web``
run as a process serves the form with the campaigns loaded, so a follow-up works there too.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from reengage import authoring
from reengage.digest import outcome_link
from reengage.ingest import Kind, import_items
from reengage.store import Store
from reengage.tokens import sign, stamp
from reengage.web import WebConfig, create_app
from tests.conftest import child_env
from tests.integration import digest_world as w
from tests.integration.smtp_sink import free_port
from tests.integration.web_server import client, local, running_app

TODAY = date(2026, 11, 23)
SAVE = {"reached": "decision_maker", "reason": "price", "worth": "yes", "next_step": "nothing"}


@dataclass
class Served:
    store: Store
    base: str
    clock: dict[str, datetime]

    def url(self, external_id: str, *, rep: str = "R1", issued: datetime = w.NOW) -> str:
        """The link a digest for ``rep`` made at ``issued`` carries for this client."""
        ws, _ = w.workspace(Path("."))
        cid = self.store.customers.customer_ids([external_id])[external_id]
        return local(outcome_link(ws, rep, cid, issued.date(), issued), self.base)

    def outcomes(self) -> int:
        return len(self.store.calls.outcomes_since(None))


def config(clock: dict[str, datetime], *, running: bool = True, **settings: Any) -> WebConfig:
    ws, _ = w.workspace(Path("."))
    library = authoring.CampaignLibrary(ws)
    if running:
        library.reload()
    return WebConfig.from_settings(
        w.settings(**settings), clock=lambda: clock["now"], campaigns=lambda: library.campaigns
    )


@pytest.fixture
def served(store: Store) -> Iterator[Served]:
    w.fill(store)
    clock = {"now": w.NOW}
    with running_app(create_app(store, config(clock, outcome_link_days=7))) as base:
        yield Served(store, base, clock)


def test_looking_at_the_form_records_nothing_and_the_page_runs_no_script(
    served: Served,
) -> None:
    with client() as http:
        page = http.get(served.url("bakery"))
    assert page.status_code == 200
    assert "Ana Li" in page.text and "Why did you decide to stop?" in page.text
    assert 'form method="post"' in page.text and "<script" not in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "form-action 'self'" in page.headers["content-security-policy"]
    # The token never leaks to another site (and our own form posts keep their Origin).
    assert page.headers["referrer-policy"] == "same-origin"
    assert page.headers["cache-control"] == "no-store"
    assert served.outcomes() == 0


def test_a_link_older_than_the_outcome_link_days_setting_records_nothing(
    served: Served,
) -> None:
    url = served.url("bakery")
    with client() as http:
        served.clock["now"] = w.NOW + timedelta(days=6)
        assert http.get(url).status_code == 200  # seven days, as set; not the mail links' 730
        served.clock["now"] = w.NOW + timedelta(days=9)
        for answer in (http.get(url), http.post(url, data=SAVE)):
            assert answer.status_code == 400
            assert "This link has expired" in answer.text
            assert "Nothing was recorded" in answer.text
    assert served.outcomes() == 0


def test_a_link_changed_cut_short_or_signed_for_something_else_records_nothing(
    served: Served,
) -> None:
    cid = served.store.customers.customer_ids(["bakery"])["bakery"]
    good = served.url("bakery")
    payload = {"c": cid, "r": "R1", "d": TODAY.isoformat(), "t": stamp(w.NOW)}
    bad = [
        good[:-3],  # cut short
        good.replace("/call/", "/call/x"),
        f"{served.base}/call/{sign(w.SECRET, 'unsubscribe', payload)}",  # another purpose
        f"{served.base}/call/{sign('another-secret-' * 3, 'call', payload)}",
        f"{served.base}/call/{sign(w.SECRET, 'call', {**payload, 'd': 'monday'})}",
        f"{served.base}/call/{sign(w.SECRET, 'call', {'r': 'R1', 't': stamp(w.NOW)})}",
    ]
    with client() as http:
        for url in bad:
            for answer in (http.get(url), http.post(url, data=SAVE)):
                assert answer.status_code == 400, url
                assert "This link does not work" in answer.text
                assert "<form" not in answer.text
    assert served.outcomes() == 0


def test_a_client_removed_since_the_digest_gets_a_clear_page(served: Served) -> None:
    payload = {"c": 987_654, "r": "R1", "d": TODAY.isoformat(), "t": stamp(w.NOW)}
    url = f"{served.base}/call/{sign(w.SECRET, 'call', payload)}"
    with client() as http:
        for answer in (http.get(url), http.post(url, data=SAVE)):
            assert answer.status_code == 410
            assert "This client is no longer in reengage" in answer.text
            assert "Nothing was saved" in answer.text
    assert served.outcomes() == 0


def test_values_a_browser_would_not_send_are_refused_beside_their_fields(
    served: Served,
) -> None:
    url = served.url("bakery")
    cases = [
        ({"reached": "the boss"}, "choose one of the options"),
        ({"reason": "aliens"}, "choose one of the options"),
        ({"next_step": "call_again", "call_again_on": "next week"}, "enter the day as YYYY-MM-DD"),
        ({"next_step": "call_again", "call_again_on": "2026-11-23"}, "must be after today"),
        ({"next_step": "call_again", "call_again_on": "2028-01-05"}, "must be within a year"),
        ({"reason": ""}, "choose the main reason they stopped"),
        ({"win_back": "x" * 4001}, "keep it under 4000 characters"),
    ]
    with client() as http:
        for change, error in cases:
            answer = http.post(url, data={**SAVE, **change})
            assert answer.status_code == 422, change
            assert error in answer.text, change
            assert 'class="error"' in answer.text and "Nothing is saved yet" in answer.text
        # Nobody answered: no reason needed.
        answer = http.post(url, data={**SAVE, "reached": "nobody", "reason": ""})
        assert answer.status_code == 200 and "The call is recorded" in answer.text
    assert served.outcomes() == 1


def test_today_is_the_reps_own_date(served: Served) -> None:
    # 23:30 UTC on Monday: already Tuesday 24 November for Dana in Berlin, still Monday
    # evening for Sam in New York. "Call again on the 24th" is only in Sam's future.
    served.clock["now"] = datetime(2026, 11, 23, 23, 30, tzinfo=w.NOW.tzinfo)
    again = {**SAVE, "next_step": "call_again", "call_again_on": "2026-11-24"}
    with client() as http:
        dana = http.post(served.url("bakery", issued=w.NOW), data=again)
        sam = http.post(served.url("ny", rep="R2", issued=w.NOW), data=again)
    assert dana.status_code == 422 and "must be after today" in dana.text
    assert sam.status_code == 200 and "Tuesday, November 24, 2026" in sam.text


def test_without_the_follow_up_campaign_the_choice_is_off_and_refused(store: Store) -> None:
    w.fill(store)
    clock = {"now": w.NOW}
    with running_app(create_app(store, config(clock, running=False))) as base:
        served = Served(store, base, clock)
        url = served.url("bakery")
        with client() as http:
            page = http.get(url)
            answer = http.post(url, data={**SAVE, "next_step": "follow_up"})
    assert 'value="follow_up" disabled' in page.text
    assert "(the campaign what-we-changed is not running)" in page.text
    assert answer.status_code == 422
    assert "the follow-up campaign what-we-changed is not running" in answer.text
    assert served.outcomes() == 0


@pytest.mark.clock
def test_reengage_web_serves_the_form_with_the_campaigns_loaded(
    store: Store, database_url: str, tmp_path: Path
) -> None:
    w.fill(store)
    port, ops = free_port(), free_port()
    env = child_env(
        REENGAGE_NOW=w.NOW.isoformat(),  # the served app's clock: the digest's morning
        REENGAGE_DATABASE_URL=database_url,
        REENGAGE_SECRET_KEY=w.SECRET,
        REENGAGE_HTTP_PORT=str(port),
        REENGAGE_OPS_PORT=str(ops),
        REENGAGE_CAMPAIGNS_DIR=str(w.ROOT / "campaigns"),
        REENGAGE_TEMPLATES_DIR=str(w.ROOT / "templates"),
    )
    command = [str(Path(sys.executable).with_name("reengage")), "web"]
    process = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"http://127.0.0.1:{ops}", process)
        # Health and metrics answer on the operations address only, never the public one.
        assert httpx.get(f"http://127.0.0.1:{ops}/metrics").status_code == 200
        assert httpx.get(f"{base}/healthz").status_code == 404
        ws, _ = w.workspace(Path("."))
        cid = store.customers.customer_ids(["bakery"])["bakery"]
        url = local(outcome_link(ws, "R1", cid, TODAY, w.NOW), base)  # this morning's digest
        with client() as http:
            page = http.get(url)
            answer = http.post(url, data={**SAVE, "next_step": "follow_up"})
        assert page.status_code == 200 and "is not running" not in page.text
        assert answer.status_code == 200, answer.text
        assert "They will get the follow-up campaign what-we-changed." in answer.text
    finally:
        process.terminate()
        process.communicate(timeout=10)  # and closes its output pipe


def wait_for(base: str, process: subprocess.Popen[bytes]) -> None:
    """Until the server answers /healthz (or the process has died, with its output)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            pytest.fail(f"reengage web exited: {output}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail("reengage web did not answer within 30 s")


def test_a_call_recorded_twice_is_told_in_the_reps_language_and_at_the_reps_time(
    served: Served,
) -> None:
    # Dana (Berlin) reads Chinese: the second post is told so in Chinese, at 07:30 her time
    # (06:30 UTC), not in English at a UTC time.
    dana = {**w.REPS[0], "locale": "zh-CN"}
    assert import_items(served.store, Kind.REPS, [dana], now=w.NOW, zone=ZoneInfo("UTC")).ok
    url = served.url("bakery")
    with client() as http:
        assert http.post(url, data=SAVE).status_code == 200
        served.clock["now"] = w.NOW + timedelta(minutes=5)
        again = http.post(url, data={**SAVE, "next_step": "do_not_contact"})
        shown = http.get(url)
    for page_ in (again, shown):
        assert page_.status_code == 200
        assert "这次通话已经记录过了（2026/11/23 07:30）；没有任何更改。" in page_.text
        assert "UTC" not in page_.text and "already recorded" not in page_.text
    assert served.outcomes() == 1
