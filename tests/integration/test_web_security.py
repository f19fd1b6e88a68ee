"""The public web app cannot be bent (issue 17): form bodies are read only up to their limit,
any malformed token is a plain 400 page (the pixel is served anyway), links in mail carry
nothing readable and survive a key rotation, forms refuse posts from other sites (RFC 8058
one-click excepted), and /healthz and /metrics are not on the public app.

Served for real (uvicorn on loopback, a real ``reengage web`` process for memory), or in
process where the test must count the bytes the app pulls from a request body.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from reengage.digest import outcome_link
from reengage.errors import StoreError
from reengage.store import Store
from reengage.web import WebConfig, create_app
from tests.conftest import child_env
from tests.integration import digest_world as dw
from tests.integration.mail_world import SECRET, World, mail_world, unsubscribe_url
from tests.integration.smtp_sink import free_port
from tests.integration.web_server import client, local, running_app

MB = 1024 * 1024
LIMIT = 64 * 1024  # REENGAGE_FORM_MAX_BYTES's default
EVIL = "https://evil.example"
SAVE = {"reached": "decision_maker", "reason": "price", "worth": "yes", "next_step": "nothing"}
NEW_SECRET = "n" * 40


@pytest.fixture
def world(store: Store, tmp_path: Path) -> Iterator[World]:
    with mail_world(store, tmp_path) as w:
        yield w


def mail_config(w: World, **changes: Any) -> WebConfig:
    """The web side that answers the world's mail (as mail_world serves it)."""
    chosen: dict[str, Any] = {
        "secret": SECRET,
        "company_name": "Acme",
        "clock": lambda: w.clock["now"],
        "policy": w.service.response_policy(),
        **changes,
    }
    return WebConfig(**chosen)


