"""The ingest API and providers' webhooks, served by the real app over uvicorn on loopback.

What a client notices: the bearer tokens, per-item errors with index and field while the
rest is stored, idempotent re-posts, the same stats as a CSV import, and webhooks that
suppress once per event id. Schemathesis then fuzzes every operation from the schema the
app serves and checks that the answers conform to it and that none is a 500.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import hypothesis
import pytest
import schemathesis
from schemathesis import Case
from schemathesis.specs.openapi.checks import negative_data_rejection

from reengage.ingest import Kind, import_file
from reengage.store import Store
from reengage.store.sending import NewEnrollment
from reengage.web import WebConfig, api, create_app
from tests.integration.web_server import client, running_app

API_TOKEN = "api-" + "a" * 32
WEBHOOK_TOKEN = "hook-" + "w" * 32
NOW = datetime(2025, 3, 1, 12, tzinfo=UTC)
LEASE = timedelta(minutes=5)
API = {"Authorization": f"Bearer {API_TOKEN}"}
HOOK = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}


@dataclass
class Served:
    store: Store
    base: str
    http: httpx.Client

    def post(self, path: str, body: Any, token: str | None = API_TOKEN) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.http.post(f"{self.base}{path}", json=body, headers=headers)

    def kinds(self) -> list[str]:
        return [r.kind for r in self.store.responses.recent(NOW - timedelta(days=1))]

    def mailed(self, customer_id: str, email: str) -> str:
        """The Message-ID of a first mail sent to a new customer (a webhook event about it
        names it, as a provider's does)."""
        item = {"customer_id": customer_id, "email": email}
        assert self.post("/api/v1/customers", {"items": [item]}).status_code == 200
        found = self.store.customers.customer_ids([customer_id])[customer_id]
        self.store.sending.enroll([NewEnrollment(found, "win-back", False, "hello", NOW)], NOW)
        (claimed,) = [
            c for c in self.store.sending.claim_due(NOW, 100, LEASE) if c.customer_id == found
        ]
        started = self.store.sending.start_message(claimed, "hello", NOW, LEASE)
        assert started.message_id is not None
        message_id = f"<{started.token}@acme.example>"
        self.store.sending.finish_sent(
            started.message_id,
            claimed,
            response="250 ok",
            smtp_id=message_id,
            now=NOW,
            next_step=None,
        )
        return message_id

    def unmatched(self) -> int:
        return self.store.responses.unmatched(1)[1]


def config(**changes: Any) -> WebConfig:
    base: dict[str, Any] = {
        "secret": "s" * 40,
        "api_token": API_TOKEN,
        "webhook_token": WEBHOOK_TOKEN,
        "clock": lambda: NOW,
    }
    return WebConfig(**(base | changes))


@pytest.fixture
def served(store: Store) -> Iterator[Served]:
    with running_app(create_app(store, config())) as base, client() as http:
        yield Served(store, base, http)


# -- tokens ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/customers", "/api/v1/reps", "/api/v1/activities"])
def test_without_or_with_a_wrong_token_the_api_answers_401(served: Served, path: str) -> None:
    body = {"items": [{"customer_id": "c1", "email": "ana@example.com"}]}
    for token in (None, "wrong", WEBHOOK_TOKEN):
        answer = served.post(path, body, token=token)
        assert answer.status_code == 401, token
        assert answer.headers["www-authenticate"] == "Bearer"
        assert "bearer token" in answer.json()["error"]
    answer = served.http.post(
        f"{served.base}{path}", json=body, headers={"Authorization": f"Basic {API_TOKEN}"}
    )
    assert answer.status_code == 401
    assert served.store.customers.get_customer("c1") is None


def test_the_webhook_takes_only_its_own_token(served: Served) -> None:
    ours = served.mailed("c1", "ana@example.com")
    bounce = {"id": "e1", "type": "bounce", "message": ours, "recipient": "ana@example.com"}
    event = {"events": [bounce]}
    for token in (None, API_TOKEN, "wrong"):
        answer = served.post("/api/v1/events", event, token=token)
        assert answer.status_code == 401, token
        assert answer.headers["www-authenticate"] == "Bearer"
    assert not served.store.sending.is_suppressed("ana@example.com")
    assert served.unmatched() == 0  # refused unread: not even kept
    assert served.post("/api/v1/events", event, token=WEBHOOK_TOKEN).status_code == 200
    assert served.store.sending.is_suppressed("ana@example.com")


def test_an_endpoint_whose_token_is_unset_is_off_and_says_how_to_turn_it_on(
    store: Store,
) -> None:
    app = create_app(store, config(api_token=None, webhook_token=None))
    with running_app(app) as base, client() as http:
        ingest = http.post(f"{base}/api/v1/customers", json={"items": []}, headers=API)
        hook = http.post(f"{base}/api/v1/events", json={"events": []}, headers=HOOK)
        described = http.get(f"{base}/api/v1/openapi.json")
    assert ingest.status_code == 404
    assert "REENGAGE_API_TOKEN" in ingest.json()["error"]
    assert hook.status_code == 404
    assert "REENGAGE_WEBHOOK_TOKEN" in hook.json()["error"]
    assert described.status_code == 404, "the API's description is off with the API"
    assert "REENGAGE_API_TOKEN" in described.json()["error"]


# -- ingest ----------------------------------------------------------------------------------


CUSTOMERS = [
    {
        "customer_id": "c1",
        "email": "Ana@Example.com",
        "first_name": "Ana",
        "consent": True,
        "interests": ["tea", "cups"],
        "contacts": [{"name": "Bo", "role": "buyer", "email": "bo@example.com"}],
        "important_dates": [{"label": "founded", "date": "2001-05-04"}],
        "rep_id": "r1",
    },
    {"customer_id": "c2", "email": "not-an-address"},
    {"customer_id": "c3", "email": "cy@example.com", "favourite_colour": "teal"},
    {"customer_id": "c4", "email": "di@example.com", "amount": 3},
    {"customer_id": "c5", "email": "ed@example.com", "consent": "no", "tags": None},
]


def test_a_batch_with_bad_items_reports_each_by_index_and_field_and_stores_the_rest(
    served: Served,
) -> None:
    answer = served.post("/api/v1/customers", {"items": CUSTOMERS})
    assert answer.status_code == 200
    report = answer.json()
    assert report["received"] == 5
    assert report["inserted"] == 2 and report["updated"] == 0
    rejected = {(r["index"], r["field"]): r["problem"] for r in report["rejected"]}
    assert set(rejected) == {(1, "email"), (2, "favourite_colour"), (3, "amount")}
    assert "not an email address" in rejected[(1, "email")]
    assert "unknown field" in rejected[(2, "favourite_colour")]
    assert any("r1" in w for w in report["warnings"])  # the rep is not imported yet

    found = served.store.customers.get_customer("c1")
    assert found is not None
    ana, _ = found
    assert ana.email == "ana@example.com" and ana.first_name == "Ana"
    assert ana.interests == ["tea", "cups"]
    assert ana.contacts == [{"name": "Bo", "role": "buyer", "email": "bo@example.com"}]
    assert ana.important_dates == [{"label": "founded", "date": "2001-05-04"}]
    assert ana.rep_external_id == "r1"
    ed = served.store.customers.get_customer("c5")
    assert ed is not None and ed[0].consent is False and ed[0].tags == []
    for missing in ("c2", "c3", "c4"):
        assert served.store.customers.get_customer(missing) is None


def test_posting_the_same_batch_again_changes_nothing(served: Served) -> None:
    good = [CUSTOMERS[0], CUSTOMERS[4]]
    assert served.post("/api/v1/customers", {"items": good}).json()["inserted"] == 2
    again = served.post("/api/v1/customers", {"items": good}).json()
    assert (again["inserted"], again["updated"], again["unchanged"]) == (0, 0, 2)
    changed = served.post(
        "/api/v1/customers", {"items": [{**CUSTOMERS[0], "first_name": "Anna"}]}
    ).json()
    assert (changed["inserted"], changed["updated"]) == (0, 1)
    found = served.store.customers.get_customer("c1")
    assert found is not None and found[0].first_name == "Anna"


def test_reps_are_stored_and_idempotent(served: Served) -> None:
    reps = [
        {"rep_id": "r1", "email": "rita@example.com", "name": "Rita", "timezone": "Europe/Oslo"},
        {"rep_id": "r2", "email": "sam@example.com", "timezone": "Mars/Olympus"},
        {"email": "nobody@example.com"},
    ]
    report = served.post("/api/v1/reps", {"items": reps}).json()
    assert report["inserted"] == 1
    assert {(r["index"], r["field"]) for r in report["rejected"]} == {
        (1, "timezone"),
        (2, "rep_id"),
    }
    assert served.store.customers.rep_name("r1") == "Rita"
    assert served.store.customers.rep_name("r2") is None
    again = served.post("/api/v1/reps", {"items": reps[:1]}).json()
    assert again["unchanged"] == 1 and again["inserted"] == 0


ORDERS = [
    ("2024-01-10T10:00:00", "120.50", "30"),
    ("2024-03-02T09:30:00", "80", ""),
    ("2024-05-20", "99.99", "20.5"),
]


def test_activities_update_stats_exactly_like_a_csv_import(served: Served, tmp_path: Path) -> None:
    customers = [
        {"customer_id": "api", "email": "api@example.com"},
        {"customer_id": "csv", "email": "csv@example.com"},
    ]
    served.post("/api/v1/customers", {"items": customers})
    items: list[dict[str, Any]] = [
        {"customer_id": "api", "occurred_at": when, "amount": float(amount)}
        | ({"margin": float(margin)} if margin else {})
        for when, amount, margin in ORDERS
    ]
    items.append({"customer_id": "ghost", "occurred_at": "2024-06-01"})
    items.append({"customer_id": "api", "occurred_at": "yesterday-ish"})
    report = served.post("/api/v1/activities", {"items": items}).json()
    assert report["inserted"] == 3
    assert {(r["index"], r["field"]) for r in report["rejected"]} == {
        (3, "customer_id"),
        (4, "occurred_at"),
    }
    again = served.post("/api/v1/activities", {"items": items[:3]}).json()
    assert (again["inserted"], again["unchanged"]) == (0, 3)

    csv = tmp_path / "activities.csv"
    rows = [f"csv,{when},{amount},{margin}" for when, amount, margin in ORDERS]
    csv.write_text("customer_id,occurred_at,amount,margin\n" + "\n".join(rows) + "\n")
    import_file(served.store, Kind.ACTIVITIES, csv, now=NOW, zone=ZoneInfo("UTC"))

    by_api, by_csv = (
        served.store.customers.get_customer("api"),
        served.store.customers.get_customer("csv"),
    )
    assert by_api is not None and by_csv is not None
    api_stats, csv_stats = by_api[1], by_csv[1]
    assert api_stats is not None and csv_stats is not None
    assert api_stats.order_count == 3
    assert api_stats.total_value == pytest.approx(300.49)
    skip = {"customer_id", "updated_at"}
    assert api_stats.model_dump(exclude=skip) == csv_stats.model_dump(exclude=skip)


def test_a_body_that_is_not_json_or_of_the_wrong_shape_is_refused(served: Served) -> None:
    url = f"{served.base}/api/v1/customers"
    not_json = served.http.post(url, content=b"customer_id,email\n", headers=API)
    assert not_json.status_code == 400 and "not JSON" in not_json.json()["error"]
    for body in ([{"customer_id": "c1"}], {"rows": []}, {"items": {"customer_id": "c1"}}):
        answer = served.post("/api/v1/customers", body)
        assert answer.status_code == 422, body
        assert '{"items": [...]}' in answer.json()["error"]


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b'{"items": [{"customer_id": "c1", "email": "a@example.com", "\\ud800": 1}]}', "UTF-8"),
        (b'{"items": [{"customer_id": "c1", "email": "a@example.com", "notes": NaN}]}', "NaN"),
        (b'{"items": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply"),
    ],
    ids=["lone-surrogate", "nan", "deep-nesting"],
)
def test_json_that_cannot_be_stored_or_answered_is_a_400_not_a_500(
    served: Served, raw: bytes, why: str
) -> None:
    answer = served.http.post(f"{served.base}/api/v1/customers", content=raw, headers=API)
    assert answer.status_code == 400
    assert why in answer.json()["error"]
    assert served.store.customers.get_customer("c1") is None


