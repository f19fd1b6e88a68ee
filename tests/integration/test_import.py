"""CSV import against real databases: bad rows reported, good rows kept, re-import idempotent."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import hypothesis
import pytest
from hypothesis import strategies as st

from reengage.errors import InputError
from reengage.ingest import ImportReport, Kind, import_file
from reengage.models import Customer, CustomerStatus
from reengage.store import Store
from tests.integration.test_cli import cli

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

    found = store.customers.get_customer("c1")
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
    by_id = store.customers.customers_by_ids([customer.id or 0])[customer.id or 0]
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
    found = store.customers.get_customer("c3")
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

    found = store.customers.get_customer("c1")
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
    c1, c3 = store.customers.get_customer("c1"), store.customers.get_customer("c3")
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
    assert store.customers.overview().activities == 1


def test_reimport_with_changed_field_updates_only_that_customer(
    store: Store, customers_csv: Path, tmp_path: Path
) -> None:
    run(store, Kind.CUSTOMERS, customers_csv)
    partial = write(tmp_path / "update.csv", "customer_id,email,segment\nc1,ana@example.com,vip\n")
    report = run(store, Kind.CUSTOMERS, partial)
    assert (report.counts.updated, report.counts.unchanged) == (1, 0)
    found = store.customers.get_customer("c1")
    assert found is not None
    assert found[0].segment == "vip"
    assert found[0].company == "Ana's Bakery"  # a column the file does not have is kept


def test_dry_run_counts_but_writes_nothing(store: Store, customers_csv: Path) -> None:
    report = run(store, Kind.CUSTOMERS, customers_csv, dry_run=True)
    assert report.counts.inserted == 2
    assert store.customers.overview().customers == 0


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
    assert store.customers.overview().customers == 0


def test_semicolon_csv_with_bom_and_windows_line_endings(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeffcustomer_id;email;first_name\r\nc9;zoe@example.com;Zoë\r\n".encode())
    report = run(store, Kind.CUSTOMERS, path)
    assert report.ok and report.counts.inserted == 1
    found = store.customers.get_customer("c9")
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
    found = store.customers.get_customer("c1")
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
        for customer, stats in s.customers.customers_with_stats():
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
    assert [p.segment for p in store.detection.profiles()] == ["retail"]
    run(
        store,
        Kind.CUSTOMERS,
        write(tmp_path / "m.csv", "customer_id,email,segment\nc1,ana@example.com,vip\n"),
    )
    assert [p.segment for p in store.detection.profiles()] == ["vip"]
    assert [s for s, _ in store.detection.gap_sample()] == []  # one order: no gap of their own yet


# -- files that would swallow rows, repeated ids, numbers money cannot be -------------------


def reengage(
    tmp_path: Path, database_url: str, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """``reengage ...`` as an operator runs it, on the ``store`` fixture's database, at NOW.

    Logs at warning only, so that stderr holds just what the command says to its user.
    """
    env = {
        "REENGAGE_DATABASE_URL": database_url,
        "REENGAGE_NOW": NOW.isoformat(),
        "REENGAGE_LOG_LEVEL": "warning",
    } | env
    return cli(*args, cwd=tmp_path, env=env)


def test_an_unclosed_quote_in_a_small_file_imports_nothing_and_names_its_line(
    tmp_path: Path, database_url: str, store: Store
) -> None:
    path = write(
        tmp_path / "customers.csv",
        'customer_id,email,notes\nc1,a@example.com,ok\nc2,b@example.com,"left open\n'
        "c3,c@example.com,fine\nc4,d@example.com,fine\n",
    )
    result = reengage(tmp_path, database_url, "import", "customers", str(path))

    assert result.returncode == 1
    assert result.stderr.startswith(
        f"error: {path}:3: a quote opened in the row on this line is never closed: the rest "
        "of the file (lines 3-5) would be read as one value;"
    )
    assert "Nothing was imported: fix the file and import it again" in result.stderr
    assert "Traceback" not in result.stderr
    assert store.customers.overview().customers == 0  # not even c1, before the quote


def test_an_unclosed_quote_deep_in_a_large_file_writes_no_batch_and_does_not_crash(
    tmp_path: Path, database_url: str, store: Store
) -> None:
    rows = [f"c{i},c{i}@example.com,note {i}" for i in range(20_000)]
    rows[15_000] = 'c15000,c15000@example.com,"left open'  # the rest is past csv's field limit
    path = write(tmp_path / "customers.csv", "customer_id,email,notes\n" + "\n".join(rows) + "\n")
    result = reengage(  # fifteen batches of 1,000 come before the quote
        tmp_path,
        database_url,
        "import",
        "customers",
        str(path),
        REENGAGE_IMPORT_BATCH_SIZE="1000",
    )

    assert result.returncode == 1
    assert result.stderr.startswith(
        f"error: {path}:15002: a quoted value in the row on this line grows past 131,072 "
        "characters by line "
    )
    assert "field larger than field limit" not in result.stderr
    assert store.customers.overview().customers == 0


def test_a_stray_quote_that_closes_rows_later_is_refused_whole(
    store: Store, tmp_path: Path
) -> None:
    path = write(
        tmp_path / "customers.csv",
        'customer_id,email,company\nc1,a@example.com,"Acme\nc2,b@example.com,Bolt\n'
        'c3,c@example.com,"Cogs" Ltd\nc4,d@example.com,Dyn\n',
    )
    with pytest.raises(InputError) as info:
        run(store, Kind.CUSTOMERS, path)
    assert str(info.value).startswith(
        f"{path}:2: a quoted value in the row on this line runs to line 4 and text follows its "
        "closing quote there: a quote is probably missing or not doubled;"
    )
    assert store.customers.overview().customers == 0


def test_a_quote_that_swallows_rows_into_too_many_fields_is_refused_whole(
    store: Store, tmp_path: Path
) -> None:
    path = write(
        tmp_path / "customers.csv",
        'customer_id,email,notes\nc1,a@example.com,"call back\nc2,b@example.com,",x,y\n'
        "c3,c@example.com,z\n",
    )
    with pytest.raises(InputError, match=r":2: the row on this line runs over lines 2-3 inside "):
        run(store, Kind.CUSTOMERS, path)
    assert store.customers.overview().customers == 0


def test_problems_on_one_line_skip_that_row_and_the_summary_adds_up(
    tmp_path: Path, database_url: str, store: Store
) -> None:
    path = tmp_path / "customers.csv"
    path.write_bytes(
        b"customer_id,email,company\n"
        b"c1,a@example.com,Acme\n"  # 2 imported
        b"c2,b@example.com,Bolt,extra\n"  # 3 too many fields
        b"c3,c@example.com\n"  # 4 too few: maybe cut off
        b'c4,d@example.com,"Cogs" Ltd\n'  # 5 text after a closing quote
        b"c5,e@example.com,Dy\x00n\n"  # 6 a NUL
        b"c6,f@example.com," + b"x" * 140_000 + b"\n"  # 7 past csv's field limit
        b"\n"  # 8 a blank line is not a row
        b"c1,a@example.com,Acme\n"  # 9 identical repeat of line 2
        b"c7,g@example.com,Gear\n"  # 10 imported
        b'c8,h@example.com,"no end'  # 11 the last line: its quote is never closed
    )
    result = reengage(tmp_path, database_url, "import", "customers", str(path))

    assert result.returncode == 1
    problems = result.stderr.splitlines()
    assert [p.split(": ")[0:2] for p in problems] == [
        [f"{path}:{line}", column]
        for line, column in [
            (3, "row"),
            (4, "row"),
            (5, "row"),
            (6, "company"),
            (7, "row"),
            (9, "customer_id"),
            (11, "row"),
        ]
    ]
    assert "the row has 4 fields but the header has 3; quote values" in problems[0]
    assert "the row has 2 fields but the header has 3;" in problems[1]
    assert "text follows a closing quote" in problems[2]
    assert "contains a NUL character" in problems[3]
    assert "longer than 131,072 characters" in problems[4]
    assert problems[5] == (
        f"{path}:9: customer_id: 'c1' already appears on line 2 of this file; only the first "
        "is imported (merge the two, or give this one an id of its own)"
    )
    assert "never closed (the file ends inside it)" in problems[6]
    assert result.stdout.strip() == (
        "customers: 2 imported, 0 updated, 0 unchanged, 7 skipped, 1 of them a repeated id "
        "(9 rows read)"
    )
    assert store.customers.overview().customers == 2


def test_a_repeated_id_keeps_the_first_row_across_batches_for_every_kind(
    store: Store, tmp_path: Path
) -> None:
    reps = write(
        tmp_path / "reps.csv",
        "rep_id,email,name\nr1,rita@example.com,Rita\nr2,sam@example.com,Sam\n"
        "r1,rita@example.com,Rita B\n",
    )
    report = run(store, Kind.REPS, reps, batch_size=1)
    assert [str(p) for p in report.rejected] == [
        f"{reps}:4: rep_id: 'r1' already appears on line 2 of this file; only the first is "
        "imported (merge the two, or give this one an id of its own)"
    ]
    assert store.customers.rep_name("r1") == "Rita"

    customers = write(
        tmp_path / "customers.csv",
        "customer_id,email,first_name\nc1,ana@example.com,Ana\nc2,bo@example.com,Bo\n"
        "c1,ana@example.com,Anna\nc1,ana@example.com,Ann\n",
    )
    report = run(store, Kind.CUSTOMERS, customers, batch_size=2)
    assert [(p.line, p.column) for p in report.rejected] == [(4, "customer_id"), (5, "customer_id")]
    assert all("already appears on line 2 of this file" in p.problem for p in report.rejected)
    assert (report.counts.inserted, report.repeated, report.rows, report.ok) == (2, 2, 4, False)
    found = store.customers.get_customer("c1")
    assert found is not None and found[0].first_name == "Ana"
    again = run(store, Kind.CUSTOMERS, customers, batch_size=2)  # the same file, same verdict
    assert (again.counts.unchanged, again.repeated) == (2, 2)

    activities = write(
        tmp_path / "activities.csv",
        "activity_id,customer_id,occurred_at,amount\no-1,c1,2026-01-01,10\n"
        "o-1,c2,2026-02-01,20\n,c2,2026-03-01T09:30:00,5\n,c2,2026-03-01T09:30:00,5\n",
    )
    report = run(store, Kind.ACTIVITIES, activities, batch_size=1)
    assert [str(p) for p in report.rejected] == [
        f"{activities}:3: activity_id: 'o-1' already appears on line 2 of this file; only "
        "the first is imported (merge the two, or give this one an id of its own)",
        f"{activities}:5: activity_id: the same activity without an activity_id (customer "
        "'c2', order at 2026-03-01 09:30:00 UTC, amount 5) already appears on line 4 of this "
        "file; only the first is imported (merge the two, or give this one an id of its "
        "own)",
    ]
    assert report.counts.inserted == 2
    c1, c2 = store.customers.get_customer("c1"), store.customers.get_customer("c2")
    assert c1 is not None and c1[1] is not None and c2 is not None and c2[1] is not None
    assert (c1[1].total_value, c2[1].total_value) == (10.0, 5.0)


def test_money_beyond_a_trillion_is_rejected_and_scores_stay_finite(
    tmp_path: Path, database_url: str, store: Store
) -> None:
    run(store, Kind.CUSTOMERS, write(tmp_path / "c.csv", "customer_id,email\nc1,a@example.com\n"))
    path = write(
        tmp_path / "activities.csv",
        "customer_id,occurred_at,amount,margin\n"
        "c1,2026-01-01,1e308,\nc1,2026-02-01,inf,\nc1,2026-03-01,nan,\n"
        "c1,2026-04-01,-1e20,\nc1,2026-05-01,40,1e13\nc1,2026-06-01,120.5,30\n"
        "c1,2026-07-01,-20.5,-5\n",
    )
    result = reengage(tmp_path, database_url, "import", "activities", str(path))

    assert result.returncode == 1
    assert [line.split(": ")[:2] for line in result.stderr.splitlines()] == [
        [f"{path}:{n}", column]
        for n, column in [
            (2, "amount"),
            (3, "amount"),
            (4, "amount"),
            (5, "amount"),
            (6, "margin"),
            (8, "amount"),  # a refund: see test_ingest_parse
        ]
    ]
    assert (
        f"{path}:2: amount: '1e308' is out of range: amount must be between "
        "0 and 1,000,000,000,000;" in result.stderr
    )
    assert f"{path}:4: amount: 'nan' is not a number like 1234.50" in result.stderr
    assert "1 imported, 0 updated, 0 unchanged, 6 skipped (7 rows read)" in result.stdout
    found = store.customers.get_customer("c1")
    assert found is not None and found[1] is not None
    assert (found[1].total_value, found[1].total_margin) == (120.5, 30.0)
    shown = reengage(tmp_path, database_url, "customers", "show", "c1")
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"value\s+│ [\d,.]+ per year", shown.stdout), shown.stdout
    assert not re.search(r"\b(inf|nan)\b", shown.stdout, re.IGNORECASE)


def test_a_file_that_grows_a_broken_quote_during_the_import_stops_there_and_says_so(
    store: Store, tmp_path: Path
) -> None:
    """The first pass saw a sound file; rows appended while the second pass ran are not."""
    path = write(
        tmp_path / "customers.csv",
        "customer_id,email\nc1,a@example.com\nc2,b@example.com\nc3,c@example.com\n",
    )

    appended: list[int] = []

    def append_broken_rows(done: int) -> None:
        if not appended:
            appended.append(done)
            with path.open("a") as handle:
                handle.write('c4,"d@example.com\nc5,e@example.com\nc6,"f@example.com\n')
                handle.write("c7,g@example.com\n")  # fine, but after the break: not imported

    report = run(store, Kind.CUSTOMERS, path, batch_size=2, progress=append_broken_rows)
    assert report.stopped == (
        f"{path}:5: the import stopped here: the rows before line 5 were imported or "
        "reported above, nothing from line 5 on"
    )
    assert [(p.line, p.column) for p in report.rejected] == [(5, "row")]
    assert (report.counts.inserted, report.rows, report.ok) == (3, 4, False)
    assert store.customers.get_customer("c3") is not None
    assert store.customers.get_customer("c5") is None and store.customers.get_customer("c7") is None


def write_bytes(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def run_or_refuse(store: Store, kind: Kind, path: Path) -> ImportReport | InputError:
    """The import's report, or the InputError that refused the whole file."""
    try:
        return import_file(store, kind, path, now=NOW, zone=UTC_ZONE, batch_size=3)
    except InputError as exc:
        return exc


