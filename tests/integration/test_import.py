"""CSV import against real databases: bad rows reported, good rows kept, re-import idempotent."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from reengage.errors import InputError
from reengage.ingest import Kind, import_file
from reengage.models import Customer, CustomerStatus
from reengage.store import Store

NOW = datetime(2026, 11, 1, tzinfo=UTC)
UTC_ZONE = ZoneInfo("UTC")


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def run(store: Store, kind: Kind, path: Path, **kw: object):  # type: ignore[no-untyped-def]
    return import_file(store, kind, path, now=NOW, zone=UTC_ZONE, **kw)  # type: ignore[arg-type]


@pytest.fixture
def customers_csv(tmp_path: Path) -> Path:
    return write(
        tmp_path / "customers.csv",
        (
            "customer_id,email,first_name,company,segment,interests,important_dates,contacts\n"
            "c1,ana@example.com,Ana,Ana's Bakery,retail,bread;coffee,"
            "contract anniversary=2020-03-01,"
            "Bo Li|buyer|+1 555 0100|bo@example.com\n"
            "c2,not-an-email,Ben,,retail,,,\n"
            "c3,cy@example.com,Cy,,wholesale,,,\n"
        ),
    )


def test_malformed_row_is_named_and_the_rest_imported_then_reimport_changes_nothing(
    store: Store, customers_csv: Path
) -> None:
    first = run(store, Kind.CUSTOMERS, customers_csv)

    assert [str(p) for p in first.rejected] == [
        f"{customers_csv}:3: email: 'not-an-email' is not an email address like ana@example.com"
    ]
    assert first.counts.inserted == 2
    second = run(store, Kind.CUSTOMERS, customers_csv)
    assert (second.counts.inserted, second.counts.updated, second.counts.unchanged) == (0, 0, 2)

    found = store.get_customer("c1")
    assert found is not None
    customer, _ = found
    assert customer.company == "Ana's Bakery"
    assert customer.interests == ["bread", "coffee"]
    assert customer.important_dates == [{"label": "contract anniversary", "date": "2020-03-01"}]
    assert customer.contacts == [
        {"name": "Bo Li", "role": "buyer", "phone": "+1 555 0100", "email": "bo@example.com"}
    ]
    # Dispatch reads customers by id without validating them again: the same customer,
    # down to the status enum a template or the digest compares against.
    by_id = store.customers_by_ids([customer.id or 0])[customer.id or 0]
    assert by_id.model_dump() == Customer.model_validate(customer.model_dump()).model_dump()
    assert by_id.status is CustomerStatus.ACTIVE
    assert by_id.model_copy(update={"company": "Other"}).company == "Other"


def test_activities_bad_rows_reported_with_line_and_column(
    store: Store, customers_csv: Path, tmp_path: Path
) -> None:
    run(store, Kind.CUSTOMERS, customers_csv)
    activities = write(
        tmp_path / "activities.csv",
        (
            "customer_id,occurred_at,amount\n"
            "c1,2026-01-10,100\n"
            "c1,2026-13-10,100\n"
            "c1,2026-02-10,ten\n"
            "nobody,2026-02-10,5\n"
            "c3,2026-02-11T10:00:00+02:00,50\n"
        ),
    )
    report = run(store, Kind.ACTIVITIES, activities)
    problems = sorted(str(p) for p in report.rejected)
    assert problems == [
        f"{activities}:3: occurred_at: '2026-13-10' is not an ISO date like 2024-03-31 or "
        "2024-03-31T14:05:00+02:00",
        f"{activities}:4: amount: 'ten' is not a number like 1234.50",
        f"{activities}:5: customer_id: no customer 'nobody'; import customers first",
    ]
    assert report.counts.inserted == 2
    again = run(store, Kind.ACTIVITIES, activities)
    assert (again.counts.inserted, again.counts.updated, again.counts.unchanged) == (0, 0, 2)
    found = store.get_customer("c3")
    assert found is not None and found[1] is not None
    assert found[1].last_activity_at == datetime(2026, 2, 11, 8, 0, tzinfo=UTC)


def test_out_of_order_activities_give_the_same_stats_as_in_order(
    store: Store, customers_csv: Path, tmp_path: Path
) -> None:
    run(store, Kind.CUSTOMERS, customers_csv)
    late = write(
        tmp_path / "late.csv",
        (
            "customer_id,occurred_at,kind,amount,margin\n"
            "c1,2026-05-01,order,30,3\n"
            "c1,2026-06-01,visit,,\n"
        ),
    )
    early = write(
        tmp_path / "early.csv",
        (
            "customer_id,occurred_at,kind,amount,margin\n"
            "c1,2026-01-01,order,10,1\n"
            "c1,2026-03-01,order,20,2\n"
        ),
    )
    run(store, Kind.ACTIVITIES, late, batch_size=1)
    run(store, Kind.ACTIVITIES, early, batch_size=1)

    found = store.get_customer("c1")
    assert found is not None and found[1] is not None
    stats = found[1]
    assert (stats.activity_count, stats.order_count) == (4, 3)
    assert stats.first_activity_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert stats.last_activity_at == datetime(2026, 6, 1, tzinfo=UTC)
    assert stats.first_order_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert stats.last_order_at == datetime(2026, 5, 1, tzinfo=UTC)
    assert (stats.total_value, stats.total_margin) == (60.0, 6.0)


def test_corrected_activity_updates_the_row_and_the_stats(
    store: Store, customers_csv: Path, tmp_path: Path
) -> None:
    run(store, Kind.CUSTOMERS, customers_csv)
    run(
        store,
        Kind.ACTIVITIES,
        write(
            tmp_path / "a.csv",
            (
                "activity_id,customer_id,occurred_at,amount\n"
                "o-1,c1,2026-01-01,10\n"
                "o-2,c1,2026-02-01,20\n"
            ),
        ),
    )
    fixed = run(
        store,
        Kind.ACTIVITIES,
        write(
            tmp_path / "b.csv",
            ("activity_id,customer_id,occurred_at,amount\no-2,c3,2026-02-01,25\n"),
        ),
    )
    assert fixed.counts.updated == 1
    c1, c3 = store.get_customer("c1"), store.get_customer("c3")
    assert c1 is not None and c1[1] is not None and c3 is not None and c3[1] is not None
    assert (c1[1].activity_count, c1[1].total_value) == (1, 10.0)
    assert (c3[1].activity_count, c3[1].total_value) == (1, 25.0)


def test_activity_without_id_is_deduplicated_on_content(
    store: Store, customers_csv: Path, tmp_path: Path
) -> None:
    run(store, Kind.CUSTOMERS, customers_csv)
    path = write(tmp_path / "a.csv", "customer_id,occurred_at,amount\nc1,2026-01-01,10\n")
    assert run(store, Kind.ACTIVITIES, path).counts.inserted == 1
    assert run(store, Kind.ACTIVITIES, path).counts.inserted == 0
    assert store.overview().activities == 1


def test_reimport_with_changed_field_updates_only_that_customer(
    store: Store, customers_csv: Path, tmp_path: Path
) -> None:
    run(store, Kind.CUSTOMERS, customers_csv)
    partial = write(tmp_path / "update.csv", "customer_id,email,segment\nc1,ana@example.com,vip\n")
    report = run(store, Kind.CUSTOMERS, partial)
    assert (report.counts.updated, report.counts.unchanged) == (1, 0)
    found = store.get_customer("c1")
    assert found is not None
    assert found[0].segment == "vip"
    assert found[0].company == "Ana's Bakery"  # a column the file does not have is kept


def test_dry_run_counts_but_writes_nothing(store: Store, customers_csv: Path) -> None:
    report = run(store, Kind.CUSTOMERS, customers_csv, dry_run=True)
    assert report.counts.inserted == 2
    assert store.overview().customers == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a CSV text file"),
        (b"id,mail\nc1,a@example.com\n", "the header lacks customer_id, email"),
        (b"customer_id,email,email\nc1,a@example.com,b@example.com\n", "appear twice"),
    ],
)
def test_unusable_file_gets_one_clear_error_and_changes_nothing(
    store: Store, tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "customers.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message) as info:
        run(store, Kind.CUSTOMERS, path)
    assert str(path) in str(info.value)
    assert store.overview().customers == 0


def test_semicolon_csv_with_bom_and_windows_line_endings(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeffcustomer_id;email;first_name\r\nc9;zoe@example.com;Zoë\r\n".encode())
    report = run(store, Kind.CUSTOMERS, path)
    assert report.ok and report.counts.inserted == 1
    found = store.get_customer("c9")
    assert found is not None and found[0].first_name == "Zoë"


def test_invalid_utf8_in_a_row_rejects_only_that_row(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_bytes(
        b"customer_id,email,first_name\nc1,a@example.com,Ana\nc2,b@example.com,J\xfcrgen\n"
    )
    report = run(store, Kind.CUSTOMERS, path)
    assert [str(p) for p in report.rejected] == [
        f"{path}:3: first_name: is not valid UTF-8 text; save the file as CSV UTF-8"
    ]
    assert report.counts.inserted == 1


def test_quoted_multiline_field_keeps_line_numbers_right(store: Store, tmp_path: Path) -> None:
    path = write(
        tmp_path / "customers.csv",
        ('customer_id,email,notes\nc1,a@example.com,"first line\nsecond line"\nc2,broken,\n'),
    )
    report = run(store, Kind.CUSTOMERS, path)
    assert [p.line for p in report.rejected] == [4]
    found = store.get_customer("c1")
    assert found is not None and found[0].notes == "first line second line"


def test_row_with_too_many_fields_is_rejected(store: Store, tmp_path: Path) -> None:
    path = write(
        tmp_path / "customers.csv", "customer_id,email\nc1,a@example.com\nc2,b@example.com,extra\n"
    )
    report = run(store, Kind.CUSTOMERS, path)
    assert [(p.line, "3 fields" in p.problem) for p in report.rejected] == [(3, True)]
    assert report.counts.inserted == 1


def test_unknown_rep_is_a_warning_not_a_rejection(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path / "customers.csv", "customer_id,email,rep_id\nc1,a@example.com,R9\n")
    report = run(store, Kind.CUSTOMERS, path)
    assert report.ok
    assert any("R9" in w for w in report.warnings)


def test_import_logs_start_and_finish_with_the_file_bound(
    store: Store, customers_csv: Path
) -> None:
    from structlog.testing import capture_logs

    with capture_logs() as logs:
        run(store, Kind.CUSTOMERS, customers_csv)
    finished = [e for e in logs if e["event"] == "import_finished"]
    assert len(finished) == 1
    assert (finished[0]["inserted"], finished[0]["rejected"]) == (2, 1)
    assert [e["event"] for e in logs][:1] == ["import_started"]


def test_shuffled_history_in_small_batches_gives_the_same_stats_as_sorted(
    store: Store, tmp_path: Path
) -> None:
    """Late and out-of-order activities: every stored stat matches a clean in-order load."""
    import csv
    import random

    from reengage.seed import write_dataset
    from reengage.store.engine import create_engine
    from reengage.store.migrate import upgrade

    data = write_dataset(tmp_path / "d", 60, seed=3, now=NOW)
    run(store, Kind.CUSTOMERS, data.customers)
    with data.activities.open() as handle:
        rows = list(csv.DictReader(handle))
    random.Random(5).shuffle(rows)
    shuffled = tmp_path / "shuffled.csv"
    with shuffled.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    run(store, Kind.ACTIVITIES, shuffled, batch_size=37)

    clean = Store(create_engine(f"sqlite:///{tmp_path / 'clean.db'}"))
    upgrade(clean.engine)
    run(clean, Kind.CUSTOMERS, data.customers)
    run(clean, Kind.ACTIVITIES, data.activities)

    def snapshot(s: Store) -> dict[str, tuple[object, ...]]:
        out = {}
        for customer, stats in s.customers_with_stats():
            out[customer.external_id] = (
                stats.activity_count,
                stats.order_count,
                stats.first_activity_at,
                stats.last_order_at,
                round(stats.total_value, 6),
                stats.recent_orders,
                stats.typical_gap_days,
                stats.count_ratio,
                stats.aov_ratio,
            )
        return out

    assert snapshot(store) == snapshot(clean)
    assert any(row[7] is not None for row in snapshot(clean).values())
    clean.close()


def test_segment_change_reaches_detection(
    store: Store, customers_csv: Path, tmp_path: Path
) -> None:
    """Detection reads the segment from the stats; a re-import that moves a customer counts."""
    run(store, Kind.CUSTOMERS, customers_csv)
    run(
        store,
        Kind.ACTIVITIES,
        write(tmp_path / "a.csv", "customer_id,occurred_at\nc1,2026-01-01\n"),
    )
    assert [p.segment for p in store.profiles()] == ["retail"]
    run(
        store,
        Kind.CUSTOMERS,
        write(tmp_path / "m.csv", "customer_id,email,segment\nc1,ana@example.com,vip\n"),
    )
    assert [p.segment for p in store.profiles()] == ["vip"]
    assert [s for s, _ in store.gap_sample()] == []  # one order: no gap of their own yet