def test_values_the_database_cannot_hold_are_reported_per_item(served: Served) -> None:
    items = [
        {"customer_id": "c1", "email": "ana@example.com", "first_name": "A\x00na"},
        {"customer_id": 7, "email": "bo@example.com"},
        {"customer_id": "c3", "email": "cy@example.com"},
    ]
    report = served.post("/api/v1/customers", {"items": items}).json()
    assert report["inserted"] == 1
    rejected = {(r["index"], r["field"]): r["problem"] for r in report["rejected"]}
    assert set(rejected) == {(0, "first_name"), (1, "customer_id")}
    assert "NUL" in rejected[(0, "first_name")]
    assert "expected a string" in rejected[(1, "customer_id")]
    assert served.store.customers.get_customer("c3") is not None
    assert served.store.customers.get_customer("7") is None

    late = {"customer_id": "c3", "occurred_at": "9999-12-31T23:00:00-05:00"}
    report = served.post("/api/v1/activities", {"items": [late]}).json()
    assert [(r["index"], r["field"]) for r in report["rejected"]] == [(0, "occurred_at")]
    assert "out of range" in report["rejected"][0]["problem"]


def test_a_body_over_20_mb_is_refused(served: Served) -> None:
    big = b'{"items": [' + b" " * (21 * 1024 * 1024) + b"]}"
    answer = served.http.post(f"{served.base}/api/v1/customers", content=big, headers=API)
    assert answer.status_code == 413
    assert "20 MB" in answer.json()["error"]