HEADERS = {
    Kind.CUSTOMERS: b"customer_id,email,notes\n",
    Kind.REPS: b"rep_id;email;name\n",
    Kind.ACTIVITIES: b"activity_id,customer_id,occurred_at,amount,margin\n",
}
GOOD = [b"", b"c1", b"c2", b"r1", b"a@example.com", b"b@example.com", b"2026-01-01", b"12.5"]
# What real files go wrong with: quotes, line breaks of every kind, NULs, bytes that are not
# UTF-8, numbers money cannot be, values past csv's field limit.
BAD = [
    b'"',
    b'""',
    b'"a,b"',
    b'"x\ny"',
    b'"x" y',
    b"\x00",
    b"\xff",
    b"\r",
    b"1e308",
    b"nan",
    b"-inf",
    b"x" * 140_000,
    b'"' + (b"x" * 999 + b"\n") * 140,
]


# Rows that import, with ids that repeat within a file and across files.
GOOD_ROWS = {
    Kind.CUSTOMERS: [b"c1,a@example.com,hi", b"c2,b@example.com,", b'c3,c@example.com,"x\ny"'],
    Kind.REPS: [b"r1;r@example.com;Rita", b"r2;s@example.com;", b"r1;t@example.com;Tom"],
    Kind.ACTIVITIES: [b"o1,c1,2026-01-01,12.5,3", b",c2,2026-02-01,5,", b"o1,c2,2026-03-01,,"],
}


