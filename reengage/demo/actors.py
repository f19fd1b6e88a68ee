"""The demo's simulated people. They act only through the doors real ones use: customers
load pixels, click links and post forms over HTTP, reply over SMTP and order again (an
import); reps read their morning digest and post the call outcome form."""

from __future__ import annotations

import email
import random
import re
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import aiosmtplib
import httpx

from reengage.ingest import Kind, import_items
from reengage.store import Store


def is_digest(raw: bytes) -> bool:
    """A rep's morning digest (its Message-ID says so), not a mail to a customer."""
    return b"Message-ID: <digest-" in raw.split(b"\r\n\r\n", 1)[0]


REPLIES = (
    "Thanks for the reminder. We paused orders over the summer; I will place one next week.",
    "We moved to another supplier because of delivery times. If those are better now, call me.",
    "Could your rep send me the new price list? Our volumes are going up.",
)


class Customers:
    """Simulated recipients who do what real ones do, through the real doors: they load
    the open pixel and click links over HTTP, use one-click unsubscribe or the pause page,
    reply over SMTP to the per-message Reply-To, and sometimes order again."""

    def __init__(self, store: Store, rng: random.Random) -> None:
        self.store, self.rng = store, rng

    async def respond(self, mails: list[tuple[str, bytes]], smtp_port: int, now: datetime) -> None:
        async with httpx.AsyncClient(timeout=10, follow_redirects=False) as http:
            for recipient, raw in mails:
                await self._one(http, recipient, raw, smtp_port, now)

    async def _one(
        self, http: httpx.AsyncClient, recipient: str, raw: bytes, smtp_port: int, now: datetime
    ) -> None:
        mail = email.message_from_bytes(raw, policy=policy.default)
        body = mail.get_body(("html",))
        html = str(body.get_content()) if body is not None else ""
        roll = self.rng.random()
        if roll < 0.45:  # many mail apps load images: an open
            for pixel in re.findall(r"url\('(http[^']+/o/[^']+)'\)", html)[:1]:
                await http.get(pixel)
        if roll < 0.15:  # and some click through to the shop
            for link in re.findall(r'href="(http[^"]+/c/[^"]+)"', html)[:1]:
                await http.get(link)
        if 0.15 <= roll < 0.18:  # the mail app's own "unsubscribe" button (RFC 8058)
            found = re.search(r"<(http[^>]+)>", str(mail["List-Unsubscribe"]))
            if found:
                await http.post(found.group(1), data={"List-Unsubscribe": "One-Click"})
        elif 0.18 <= roll < 0.20:  # "pause for 90 days" on the preferences page
            found = re.search(r"<(http[^>]+)>", str(mail["List-Unsubscribe"]))
            if found:
                await http.post(found.group(1), data={"action": "pause"})
        elif 0.20 <= roll < 0.26 and mail["Reply-To"]:  # a person writes back
            reply = EmailMessage()
            reply["From"] = recipient
            reply["To"] = str(mail["Reply-To"])
            reply["Subject"] = f"Re: {mail['Subject']}"
            reply["In-Reply-To"] = str(mail["Message-ID"])
            reply.set_content(
                f"{self.rng.choice(REPLIES)}\n\nOn {mail['Date']}, {mail['From']} wrote:\n"
                "> (the quoted mail, which reengage strips)\n"
            )
            address = str(mail["Reply-To"]).rsplit("<", 1)[-1].rstrip(">")
            await aiosmtplib.send(reply, hostname="127.0.0.1", port=smtp_port, recipients=[address])
        elif 0.26 <= roll < 0.33:  # the habit comes back: an order
            customer = self.store.responses.customer_external_id(recipient)
            if customer:
                item = {
                    "customer_id": customer,
                    "occurred_at": now.isoformat(),
                    "amount": round(self.rng.uniform(40, 400), 2),
                }
                import_items(self.store, Kind.ACTIVITIES, [item], now=now, zone=ZoneInfo("UTC"))


# What simulated reps hear on their calls: (reason, scope, their words, what would win
# them back, weight). Late deliveries are the business's problem in this story.
HEARD = (
    (
        "delivery",
        "systemic",
        "Three late deliveries in a row before a busy weekend.",
        "A delivery date you keep.",
        5,
    ),
    (
        "price",
        "specific",
        "Our budget was cut this quarter.",
        "A volume discount for six months.",
        3,
    ),
    (
        "habit",
        "specific",
        "Honestly, we just forgot to reorder.",
        "A reminder before we run out.",
        3,
    ),
    (
        "competitor",
        "specific",
        "A local supplier came by with samples.",
        "Matching their trial price.",
        2,
    ),
    (
        "service",
        "systemic",
        "Nobody answered the phone when an order was wrong.",
        "A named contact.",
        2,
    ),
)


class Reps:
    """Simulated reps: each morning they call the top two clients on their digest and
    record what they heard through the real outcome form (an HTTP POST to its link)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    async def call(self, digests: list[bytes], now: datetime) -> None:
        async with httpx.AsyncClient(timeout=10, follow_redirects=False) as http:
            for raw in digests:
                mail = email.message_from_bytes(raw, policy=policy.default)
                body = mail.get_body(("plain",))
                text = str(body.get_content()) if body is not None else ""
                for link in re.findall(r"(http\S+/call/\S+)", text)[:2]:
                    answer = await http.post(link, data=self._outcome(now))
                    answer.raise_for_status()  # a refused form is a bug, never hidden

    def _outcome(self, now: datetime) -> dict[str, str]:
        roll = self.rng.random()
        if roll < 0.15:
            again = (now + timedelta(days=3)).date().isoformat()
            return {"reached": "nobody", "worth": "yes", "next_step": "call_again",
                    "call_again_on": again}  # fmt: skip
        reason, scope, words, win_back, _ = self.rng.choices(HEARD, [h[4] for h in HEARD])[0]
        step = "follow_up" if scope == "systemic" else self.rng.choice(["rep_offer", "nothing"])
        if roll > 0.97:
            step = "do_not_contact"
        return {
            "reached": "decision_maker" if roll < 0.7 else "someone_else",
            "reason": reason,
            "reason_text": words,
            "scope": scope,
            "win_back": win_back,
            "worth": "yes" if roll < 0.85 else "later",
            "next_step": step,
        }