def test_more_than_ten_thousand_items_are_refused_whole(served: Served) -> None:
    items = [{"customer_id": f"c{i}", "email": f"c{i}@example.com"} for i in range(10_001)]
    answer = served.post("/api/v1/customers", {"items": items})
    assert answer.status_code == 413
    assert "at most 10000" in answer.json()["error"]
    assert served.store.customers.get_customer("c0") is None


# -- provider webhooks -----------------------------------------------------------------------


def bounce(message: str | None, recipient: str = "Ana@Example.com", key: str = "evt-1") -> Any:
    """A provider's hard-bounce event ``key`` about our ``message`` to ``recipient``."""
    return {
        "id": key,
        "type": "bounce",
        "message": message,
        "recipient": recipient,
        "detail": "5.1.1",
    }


def test_a_bounce_suppresses_once_however_often_the_provider_retries(served: Served) -> None:
    event = bounce(served.mailed("c1", "ana@example.com"))
    first = served.post("/api/v1/events", {"events": [event]}, token=WEBHOOK_TOKEN)
    second = served.post("/api/v1/events", {"events": [event, event]}, token=WEBHOOK_TOKEN)
    assert first.json()["results"] == [{"index": 0, "id": "evt-1", "action": "suppressed"}]
    assert second.status_code == 200
    assert served.store.sending.is_suppressed("ana@example.com")
    assert served.kinds() == ["bounce"]