@st.composite
def import_files(draw: st.DrawFn) -> tuple[Kind, bytes]:
    """A kind and a file for it: arbitrary bytes, or its header then good and broken rows."""
    kind = draw(st.sampled_from(list(Kind)))
    if draw(st.integers(0, 4)) == 0:
        return kind, draw(st.binary(max_size=300))
    field = st.one_of(st.sampled_from(GOOD), st.sampled_from(BAD), st.binary(max_size=4))
    delimiter = b";" if kind is Kind.REPS else b","
    row = st.one_of(
        st.sampled_from(GOOD_ROWS[kind]),
        st.lists(field, min_size=1, max_size=6).map(delimiter.join),
    )
    rows = draw(st.lists(st.tuples(row, st.sampled_from([b"\n", b"\r\n", b"\r"])), max_size=12))
    return kind, HEADERS[kind] + b"".join(text + end for text, end in rows)


@hypothesis.settings(
    max_examples=200,
    deadline=None,  # real imports into a real database
    derandomize=True,
    database=None,
    # One database for all examples on purpose: imports build on what earlier ones stored.
    suppress_health_check=[
        hypothesis.HealthCheck.function_scoped_fixture,
        hypothesis.HealthCheck.too_slow,
        hypothesis.HealthCheck.data_too_large,
    ],
)
@hypothesis.given(file=import_files())
def test_any_bytes_give_a_clean_report_whose_parts_add_up(
    store: Store, tmp_path: Path, file: tuple[Kind, bytes]
) -> None:
    kind, content = file
    if store.customers.get_customer("c1") is None:
        customers = b"customer_id,email\nc1,a@example.com\nc2,b@example.com\n"
        run(store, Kind.CUSTOMERS, write_bytes(tmp_path / "seed.csv", customers))
    path = write_bytes(tmp_path / "any.csv", content)
    before = store.customers.overview()
    report = run_or_refuse(store, kind, path)
    if isinstance(report, InputError):  # the file as a whole: one clear error, nothing written
        assert str(report).startswith(str(path))
        assert store.customers.overview() == before
        return
    c = report.counts
    assert report.rows == c.inserted + c.updated + c.unchanged + len(report.rejected)
    lines = [p.line for p in report.rejected]
    assert len(set(lines)) == len(lines)  # one problem per row, each on a line of the file
    assert all(2 <= line <= len(path.read_bytes().splitlines()) for line in lines)
    assert report.ok == (not report.rejected and report.stopped is None)


