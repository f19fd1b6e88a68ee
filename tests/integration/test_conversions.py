"""Purchases after a campaign mail: credited to the campaign and its last step within the
attribution window, once, whichever way the activity arrives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from reengage.ingest import Kind, import_file, import_items
from reengage.store import Store
from tests.integration.smtp_sink import running_sink
from tests.integration.test_sending import run_days, setup


def conversions(store: Store) -> list[tuple[str | None, str | None]]:
    rows = store.responses.recent(datetime(2000, 1, 1, tzinfo=UTC))
    return [(r.campaign_id, r.step_key) for r in rows if r.kind == "conversion"]


def test_an_order_after_a_mail_is_credited_once_and_ends_the_sequence(
    store: Store, tmp_path: Path
) -> None:
    with running_sink() as (sink, port):
        service = setup(
            store, tmp_path, port, "customer_id,email,first_name\nc1,ana@example.com,Ana\n"
        )
        run_days(service, 3)
        assert len(sink.received) == 1
        clock = service.clock_state  # type: ignore[attr-defined]
        order = {
            "activity_id": "o-1",
            "customer_id": "c1",
            "occurred_at": clock["now"].isoformat(),
            "amount": 80,
        }
        for _ in range(2):  # the same order twice: credited once
            report = import_items(
                store, Kind.ACTIVITIES, [order], now=clock["now"], zone=ZoneInfo("UTC")
            )
            assert report.ok, report.rejected
        assert conversions(store) == [("lapsed", "first")]
        run_days(service, 20)  # the next detection pass ends the enrollment: no more mail
        assert len(sink.received) == 1


def test_an_order_long_after_the_last_mail_is_not_credited(store: Store, tmp_path: Path) -> None:
    with running_sink() as (sink, port):
        service = setup(
            store, tmp_path, port, "customer_id,email,first_name\nc1,ana@example.com,Ana\n"
        )
        run_days(service, 3)
        assert len(sink.received) == 1
        clock = service.clock_state  # type: ignore[attr-defined]
        late = clock["now"] + timedelta(days=45)  # past the 30-day window after the mail
        (tmp_path / "late.csv").write_text(
            f"customer_id,occurred_at,amount\nc1,{late.isoformat()},50\n"
        )
        report = import_file(
            store, Kind.ACTIVITIES, tmp_path / "late.csv", now=late, zone=ZoneInfo("UTC")
        )
        assert report.ok
        assert conversions(store) == []