def test_a_bounce_naming_no_message_of_ours_or_another_address_is_kept_unmatched(
    served: Served,
) -> None:
    ours = served.mailed("c1", "ana@example.com")
    served.mailed("c2", "bo@example.com")
    forged = [
        bounce(None, key="evt-1"),  # an address alone: anyone holding the token could say it
        bounce("<nosuchtoken@acme.example>", key="evt-2"),
        bounce(ours, recipient="bo@example.com", key="evt-3"),  # our mail, someone else
    ]
    answer = served.post("/api/v1/events", {"events": forged}, token=WEBHOOK_TOKEN)
    assert [r["action"] for r in answer.json()["results"]] == ["unmatched"] * 3
    assert not served.store.sending.is_suppressed("ana@example.com")
    assert not served.store.sending.is_suppressed("bo@example.com")
    assert served.kinds() == []
    assert served.unmatched() == 3


def test_a_bounce_acts_on_the_address_mailed_after_the_customer_changed_it(
    served: Served,
) -> None:
    ours = served.mailed("c1", "ana@old.example")
    moved = {"items": [{"customer_id": "c1", "email": "Ana@New.Example"}]}
    assert served.post("/api/v1/customers", moved).status_code == 200
    events = [
        bounce(ours, recipient="ana@new.example", key="evt-1"),  # not whom we mailed
        {"id": "evt-2", "type": "bounce", "message": ours},
        bounce(ours, recipient="ANA@old.example", key="evt-3"),
    ]
    answer = served.post("/api/v1/events", {"events": events}, token=WEBHOOK_TOKEN)
    assert [r["action"] for r in answer.json()["results"]] == [
        "unmatched",
        "suppressed",
        "suppressed",
    ]
    assert served.store.sending.suppressed_among(["ana@old.example", "ana@new.example"]) == {
        "ana@old.example"
    }