def test_an_address_suppressed_in_any_spelling_is_never_mailed(
    store: Store, tmp_path: Path
) -> None:
    """Imported as ``Ana@Bücher.Example``, suppressed (by a webhook, a person) as
    `` ANA@xn--bcher-kva.example\\n``: it is one address, stored and matched in one form."""
    path = write(
        tmp_path / "customers.csv",
        "customer_id,email,first_name\nc1, Ana@Bücher.Example ,Ana\nc2,cy@example.com,Cy\n",
    )
    assert run(store, Kind.CUSTOMERS, path).counts.inserted == 2
    found = store.customers.get_customer("c1")
    assert found is not None
    assert found[0].email == "ana@xn--bcher-kva.example"
    store.sending.suppress(" ANA@xn--bcher-kva.example\n", "complaint", "webhook", NOW)
    assert store.sending.suppressed_among([found[0].email, "cy@example.com"]) == {
        "ana@xn--bcher-kva.example"
    }
    assert store.sending.suppressed_among(["ana@bücher.example"]) == {"ana@bücher.example"}


# -- an unclosed quote on a line already past csv's field limit -----------------------------

RUNAWAY = "x" * 140_000  # one line longer than the 131,072 characters csv allows a value


def good_customers(first: int, count: int) -> list[str]:
    return [f"c{i},c{i}@example.com,note {i}" for i in range(first, first + count)]