def path_of(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


@pytest.fixture
def calls(store: Store) -> tuple[Store, WebConfig, str]:
    """Clients on a rep's list, the web config answering their links, and one link's path."""
    dw.fill(store)
    config = WebConfig.from_settings(dw.settings(), clock=lambda: dw.NOW)
    ws, _ = dw.workspace(Path("."))
    cid = store.customers.customer_ids(["bakery"])["bakery"]
    return store, config, path_of(outcome_link(ws, "R1", cid, dw.NOW.date(), dw.NOW))


# -- form bodies ------------------------------------------------------------------------------


def post_streamed(app: Any, path: str, total: int) -> tuple[httpx.Response, int]:
    """POST ``total`` bytes of a form body, chunked (no length declared), to ``app`` in
    process; returns the answer and how many body bytes the app pulled."""
    pulled = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal pulled
        chunk = b"x" * (64 * 1024)
        first = b"List-Unsubscribe=One-Click&action=unsubscribe&reached=nobody&note="
        pulled += len(first)
        yield first
        while pulled < total:
            pulled += len(chunk)
            yield chunk

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            return await http.post(
                path,
                content=body(),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )

    return asyncio.run(go()), pulled


def test_a_30_mb_post_to_the_preferences_page_is_refused_unread(world: World) -> None:
    w = world
    app = create_app(w.store, mail_config(w))
    answer, pulled = post_streamed(app, path_of(unsubscribe_url(w)), 30 * MB)
    assert answer.status_code == 413
    assert "That was too much to send" in answer.text and "64 KB" in answer.text
    assert pulled <= LIMIT + 2 * 64 * 1024, f"the app read {pulled} bytes of the body"
    assert not w.store.sending.is_suppressed("ana@example.com")
    assert w.kinds() == []
    # A declared length over the limit is refused before a byte is read.
    with running_app(app) as base, client() as http:
        declared = http.post(
            base + path_of(unsubscribe_url(w)),
            content=b"List-Unsubscribe=One-Click&x=" + b"x" * (2 * MB),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert declared.status_code == 413
    assert not w.store.sending.is_suppressed("ana@example.com")


def test_a_30_mb_post_to_the_outcome_form_is_refused_unread(
    calls: tuple[Store, WebConfig, str],
) -> None:
    store, config, path = calls
    answer, pulled = post_streamed(create_app(store, config), path, 30 * MB)
    assert answer.status_code == 413
    assert pulled <= LIMIT + 2 * 64 * 1024, f"the app read {pulled} bytes of the body"
    assert store.calls.outcomes_since(None) == []


def test_the_form_limit_is_a_setting(calls: tuple[Store, WebConfig, str]) -> None:
    store, _, path = calls
    config = WebConfig.from_settings(
        dw.settings(form_max_bytes=8192), clock=lambda: dw.NOW, campaigns=dict
    )
    with running_app(create_app(store, config)) as base, client() as http:
        big = http.post(base + path, data={**SAVE, "win_back": "y" * 9000})
        small = http.post(base + path, data={**SAVE, "win_back": "y" * 3000})
    assert big.status_code == 413 and "8 KB" in big.text
    assert small.status_code == 200 and "The call is recorded" in small.text


def rss_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    assert found is not None
    return int(found.group(1))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RSS from /proc")
def test_a_real_server_does_not_grow_on_a_30_mb_form_post(
    store: Store, database_url: str, tmp_path: Path
) -> None:
    dw.fill(store)
    port, ops = free_port(), free_port()
    env = child_env(
        REENGAGE_NOW=dw.NOW.isoformat(),
        REENGAGE_DATABASE_URL=database_url,
        REENGAGE_SECRET_KEY=dw.SECRET,
        REENGAGE_HTTP_PORT=str(port),
        REENGAGE_OPS_PORT=str(ops),
        REENGAGE_CAMPAIGNS_DIR=str(dw.ROOT / "campaigns"),
        REENGAGE_TEMPLATES_DIR=str(dw.ROOT / "templates"),
    )
    command = [str(Path(sys.executable).with_name("reengage")), "web"]
    process = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{base}/o/up.gif", process)
        ws, _ = dw.workspace(Path("."))
        cid = store.customers.customer_ids(["bakery"])["bakery"]
        url = local(outcome_link(ws, "R1", cid, dw.NOW.date(), dw.NOW), base)
        with client() as http:
            assert http.get(url).status_code == 200  # the form's page, as a rep sees it
        before = rss_kb(process.pid)

        def body() -> Iterator[bytes]:
            # Fields of half a megabyte: each under the form parser's own part limit, so
            # only a limit on the whole body stops them from being held.
            field = b"&win_back=" + b"y" * (MB // 2 - 10)
            yield b"reached=nobody&worth=yes&next_step=nothing"
            for _ in range(60):
                yield field

        status = None
        try:
            with client() as http:
                status = http.post(
                    url,
                    content=body(),
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                ).status_code
        except httpx.TransportError:
            pass  # the server answered 413 and closed while the client was still sending
        grown = rss_kb(process.pid) - before
        assert grown < 8 * 1024, f"the server grew by {grown} kB"
        assert status in (413, None)
        with client() as http:
            assert http.get(url).status_code == 200  # still serving
        assert store.calls.outcomes_since(None) == []
    finally:
        process.terminate()
        process.communicate(timeout=10)


def test_a_body_that_trickles_in_is_refused_in_time_and_nothing_is_done(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client sending a byte now and then cannot hold the form (and a connection)
    open: past the body's time it gets a 408 page, and nothing was changed."""
    from reengage.web import forms

    monkeypatch.setattr(forms, "BODY_SECONDS", 0.5)
    w = world
    app = create_app(w.store, mail_config(w))

    async def trickle() -> AsyncIterator[bytes]:
        yield b"List-Unsubscribe=One-Click"
        for _ in range(20):
            await asyncio.sleep(0.2)
            yield b"&x=y"

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            return await http.post(
                path_of(unsubscribe_url(w)),
                content=trickle(),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )

    answer = asyncio.run(go())
    assert answer.status_code == 408
    assert "took too long" in answer.text
    assert not w.store.sending.is_suppressed("ana@example.com")


@pytest.mark.alone  # its clients send on fixed sleeps: a neighbour's burst skews them
def test_a_crowd_of_slow_posts_gets_503_and_the_server_stays_well(
    store: Store, database_url: str, tmp_path: Path
) -> None:
    """Past REENGAGE_HTTP_MAX_CONNECTIONS the web app answers 503 instead of running out of
    file descriptors (which the database needs too); a client that goes away mid-body is
    no error in the log; once the crowd leaves, it serves again."""
    import socket
    import time

    dw.fill(store)
    port = free_port()
    env = child_env(
        REENGAGE_NOW=dw.NOW.isoformat(),
        REENGAGE_DATABASE_URL=database_url,
        REENGAGE_SECRET_KEY=dw.SECRET,
        REENGAGE_HTTP_PORT=str(port),
        REENGAGE_OPS_PORT="0",
        REENGAGE_HTTP_MAX_CONNECTIONS="10",
        REENGAGE_LOG_FORMAT="json",
        REENGAGE_CAMPAIGNS_DIR=str(dw.ROOT / "campaigns"),
        REENGAGE_TEMPLATES_DIR=str(dw.ROOT / "templates"),
    )
    command = [str(Path(sys.executable).with_name("reengage")), "web"]
    process = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    crowd: list[socket.socket] = []
    try:
        wait_until_up(f"{base}/o/up.gif", process)
        ws, _ = dw.workspace(Path("."))
        cid = store.customers.customer_ids(["bakery"])["bakery"]
        path = path_of(outcome_link(ws, "R1", cid, dw.NOW.date(), dw.NOW))
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 60000\r\n\r\n"
            "reached=no"
        ).encode()
        for _ in range(10):  # one after another, each holding the form open
            one = socket.create_connection(("127.0.0.1", port))
            one.sendall(head)
            crowd.append(one)
            time.sleep(0.05)
        time.sleep(0.3)
        with client() as http:
            assert http.get(f"{base}/o/up.gif").status_code == 503
        for one in crowd:
            one.close()  # gone mid-body
        crowd.clear()
        time.sleep(0.5)
        with client() as http:
            assert http.get(f"{base}/o/up.gif").status_code == 200
        assert store.calls.outcomes_since(None) == []
    finally:
        for one in crowd:
            one.close()
        process.terminate()
        output, _ = process.communicate(timeout=10)
    log = output.decode()
    assert "Traceback" not in log and "Exception in ASGI application" not in log, log[-3000:]


def wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            pytest.fail(f"reengage web exited: {output}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail("reengage web did not answer within 30 s")


# -- malformed tokens -------------------------------------------------------------------------

TOKENS = st.one_of(
    st.text(min_size=1, max_size=80),
    st.builds(lambda a, b: f"{a}.{b}", st.text(max_size=40), st.text(max_size=40)),
    st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.é", min_size=1
    ),
).filter(lambda t: "/" not in t and t.strip(".") != "")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(token=TOKENS)
@example(token="eyJtIjoiayJ9.\u00e9t\u00e9")  # a non-ASCII signature: a 500 before
@example(token="\u00e9")
@example(token="AAAA")
def test_any_malformed_token_is_a_400_page_and_the_pixel_is_still_served(
    world: World, token: str
) -> None:
    base, quoted = world.base, quote(token, safe="")
    with client() as http:
        pixel = http.get(f"{base}/o/{quoted}.gif")
        assert pixel.status_code == 200, token
        assert pixel.headers["content-type"] == "image/gif"
        answers = [
            http.get(f"{base}/c/{quoted}"),
            http.get(f"{base}/u/{quoted}"),
            http.post(f"{base}/u/{quoted}", content=b"List-Unsubscribe=One-Click"),
            http.get(f"{base}/call/{quoted}"),
            http.post(f"{base}/call/{quoted}", data=SAVE),
        ]
    for answer in answers:
        assert answer.status_code == 400, (token, answer.request.url)
        assert answer.headers["content-type"].startswith("text/html")
        assert "This link does not work" in answer.text
        assert "Traceback" not in answer.text
    assert world.kinds() == []


# -- tokens: opaque, and keys rotate ----------------------------------------------------------


def test_links_in_real_mail_reveal_no_ids(
    world: World, calls: tuple[Store, WebConfig, str]
) -> None:
    key = str(world.mail()["Message-ID"]).strip("<>").split("@", 1)[0]
    tokens = [unsubscribe_url(world).rsplit("/", 1)[1]]
    tokens += re.findall(r'href="[^"]+/c/([^"]+)"', world.html())
    _, _, call_path = calls
    call = call_path.rsplit("/", 1)[1]
    for token in [*tokens, call]:
        text = token.replace(".", "")
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        assert key.encode() not in raw and key not in token
        for readable in (b'"m"', b'"c"', b'"r"', b'"d"', b"R1", b"shop.example", b"2026-"):
            assert readable not in raw, (readable, token)


def legacy(secret: str, purpose: str, payload: dict[str, Any]) -> str:
    """A link of the first format (readable JSON and an HMAC), as in mail already sent."""
    body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode())
    text = body.rstrip(b"=").decode()
    mac = hmac.new(secret.encode(), f"{purpose}\x1f{text}".encode(), hashlib.sha256)
    return f"{text}.{base64.urlsafe_b64encode(mac.digest()[:20]).rstrip(b'=').decode()}"


def test_after_a_key_rotation_links_in_sent_mail_still_unsubscribe(world: World) -> None:
    w = world
    rotated = mail_config(w, secret=NEW_SECRET, previous_secrets=(SECRET,))
    stranger = mail_config(w, secret=NEW_SECRET)
    path = path_of(unsubscribe_url(w))
    one_click: dict[str, Any] = {
        "content": b"List-Unsubscribe=One-Click",
        "headers": {"Content-Type": "application/x-www-form-urlencoded"},
    }
    key = str(w.mail()["Message-ID"]).strip("<>").split("@", 1)[0]
    first_format = "/u/" + legacy(SECRET, "unsubscribe", {"m": key, "t": 0 + _hours(w)})
    with running_app(create_app(w.store, stranger)) as base, client() as http:
        assert http.post(base + path, **one_click).status_code == 400  # unknown key
        assert http.get(base + first_format).status_code == 400
    assert not w.store.sending.is_suppressed("ana@example.com")
    with running_app(create_app(w.store, rotated)) as base, client() as http:
        assert http.get(base + first_format).status_code == 200  # an old mail's link
        answer = http.post(base + path, **one_click)
    assert answer.status_code == 200, answer.text
    assert w.store.sending.is_suppressed("ana@example.com")


def _hours(w: World) -> int:
    now: datetime = w.clock["now"]
    return int(now.timestamp()) // 3600


# -- forms from other sites -------------------------------------------------------------------


def test_a_cross_site_post_to_the_preferences_page_is_refused_one_click_is_not(
    world: World,
) -> None:
    w = world
    url = unsubscribe_url(w)
    with client() as http:
        for origin in (EVIL, "null", "http://127.0.0.1.evil.example"):
            refused = http.post(url, data={"action": "unsubscribe"}, headers={"Origin": origin})
            assert refused.status_code == 403, origin
            assert "This form was sent from another site" in refused.text
            assert "Nothing was changed" in refused.text
        assert not w.store.sending.is_suppressed("ana@example.com")
        paused = http.post(url, data={"action": "pause"}, headers={"Origin": w.base})
        assert paused.status_code == 200 and "Paused until" in paused.text
        one_click = http.post(
            url,
            content=b"List-Unsubscribe=One-Click",
            headers={"Origin": EVIL, "Content-Type": "application/x-www-form-urlencoded"},
        )
    assert one_click.status_code == 200  # RFC 8058: a mail client posts it from anywhere
    assert w.store.sending.is_suppressed("ana@example.com")


def test_a_cross_site_post_to_the_outcome_form_is_refused(
    calls: tuple[Store, WebConfig, str],
) -> None:
    store, config, path = calls
    with running_app(create_app(store, config)) as base, client() as http:
        for origin in (EVIL, "null"):
            refused = http.post(base + path, data=SAVE, headers={"Origin": origin})
            assert refused.status_code == 403, origin
            assert "This form was sent from another site" in refused.text
        assert store.calls.outcomes_since(None) == []
        ours = http.post(base + path, data=SAVE, headers={"Origin": base})
        assert ours.status_code == 200 and "The call is recorded" in ours.text
        again = http.post(base + path, data=SAVE)  # no Origin at all: not a browser's CSRF
        assert again.status_code == 200 and "Already recorded" in again.text
    assert len(store.calls.outcomes_since(None)) == 1


# -- operations endpoints ---------------------------------------------------------------------


def test_health_and_metrics_are_not_on_the_public_app(world: World) -> None:
    with client() as http:
        for path in ("/healthz", "/metrics"):
            answer = http.get(world.base + path)
            assert answer.status_code == 404, path
            assert "reengage_" not in answer.text and "queue_depth" not in answer.text


class _BrokenSending:
    """A database that fails with the kind of text an attacker should never read."""

    def queue_depth(self, now: Any) -> int:
        raise StoreError(
            "connection to server at db.internal (10.0.0.5), port 5432 failed: "
            'password authentication failed for user "reengage"'
        )


class _BrokenStore:
    sending = _BrokenSending()


def test_healthz_says_the_database_fails_and_never_why(tmp_path: Path) -> None:
    app = create_app(cast(Store, _BrokenStore()))
    with capture_logs() as logs, running_app(app) as base, client() as http:
        answer = http.get(f"{base}/healthz")
    assert answer.status_code == 503
    assert answer.json()["status"] == "failing"
    for secret in ("db.internal", "10.0.0.5", "password", 'reengage"', "5432"):
        assert secret not in answer.text
    logged = [e for e in logs if e["event"] == "health_check_failed"]
    assert logged and "db.internal" in logged[0]["error"]