def test_a_retried_event_is_answered_as_a_duplicate(served: Served) -> None:
    event = bounce(served.mailed("c1", "ana@example.com"))
    served.post("/api/v1/events", {"events": [event]}, token=WEBHOOK_TOKEN)
    again = served.post("/api/v1/events", {"events": [event]}, token=WEBHOOK_TOKEN)
    assert again.json()["results"] == [{"index": 0, "id": "evt-1", "action": "duplicate"}]


def test_a_complaint_suppresses(served: Served) -> None:
    ours = served.mailed("c2", "bo@example.com")
    event = {
        "id": "evt-2",
        "type": "complaint",
        "message": ours,
        "recipient": "bo@example.com",
        "detail": "abuse",
    }
    answer = served.post("/api/v1/events", {"events": [event]}, token=WEBHOOK_TOKEN)
    assert answer.json()["results"][0]["action"] == "suppressed"
    assert served.store.sending.is_suppressed("bo@example.com")
    assert served.kinds() == ["complaint"]


def test_events_that_cannot_be_acted_on_are_reported_not_a_server_error(served: Served) -> None:
    events = [
        {"id": "evt-3", "type": "delivered", "message": "<nosuchtoken@example.com>"},
        {"id": "evt-4", "type": "open"},
        {"id": "evt-5", "type": "teleported", "recipient": "ana@example.com"},
        "not an object",
        {"type": "bounce", "recipient": "ana@example.com"},
        {"id": "evt-6", "type": "bounce", "recipient": "x" * 400 + "@example.com"},
        {"id": "evt-7", "type": "bounce", "recipient": "not an address"},
        {"id": "evt-\x008", "type": "bounce", "recipient": "ana@example.com"},
        {"id": "evt-9", "type": "complaint", "recipient": "ana@example.com", "detail": "\x00"},
    ]
    answer = served.post("/api/v1/events", {"events": events}, token=WEBHOOK_TOKEN)
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert results[0] == {"index": 0, "id": "evt-3", "action": "unknown_message"}
    assert [r["action"] for r in results[1:]] == ["rejected"] * 8
    problems = [r["problem"].split(":")[0] for r in results[1:]]
    assert problems == [
        "message or recipient",
        "type",
        "expected a JSON object",
        "id",
        "recipient",
        "recipient",
        "id",
        "detail",
    ]
    assert not served.store.sending.is_suppressed("ana@example.com")
    assert served.kinds() == []


# -- the schema, fuzzed --------------------------------------------------------------------


def test_the_served_schema_is_valid_openapi_and_the_one_fuzzed_below(served: Served) -> None:
    loaded = schemathesis.openapi.from_url(f"{served.base}/api/v1/openapi.json")
    loaded.validate()  # against the OpenAPI 3.1 meta-schema
    assert loaded.raw_schema == api.schema()
    operations = {op.ok().label for op in loaded.get_all_operations()}
    assert operations == {
        "POST /api/v1/customers",
        "POST /api/v1/reps",
        "POST /api/v1/activities",
        "POST /api/v1/events",
    }


# Built from the same function the app serves (checked equal above), so pytest can make one
# test per operation at collection time; each case is sent to the app running on loopback.
schema = schemathesis.openapi.from_dict(api.schema())