def test_an_unclosed_quote_on_a_line_past_the_field_limit_imports_nothing_and_names_its_line(
    tmp_path: Path, database_url: str, store: Store
) -> None:
    rows = [*good_customers(0, 3000), f'c3000,c3000@example.com,"{RUNAWAY}']
    rows += good_customers(3001, 10)
    path = write(tmp_path / "customers.csv", "customer_id,email,notes\n" + "\n".join(rows) + "\n")
    result = reengage(tmp_path, database_url, "import", "customers", str(path))

    assert result.returncode == 1
    assert result.stderr.startswith(
        f"error: {path}:3002: a quote opened in the row on this line is not closed by the "
        "line's end, and the value grows past 131,072 characters: its closing quote is "
        "probably missing, and the rows after it would be read as part of that one value;"
    ), result.stderr
    assert "Nothing was imported: fix the file and import it again" in result.stderr
    assert "longer than 131,072" not in result.stderr
    assert store.customers.overview().customers == 0  # like a small file: nothing at all


def test_an_unclosed_quote_on_a_long_activity_line_is_refused_whole(
    store: Store, tmp_path: Path
) -> None:
    run(store, Kind.CUSTOMERS, write(tmp_path / "c.csv", "customer_id,email\nc1,a@example.com\n"))
    rows = [f"o{i},c1,2026-01-01,{i}.5" for i in range(2000)]
    rows += [f'o2000,c1,2026-01-01,"{RUNAWAY}', *(f"o{i},c1,2026-02-01,1" for i in range(10))]
    path = write(
        tmp_path / "activities.csv",
        "activity_id,customer_id,occurred_at,amount\n" + "\n".join(rows),
    )
    with pytest.raises(InputError, match=rf"^{re.escape(str(path))}:2002: a quote opened in "):
        run(store, Kind.ACTIVITIES, path)
    found = store.customers.get_customer("c1")
    assert found is not None and (found[1] is None or found[1].total_value == 0)


