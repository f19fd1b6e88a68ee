"""Links in real mail, served by the real web app: open pixel, clicks, one-click unsubscribe.

A mail is sent through the daemon to a real SMTP server; its links are then followed
against the app served by uvicorn on loopback.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from reengage.store import Store
from reengage.tokens import sign
from tests.integration.mail_world import SECRET, World, mail_world, unsubscribe_url
from tests.integration.web_server import client, local


@pytest.fixture
def world(store: Store, tmp_path: Path) -> Iterator[World]:
    with mail_world(store, tmp_path) as w:
        yield w


def test_one_click_post_returns_200_without_redirect_and_stops_all_mail(world: World) -> None:
    w = world
    with client() as http:
        answer = http.post(
            unsubscribe_url(w),
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert answer.status_code == 200
    assert "location" not in answer.headers and "set-cookie" not in answer.headers
    assert w.store.sending.is_suppressed("ana@example.com")
    assert w.kinds() == ["unsubscribe"]
    w.days(20)  # the second step and the call would have come
    assert len(w.sink.received) == 1


def test_one_click_also_works_as_multipart_form(world: World) -> None:
    w = world
    with client() as http:
        answer = http.post(unsubscribe_url(w), files={"List-Unsubscribe": (None, "One-Click")})
    assert answer.status_code == 200
    assert w.store.sending.is_suppressed("ana@example.com")


def test_a_tampered_token_records_nothing_and_gets_a_plain_page(world: World) -> None:
    w = world
    url = unsubscribe_url(w)
    head, token = url.rsplit("/", 1)
    middle = len(token) // 2
    forged = f"{head}/{token[:middle]}{'A' if token[middle] != 'A' else 'B'}{token[middle + 1 :]}"
    with client() as http:
        answer = http.post(forged, content=b"List-Unsubscribe=One-Click")
        page = http.get(forged)
    assert answer.status_code == 400 and page.status_code == 400
    assert "does not work" in page.text
    assert not w.store.sending.is_suppressed("ana@example.com")
    assert w.kinds() == []


def test_an_expired_link_records_nothing(world: World) -> None:
    w = world
    w.clock["now"] += timedelta(days=800)  # links live 730 days by default
    with client() as http:
        answer = http.post(unsubscribe_url(w), content=b"List-Unsubscribe=One-Click")
    assert answer.status_code == 400
    assert "expired" in answer.text
    assert not w.store.sending.is_suppressed("ana@example.com")


def test_a_click_redirects_to_the_url_in_the_mail_and_is_recorded(world: World) -> None:
    w = world
    links = re.findall(r'href="([^"]+/c/[^"]+)"', w.html())
    assert links, "the template tracks its links"
    with client() as http:
        answer = http.get(local(links[0], w.base))
    assert answer.status_code == 302
    assert answer.headers["location"] == "https://shop.example/account/orders"
    assert sorted(w.kinds()) == ["click", "open"]  # a click proves the mail was opened


def test_a_click_token_cannot_be_bent_to_another_url(world: World) -> None:
    w = world
    link = re.findall(r'href="([^"]+/c/[^"]+)"', w.html())[0]
    token = link.rsplit("/", 1)[1]
    evil = sign(SECRET + "x", "click", {"m": "x", "t": 0, "u": "https://evil.example"})
    with client() as http:
        # The real token's start (its nonce) spliced onto another sealed destination.
        swapped = http.get(f"{w.base}/c/{token[:17]}{evil[17:]}")
        wrong_key = http.get(
            f"{w.base}/c/{sign('k' * 40, 'click', {'m': 'x', 't': 0, 'u': 'https://evil.example'})}"
        )
    for answer in (swapped, wrong_key):
        assert answer.status_code == 400
        assert "location" not in answer.headers
    assert w.kinds() == []


def test_the_open_pixel_is_always_served_and_counts_one_open(world: World) -> None:
    w = world
    pixel = re.search(r"url\('([^']+/o/[^']+\.gif)'\)", w.html()).group(1)  # type: ignore[union-attr]
    with client() as http:
        first = http.get(local(pixel, w.base))
        again = http.get(local(pixel, w.base))
        broken = http.get(f"{w.base}/o/not-a-token.gif")
    for answer in (first, again, broken):
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "image/gif"
    assert w.kinds() == ["open"]