@schema.parametrize()
@hypothesis.settings(
    max_examples=30,  # per operation and backend: ~15 s in all, and it found nothing more at 200
    deadline=None,  # a request to a real server, not a pure function
    derandomize=True,  # the same cases on every run: CI failures reproduce locally
    database=None,
    # One app and database per operation on purpose: the cases may build on what earlier
    # ones stored, as a client's batches would.
    suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture],
)
def test_the_app_keeps_to_its_schema_and_never_fails_with_500(case: Case, served: Served) -> None:
    token = WEBHOOK_TOKEN if case.path == "/api/v1/events" else API_TOKEN
    # Every built-in check runs (not_a_server_error, status code, content type, response
    # schema and headers conformance, positive data acceptance, ignored auth...) but one:
    # the batch endpoints answer 200 to a well-formed batch and list the items they
    # refused (per-item validation is the API's contract), so a schema-invalid item is
    # rightly not a 4xx for the whole request.
    case.call_and_validate(
        base_url=served.base,
        headers={"Authorization": f"Bearer {token}"},
        excluded_checks=[negative_data_rejection],
    )


# -- repeated ids and money bounds, as for a file ------------------------------------------


def test_an_id_repeated_within_one_request_is_stored_from_its_first_item_and_reported(
    served: Served,
) -> None:
    items = [
        {"customer_id": "c1", "email": "ana@example.com", "first_name": "Ana"},
        {"customer_id": "c2", "email": "bo@example.com"},
        {"customer_id": "c1", "email": "ana@example.com", "first_name": "Anna"},
    ]
    report = served.post("/api/v1/customers", {"items": items}).json()
    assert report["rejected"] == [
        {
            "index": 2,
            "field": "customer_id",
            "problem": "'c1' already appears at index 0 of this request; only the first is "
            "imported (merge the two, or give this one an id of its own)",
        }
    ]
    assert (report["inserted"], report["updated"], report["unchanged"]) == (2, 0, 0)
    found = served.store.customers.get_customer("c1")
    assert found is not None and found[0].first_name == "Ana"

    orders = [
        {"activity_id": "o-1", "customer_id": "c1", "occurred_at": "2025-01-01", "amount": 10},
        {"activity_id": "o-1", "customer_id": "c2", "occurred_at": "2025-01-02", "amount": 99},
    ]
    report = served.post("/api/v1/activities", {"items": orders}).json()
    assert [(r["index"], r["field"]) for r in report["rejected"]] == [(1, "activity_id")]
    assert "'o-1' already appears at index 0 of this request" in report["rejected"][0]["problem"]
    assert report["received"] == report["inserted"] + len(report["rejected"])


def test_amounts_beyond_what_money_can_be_are_refused_per_item(served: Served) -> None:
    served.post("/api/v1/customers", {"items": [{"customer_id": "c1", "email": "a@example.com"}]})
    day = '"customer_id": "c1", "occurred_at": "2025-01-0'
    raw = (
        '{"items": ['
        f'{{{day}1", "amount": 1e308}}, '
        f'{{{day}2", "amount": -1e20}}, '
        f'{{{day}3", "amount": 1e400}}, '  # JSON that Python reads as infinity
        f'{{{day}4", "amount": "nan"}}, '
        f'{{{day}5", "amount": 40, "margin": "1e13"}}, '
        f'{{{day}6", "amount": 99.5, "margin": 1000000000000}}'
        "]}"
    )
    answer = served.http.post(f"{served.base}/api/v1/activities", content=raw.encode(), headers=API)
    assert answer.status_code == 200
    report = answer.json()
    assert report["inserted"] == 1
    rejected = {(r["index"], r["field"]): r["problem"] for r in report["rejected"]}
    assert set(rejected) == {
        (0, "amount"),
        (1, "amount"),
        (2, "amount"),
        (3, "amount"),
        (4, "margin"),
    }
    bound = "and 1,000,000,000,000"
    assert all(f"must be between 0 {bound}" in rejected[(i, "amount")] for i in (0, 1, 2))
    assert f"must be between -1,000,000,000,000 {bound}" in rejected[(4, "margin")]
    assert "not a number" in rejected[(3, "amount")]
    found = served.store.customers.get_customer("c1")
    assert found is not None and found[1] is not None
    assert (found[1].total_value, found[1].total_margin) == (99.5, 1e12)