@pytest.mark.parametrize(
    "long_row",
    [
        f'c5,c5@example.com,"{RUNAWAY}"',  # closed quotes: only too long
        f'c5,c5@example.com,"say ""{RUNAWAY}"" twice"',  # doubled quotes inside, closed
        f'c5,c5@example.com,{RUNAWAY}"quote\'s inside"',  # unquoted: a quote inside is text
    ],
)
def test_a_long_value_whose_quotes_close_on_its_line_rejects_only_that_row(
    store: Store, tmp_path: Path, long_row: str
) -> None:
    rows = [*good_customers(0, 5), long_row, *good_customers(6, 10)]
    path = write(tmp_path / "customers.csv", "customer_id,email,notes\n" + "\n".join(rows) + "\n")
    report = run(store, Kind.CUSTOMERS, path)
    assert [(p.line, p.column) for p in report.rejected] == [(7, "row")]
    assert "longer than 131,072 characters" in report.rejected[0].problem
    assert (report.counts.inserted, report.rows, report.stopped) == (15, 16, None)


def test_an_unclosed_long_quote_on_the_last_line_rejects_only_that_row(
    store: Store, tmp_path: Path
) -> None:
    """Nothing follows it to be swallowed: the same verdict as a short one (see above)."""
    rows = [*good_customers(0, 5), f'c5,c5@example.com,"{RUNAWAY}']
    path = write(tmp_path / "customers.csv", "customer_id,email,notes\n" + "\n".join(rows))
    report = run(store, Kind.CUSTOMERS, path)
    assert [(p.line, p.column) for p in report.rejected] == [(7, "row")]
    assert (report.counts.inserted, report.stopped) == (5, None)


def test_the_second_pass_stops_at_an_unclosed_quote_on_a_long_line_too(tmp_path: Path) -> None:
    """As when the file grew a broken quote after the first pass checked it."""
    from reengage.ingest.csvfile import CsvReader
    from reengage.ingest.records import RowProblem

    rows = [
        *good_customers(0, 3),
        f'c3,c3@example.com,"{RUNAWAY}"',  # too long, but closed: that row only
        f'c4,c4@example.com,"{RUNAWAY}',
        *good_customers(5, 3),
    ]
    path = write(tmp_path / "customers.csv", "customer_id,email,notes\n" + "\n".join(rows) + "\n")
    reader = CsvReader(path, Kind.CUSTOMERS, None)
    rejected: list[RowProblem] = []
    kept = [line for batch in reader.batches(2, rejected) for line, _ in batch]
    assert kept == [2, 3, 4]
    assert [(p.line, p.column) for p in rejected] == [(5, "row"), (6, "row")]
    assert "a quote opened in the row on this line is not closed" in rejected[1].problem
    assert reader.stopped is not None and reader.stopped.startswith(f"{path}:6: the import stopped")


def test_amounts_float_would_bend_are_row_errors_naming_line_column_and_fix(
    store: Store, tmp_path: Path
) -> None:
    run(store, Kind.CUSTOMERS, write(tmp_path / "c.csv", "customer_id,email\nc1,a@example.com\n"))
    path = write(
        tmp_path / "activities.csv",
        "customer_id,occurred_at,amount,margin\n"
        "c1,2026-01-01,1_000,\nc1,2026-02-01,１２,\nc1,2026-03-01,-1e-320,\n"
        "c1,2026-04-01,40,0.001\nc1,2026-05-01, 120.5 ,1e1\nc1,2026-06-01,0,\n",
    )
    report = run(store, Kind.ACTIVITIES, path)
    assert [str(p) for p in report.rejected] == [
        f"{path}:2: amount: '1_000' is not a plain number: write 1000 (ASCII digits 0-9, '.' "
        "before the decimals, no digit grouping)",
        f"{path}:3: amount: '１２' is not a plain number: write 12 (ASCII digits 0-9, '.' "
        "before the decimals, no digit grouping)",
        f"{path}:4: amount: '-1e-320' is not zero but smaller than a cent (0.01): write 0 if "
        "there was no amount, or check the decimal point and the exponent",
        f"{path}:5: margin: '0.001' is not zero but smaller than a cent (0.01): write 0 if "
        "there was no margin, or check the decimal point and the exponent",
    ]
    found = store.customers.get_customer("c1")
    assert found is not None and found[1] is not None
    assert (found[1].total_value, found[1].total_margin) == (120.5, 10.0)


def test_a_reps_file_without_names_keeps_the_names_stored(store: Store, tmp_path: Path) -> None:
    """A file of rep ids, emails and zones (a timezone update, say) names nobody: the names
    on file stay, and a new rep is called by their mailbox until a name comes."""
    named = tmp_path / "reps.csv"
    named.write_text("rep_id,name,email\nR1,Ben Hoffmann,ben@sales.example.com\n")
    run(store, Kind.REPS, named)
    zones = tmp_path / "zones.csv"
    zones.write_text(
        "rep_id,email,timezone\nR1,ben@sales.example.com,Asia/Shanghai\n"
        "R2,kim@sales.example.com,UTC\n"
    )
    assert run(store, Kind.REPS, zones).rejected == []
    reps = {r.external_id: r for r in store.calls.reps(["R1", "R2"])}
    assert (reps["R1"].name, reps["R1"].timezone) == ("Ben Hoffmann", "Asia/Shanghai")
    assert reps["R2"].name == "kim"


def test_a_rep_in_a_language_without_words_is_imported_with_a_warning(
    store: Store, tmp_path: Path
) -> None:
    reps = tmp_path / "reps.csv"
    reps.write_text(
        "rep_id,email,locale\nR1,ana@sales.example.com,fr\nR2,li@sales.example.com,zh_CN\n"
        "R3,bo@sales.example.com,en-GB\n"
    )
    report = run(store, Kind.REPS, reps)
    assert report.rejected == []
    [warning] = [w for w in report.warnings if "no digest or call form" in w]
    assert "fr" in warning and "zh" not in warning.split("(")[0] and "en-GB" not in warning
    assert {r.locale for r in store.calls.reps(["R1", "R2", "R3"])} == {"fr", "zh-CN", "en-GB"}


def test_an_activity_dated_in_the_future_is_refused_and_hides_no_lapse(
    store: Store, customers_csv: Path, tmp_path: Path
) -> None:
    """An order dated next year (a typo, a planned delivery) would make a customer silent for
    years look as if they had just ordered. A few hours ahead (another time zone's clock)
    is kept."""
    run(store, Kind.CUSTOMERS, customers_csv)
    activities = write(
        tmp_path / "activities.csv",
        (
            "customer_id,occurred_at,amount\n"
            "c1,2025-06-12,100\n"
            "c1,2027-01-09,100\n"
            "c3,2026-11-01T20:00:00+00:00,40\n"
        ),
    )
    report = run(store, Kind.ACTIVITIES, activities)
    assert [str(p) for p in report.rejected] == [
        f"{activities}:3: occurred_at: 2027-01-09 00:00 UTC is in the future (now is "
        "2026-11-01 00:00 UTC): an activity is recorded once it happened; check the date "
        "and its time zone, and import it when it has"
    ]
    assert report.counts.inserted == 2
    found = store.customers.get_customer("c1")
    assert found is not None and found[1] is not None
    assert found[1].last_activity_at == datetime(2025, 6, 12, tzinfo=UTC)
