"""The providers' own webhooks (issue 20), served for real on SQLite and PostgreSQL: each
provider's documented sample payload, signed with test keys, is recorded once against our
message; a replay changes nothing; unsigned, badly signed, stale or replayed-token calls
are refused and record nothing; an SNS certificate or SubscribeURL anywhere but an SNS
address is never fetched (the certificate itself is served from loopback)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reengage.message import provider_headers
from reengage.store import Store
from reengage.web import create_app
from tests.integration.smtp_sink import free_port
from tests.integration.test_api import NOW, Served, config
from tests.integration.web_server import client, running_app

TOPIC = "arn:aws:sns:us-west-2:123456789012:ses-events"
CERT_URL = "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-test.pem"
POSTMARK_AUTH = "postmark:" + "p" * 24
MAILGUN_KEY = "key-" + "m" * 32


@dataclass
class Loopback:
    """Plays the SNS host: serves the test certificate and answers confirmations, on
    127.0.0.1; ``asked`` is every URL reengage wanted fetched."""

    pem: bytes
    port: int = 0
    asked: list[str] = field(default_factory=list)

    def fetch(self, url: str) -> bytes:
        self.asked.append(url)
        parts = urlsplit(url)
        local = f"http://127.0.0.1:{self.port}{parts.path}?{parts.query}"
        with urllib.request.urlopen(local, timeout=5) as answer:
            body: bytes = answer.read()
            return body


@pytest.fixture(scope="module")
def sns_key() -> Iterator[tuple[rsa.RSAPrivateKey, Loopback]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    loopback = Loopback(cert.public_bytes(serialization.Encoding.PEM))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = loopback.pem if self.path.split("?")[0].endswith(".pem") else b"<Confirmed/>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    loopback.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield key, loopback
    server.shutdown()
    server.server_close()


SENDGRID_KEY = ec.generate_private_key(ec.SECP256R1())
SENDGRID_PUBLIC = base64.b64encode(
    SENDGRID_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()


@dataclass
class Hooks:
    served: Served
    key: rsa.RSAPrivateKey
    loopback: Loopback

    @property
    def http(self) -> httpx.Client:
        return self.served.http

    def url(self, provider: str) -> str:
        return f"{self.served.base}/api/v1/events/{provider}"

    def sns(self, message: dict[str, Any]) -> httpx.Response:
        return self.http.post(self.url("ses"), content=json.dumps(message))

    def recorded(self) -> list[str]:
        return sorted(self.served.kinds())


@pytest.fixture
def hooks(store: Store, sns_key: tuple[rsa.RSAPrivateKey, Loopback]) -> Iterator[Hooks]:
    key, loopback = sns_key
    loopback.asked.clear()
    web = config(
        ses_topic_arns=(TOPIC,),
        sendgrid_key=SENDGRID_PUBLIC,
        postmark_auth=POSTMARK_AUTH,
        mailgun_key=MAILGUN_KEY,
        fetch_url=loopback.fetch,
    )
    with running_app(create_app(store, web)) as base, client() as http:
        yield Hooks(Served(store, base, http), key, loopback)


# -- Amazon SES through SNS ------------------------------------------------------------------

# What SNS signs, per AWS's "Verifying the signatures of Amazon SNS messages".
SIGNED = {
    "Notification": ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"],
    "SubscriptionConfirmation": [
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ],
}


def signed(key: rsa.RSAPrivateKey, message: dict[str, Any], version: str = "1") -> dict[str, Any]:
    message = {"SignatureVersion": version, "SigningCertURL": CERT_URL, **message}
    text = "".join(f"{k}\n{message[k]}\n" for k in SIGNED[message["Type"]] if k in message)
    digest = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = key.sign(text.encode(), padding.PKCS1v15(), digest)
    return message | {"Signature": base64.b64encode(signature).decode()}


def notification(ses: dict[str, Any], sns_id: str, topic: str = TOPIC) -> dict[str, Any]:
    """AWS's sample SNS Notification envelope around an SES notification."""
    return {
        "Type": "Notification",
        "MessageId": sns_id,
        "TopicArn": topic,
        "Message": json.dumps(ses),
        "Timestamp": "2025-03-01T11:59:38.237Z",
        "UnsubscribeURL": "https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe",
    }


def ses_mail(message_id: str, to: str) -> dict[str, Any]:
    """The ``mail`` object of AWS's sample notifications, about our message to ``to``."""
    return {
        "timestamp": "2025-03-01T11:59:38.237Z",
        "source": "hello@acme.example",
        "messageId": "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa0680-000000",
        "destination": [to],
        "headersTruncated": False,
        "headers": [{"name": "To", "value": to}, {"name": "Message-ID", "value": message_id}],
        "commonHeaders": {"to": [to], "messageId": message_id, "subject": "Hello"},
    }


def ses_bounce(message_id: str, to: str, kind: str = "Permanent") -> dict[str, Any]:
    return {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": kind,
            "bounceSubType": "General",
            "bouncedRecipients": [
                {"emailAddress": to, "status": "5.1.1", "diagnosticCode": "smtp; 550 5.1.1 unknown"}
            ],
            "timestamp": "2025-03-01T11:59:38.237Z",
            "feedbackId": "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa0680-000000",
        },
        "mail": ses_mail(message_id, to),
    }


def confirmation(subscribe_url: str, topic: str = TOPIC) -> dict[str, Any]:
    return {
        "Type": "SubscriptionConfirmation",
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a",
        "TopicArn": topic,
        "Message": f"You have chosen to subscribe to the topic {topic}.",
        "SubscribeURL": subscribe_url,
        "Timestamp": "2025-03-01T11:45:04.751Z",
    }


def test_a_subscription_is_confirmed_only_when_signed_and_at_an_sns_address(hooks: Hooks) -> None:
    genuine = f"https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn={TOPIC}"
    assert hooks.sns(signed(hooks.key, confirmation(genuine))).status_code == 200
    assert hooks.loopback.asked == [CERT_URL, genuine]
    forged = [
        signed(hooks.key, confirmation("https://evil.example/?Action=ConfirmSubscription")),
        signed(hooks.key, confirmation("http://sns.us-west-2.amazonaws.com/?Action=Confirm")),
        signed(hooks.key, confirmation(genuine + "&x=1", topic=TOPIC + "-other")),
        confirmation(genuine + "&unsigned=1"),
        signed(hooks.key, confirmation(genuine)) | {"SubscribeURL": genuine + "&changed=1"},
    ]
    answers = [hooks.sns(message).status_code for message in forged]
    assert answers == [403, 403, 403, 401, 403]
    assert hooks.loopback.asked == [CERT_URL, genuine]  # the certificate cached, nothing else


def test_ses_bounces_complaints_and_events_are_recorded_once(hooks: Hooks) -> None:
    ana = hooks.served.mailed("c1", "ana@example.com")
    bo = hooks.served.mailed("c2", "bo@example.com")
    cy = hooks.served.mailed("c3", "cy@example.com")
    permanent = signed(hooks.key, notification(ses_bounce(ana, "ana@example.com"), "sns-1"))
    titled = notification(ses_bounce(bo, "bo@example.com", "Transient"), "sns-2")
    transient = signed(hooks.key, titled | {"Subject": "Amazon SES Email Event Notification"}, "2")
    complaint = {  # event publishing's shape
        "eventType": "Complaint",
        "complaint": {
            "complainedRecipients": [{"emailAddress": "cy@example.com"}],
            "complaintFeedbackType": "abuse",
        },
        "mail": ses_mail(cy, "cy@example.com"),
    }
    published = [
        complaint,
        {
            "eventType": "Delivery",
            "delivery": {"recipients": ["bo@example.com"]},
            "mail": ses_mail(bo, "bo@example.com"),
        },
        {
            "eventType": "Open",
            "open": {"userAgent": "Mail"},
            "mail": ses_mail(bo, "bo@example.com"),
        },
        {
            "eventType": "Click",
            "click": {"link": "https://acme.example/a"},
            "mail": ses_mail(bo, "bo@example.com"),
        },
        {"eventType": "Send", "send": {}, "mail": ses_mail(bo, "bo@example.com")},
    ]
    answers = [hooks.sns(permanent), hooks.sns(transient)] + [
        hooks.sns(signed(hooks.key, notification(body, f"sns-p{i}"), "2"))
        for i, body in enumerate(published)
    ]
    actions = [a.json()["results"][0]["action"] for a in answers]
    assert actions == [
        "suppressed",
        "stored",
        "suppressed",
        "stored",
        "stored",
        "stored",
        "ignored",
    ]
    assert hooks.served.store.sending.suppressed_among(
        ["ana@example.com", "bo@example.com", "cy@example.com"]
    ) == {"ana@example.com", "cy@example.com"}
    before = hooks.recorded()
    assert before == ["bounce", "click", "complaint", "delivered", "open", "soft_bounce"]
    replayed = hooks.sns(permanent)
    assert replayed.json()["results"][0]["action"] == "duplicate"
    assert hooks.recorded() == before
    assert hooks.loopback.asked == [CERT_URL]  # one certificate fetch for them all


def test_forged_ses_notifications_are_refused_and_record_nothing(hooks: Hooks) -> None:
    ana = hooks.served.mailed("c1", "ana@example.com")
    genuine = signed(hooks.key, notification(ses_bounce(ana, "ana@example.com"), "sns-1"))
    tampered = genuine | {"Message": genuine["Message"].replace("Permanent", "Permanent ")}
    elsewhere = [
        "https://sns.us-west-2.amazonaws.com.evil.example/cert.pem",
        "http://sns.us-west-2.amazonaws.com/cert.pem",
        "https://sns.us-west-2.amazonaws.com/cert.txt",
        "https://evil.example/sns.us-west-2.amazonaws.com/cert.pem",
        "https://user@sns.us-west-2.amazonaws.com/cert.pem",
    ]
    forged = [tampered, genuine | {"SignatureVersion": "3"}, {**genuine, "Signature": "!!"}]
    forged += [
        signed(hooks.key, notification(ses_bounce(ana, "ana@example.com"), "sns-9"), "1")
        | {"SigningCertURL": url}
        for url in elsewhere
    ]
    forged.append(
        signed(hooks.key, notification(ses_bounce(ana, "ana@example.com"), "s", TOPIC + "x"))
    )
    assert [hooks.sns(m).status_code for m in forged] == [403] * len(forged)
    assert hooks.sns({k: v for k, v in genuine.items() if k != "Signature"}).status_code == 401
    # SNS's raw message delivery posts SES's event alone: no envelope, so no signature.
    raw = hooks.sns(ses_bounce(ana, "ana@example.com"))
    assert raw.status_code == 401 and "raw message delivery" in raw.text
    assert all(url == CERT_URL for url in hooks.loopback.asked)  # no other address fetched
    assert hooks.recorded() == []
    # Signed by SNS, but naming SES's own id (or another address) acts on nobody.
    theirs = ses_bounce("00000138111222aa@email.amazonses.com", "ana@example.com")
    other = ses_bounce(ana, "bo@example.com")
    for i, body in enumerate((theirs, other)):
        answer = hooks.sns(signed(hooks.key, notification(body, f"sns-u{i}")))
        assert answer.json()["results"][0]["action"] == "unmatched"
    assert not hooks.served.store.sending.is_suppressed("ana@example.com")
    assert hooks.recorded() == []


# -- SendGrid ---------------------------------------------------------------------------------


def sendgrid_post(
    hooks: Hooks, events: Any, *, at: datetime = NOW, key: Any = SENDGRID_KEY
) -> httpx.Response:
    body = json.dumps(events).encode()
    stamp = str(int(at.timestamp()))
    signature = key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    headers = {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
        "Content-Type": "application/json",
    }
    return hooks.http.post(hooks.url("sendgrid"), content=body, headers=headers)


def custom_args(message_id: str) -> dict[str, Any]:
    """What SendGrid adds to each event of a mail reengage sent with REENGAGE_SMTP_PROVIDER
    =sendgrid: the unique_args of its X-SMTPAPI header."""
    (header,) = provider_headers("sendgrid", message_id)
    args: dict[str, Any] = json.loads(header[1])["unique_args"]
    return args


def sendgrid_sample(message_id: str, to: str) -> list[dict[str, Any]]:
    """SendGrid's documented sample events, about our message to ``to``."""
    base = {"email": to, "timestamp": int(NOW.timestamp()), "smtp-id": message_id}
    return [
        base | {"event": "processed", "sg_event_id": "rbtnWrG1DVDGGGFHFyun0A=="},
        base
        | {"event": "delivered", "sg_event_id": "rWVYmVk90MjZJ9iohOBa3w==", "response": "250 OK"},
        "not an event",
        base
        | {
            "event": "bounce",
            "sg_event_id": "6g4ZI7SA-xmRDv57GoPIPw==",
            "reason": "500 unknown recipient",
            "status": "5.0.0",
            "type": "bounce",
        },
        {
            "email": to,
            "event": "open",
            "sg_event_id": "FOTFFO0ecsBE-zxFXfs6WA==",
            **custom_args(message_id),
        },
        {
            "email": to,
            "event": "click",
            "sg_event_id": "kCAi1KttyQdEKHhdC-nuEA==",
            "url": "http://www.sendgrid.com/",
        },
    ]


def test_a_signed_sendgrid_batch_is_recorded_once_and_a_bad_event_stops_none(hooks: Hooks) -> None:
    ana = hooks.served.mailed("c1", "ana@example.com")
    answer = sendgrid_post(hooks, sendgrid_sample(ana, "ana@example.com"))
    assert answer.status_code == 200
    actions = [r["action"] for r in answer.json()["results"]]
    # The open names our mail by the custom argument reengage's mail carried; the click names
    # none (SendGrid sends no smtp-id with it) and touches nobody.
    assert actions == ["ignored", "stored", "rejected", "suppressed", "stored", "unknown_message"]
    assert hooks.served.store.sending.is_suppressed("ana@example.com")
    assert hooks.recorded() == ["bounce", "delivered", "open"]
    again = sendgrid_post(hooks, sendgrid_sample(ana, "ana@example.com"))
    assert [r["action"] for r in again.json()["results"]][1:5] == [
        "duplicate",
        "rejected",
        "duplicate",
        "duplicate",
    ]
    assert hooks.recorded() == ["bounce", "delivered", "open"]


def test_unsigned_forged_or_stale_sendgrid_calls_are_refused(hooks: Hooks) -> None:
    ana = hooks.served.mailed("c1", "ana@example.com")
    events = sendgrid_sample(ana, "ana@example.com")
    unsigned = hooks.http.post(hooks.url("sendgrid"), json=events)
    assert unsigned.status_code == 401
    assert (
        sendgrid_post(hooks, events, key=ec.generate_private_key(ec.SECP256R1())).status_code == 403
    )
    assert sendgrid_post(hooks, events, at=NOW - timedelta(hours=1)).status_code == 403
    good = sendgrid_post(hooks, [])
    assert good.status_code == 200
    assert hooks.recorded() == []
    assert not hooks.served.store.sending.is_suppressed("ana@example.com")


# -- Mailgun ----------------------------------------------------------------------------------


def mailgun_body(
    message_id: str,
    to: str,
    *,
    token: str = "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0",
    event: str = "Ase7i2zsRYeDXztHGENqRA",
    at: datetime = NOW,
    key: str = MAILGUN_KEY,
) -> dict[str, Any]:
    """Mailgun's documented permanent-failure sample, signed with ``key``."""
    stamp = str(int(at.timestamp()))
    signature = hmac.new(key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
    return {
        "signature": {"timestamp": stamp, "token": token, "signature": signature},
        "event-data": {
            "event": "failed",
            "severity": "permanent",
            "id": event,
            "timestamp": at.timestamp(),
            "recipient": to,
            "reason": "bounce",
            "delivery-status": {
                "code": 550,
                "message": "No such mailbox",
                "description": "Not delivered",
            },
            "message": {
                "headers": {"to": to, "message-id": message_id.strip("<>"), "subject": "Hi"}
            },
            "user-variables": {},
        },
    }


def test_mailgun_events_signed_fresh_and_once_are_recorded(hooks: Hooks) -> None:
    ana = hooks.served.mailed("c1", "ana@example.com")
    bo = hooks.served.mailed("c2", "bo@example.com")
    genuine = mailgun_body(ana, "ana@example.com")
    first = hooks.http.post(hooks.url("mailgun"), json=genuine)
    assert first.json()["results"] == [
        {"index": 0, "id": "mailgun:Ase7i2zsRYeDXztHGENqRA", "action": "suppressed"}
    ]
    retried = hooks.http.post(hooks.url("mailgun"), json=genuine)  # the same request again
    assert retried.json()["results"][0]["action"] == "duplicate"
    # The signature covers only timestamp and token: the same ones with another event are
    # a captured signature reused.
    swapped = genuine | {
        "event-data": mailgun_body(bo, "bo@example.com", event="other")["event-data"]
    }
    refused = [
        swapped,
        mailgun_body(bo, "bo@example.com", token="t" * 50, key="key-wrong"),
        mailgun_body(bo, "bo@example.com", token="u" * 50, at=NOW - timedelta(hours=2)),
        {
            k: v
            for k, v in mailgun_body(bo, "bo@example.com", token="v" * 50).items()
            if k != "signature"
        },
    ]
    assert [hooks.http.post(hooks.url("mailgun"), json=b).status_code for b in refused] == [
        403,
        403,
        403,
        401,
    ]
    assert not hooks.served.store.sending.is_suppressed("bo@example.com")
    assert hooks.recorded() == ["bounce"]


def test_a_mailgun_token_replayed_to_another_worker_is_refused_there_too(
    hooks: Hooks, store: Store
) -> None:
    """Two processes answering Mailgun (two apps on one database): a signature captured
    from one and sent to the other with another event is still a replay."""
    ana = hooks.served.mailed("c1", "ana@example.com")
    bo = hooks.served.mailed("c2", "bo@example.com")
    genuine = mailgun_body(ana, "ana@example.com")
    assert hooks.http.post(hooks.url("mailgun"), json=genuine).status_code == 200
    swapped = genuine | {
        "event-data": mailgun_body(bo, "bo@example.com", event="other")["event-data"]
    }
    other_worker = create_app(store, config(mailgun_key=MAILGUN_KEY))
    with running_app(other_worker) as base, client() as http:
        replayed = http.post(f"{base}/api/v1/events/mailgun", json=swapped)
        retried = http.post(f"{base}/api/v1/events/mailgun", json=genuine)
    assert replayed.status_code == 403
    assert "used already" in replayed.json()["error"]
    assert retried.json()["results"][0]["action"] == "duplicate", "a retry is still fine"
    assert not store.sending.is_suppressed("bo@example.com")


def test_webhook_tokens_are_forgotten_once_their_signatures_are_stale(store: Store) -> None:
    keep = timedelta(minutes=30)
    tokens = store.webhook_tokens
    assert tokens.claim("mailgun", "t1", "e1", NOW, keep=keep)
    assert tokens.claim("mailgun", "t1", "e1", NOW + timedelta(minutes=1), keep=keep)
    assert not tokens.claim("mailgun", "t1", "e2", NOW + timedelta(minutes=2), keep=keep)
    assert tokens.claim("other", "t1", "e2", NOW, keep=keep), "each provider has its own"
    # Past the window the old token is gone (its signature would be refused as stale).
    assert tokens.claim("mailgun", "t1", "e2", NOW + keep + timedelta(minutes=1), keep=keep)


# -- Postmark ---------------------------------------------------------------------------------


def postmark_bounce(message_id: str, to: str) -> dict[str, Any]:
    """Postmark's documented Bounce webhook sample, with our message in its metadata."""
    return {
        "RecordType": "Bounce",
        "ID": 42,
        "Type": "HardBounce",
        "TypeCode": 1,
        "Name": "Hard bounce",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Description": "The server was unable to deliver your message (ex: unknown user).",
        "Details": "Test bounce details",
        "Email": to,
        "BouncedAt": "2025-03-01T11:28:10.2735393-04:00",
        "Inactive": True,
        "Subject": "Test subject",
        "Metadata": {"reengage_message_id": message_id},
    }


def test_postmark_events_behind_basic_auth_are_recorded_once(hooks: Hooks) -> None:
    ana = hooks.served.mailed("c1", "ana@example.com")
    bo = hooks.served.mailed("c2", "bo@example.com")
    user, password = POSTMARK_AUTH.split(":")
    url = hooks.url("postmark").replace("http://", f"http://{user}:{password}@")
    bounce = postmark_bounce(ana, "ana@example.com")
    for wrong in (hooks.url("postmark"), url.replace(password, "guess")):
        refused = hooks.http.post(wrong, json=bounce)
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"].startswith("Basic")
    assert hooks.recorded() == []
    assert hooks.http.post(url, json=bounce).json()["results"][0]["action"] == "suppressed"
    assert hooks.http.post(url, json=bounce).json()["results"][0]["action"] == "duplicate"
    delivery = {
        "RecordType": "Delivery",
        "ServerID": 23,
        "MessageStream": "outbound",
        "MessageID": "00000000-0000-0000-0000-000000000000",
        "Recipient": "bo@example.com",
        "DeliveredAt": "2025-03-01T16:34:52Z",
        "Details": "Test delivery webhook details",
        "Metadata": {"reengage_message_id": bo},
    }
    change = {
        "RecordType": "SubscriptionChange",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "ChangedAt": "2025-03-01T16:40:00Z",
        "Recipient": "bo@example.com",
        "SuppressSending": True,
        "SuppressionReason": "ManualSuppression",
        "Metadata": {"reengage_message_id": bo},
    }
    actions = [
        hooks.http.post(url, json=e).json()["results"][0]["action"] for e in (delivery, change)
    ]
    assert actions == ["stored", "suppressed"]
    assert hooks.served.store.sending.suppressed_among(["ana@example.com", "bo@example.com"]) == {
        "ana@example.com",
        "bo@example.com",
    }
    assert hooks.recorded() == ["bounce", "delivered", "unsubscribe"]


def test_an_endpoint_whose_secret_is_unset_is_off(store: Store) -> None:
    with running_app(create_app(store, config())) as base, client() as http:
        answers = {
            provider: http.post(f"{base}/api/v1/events/{provider}", json={})
            for provider in ("ses", "sendgrid", "postmark", "mailgun")
        }
    for provider, setting in [
        ("ses", "SES_TOPIC_ARNS"),
        ("sendgrid", "SENDGRID_WEBHOOK_KEY"),
        ("postmark", "POSTMARK_WEBHOOK_AUTH"),
        ("mailgun", "MAILGUN_SIGNING_KEY"),
    ]:
        answer = answers[provider]
        assert answer.status_code == 404
        assert f"REENGAGE_{setting}" in answer.json()["error"]


TEXT = st.text(st.characters(blacklist_categories=["Cs"]), max_size=40) | st.text(max_size=600)
VALUE = st.none() | st.booleans() | st.integers() | TEXT | st.lists(TEXT, max_size=2)
SENDGRID_EVENT = st.fixed_dictionaries(
    {"sg_event_id": TEXT, "event": st.sampled_from(["bounce", "open", "click", "spamreport"])},
    optional={
        "email": TEXT,
        "smtp-id": TEXT,
        "reengage_message_id": TEXT,
        "type": VALUE,
        "url": VALUE,
        "reason": VALUE,
    },
)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(events=st.lists(SENDGRID_EVENT | VALUE, max_size=5))
def test_any_signed_batch_is_answered_event_by_event_never_with_a_server_error(
    hooks: Hooks, events: list[Any]
) -> None:
    answer = sendgrid_post(hooks, events)
    assert answer.status_code == 200, answer.text
    assert [r["index"] for r in answer.json()["results"]] == list(range(len(events)))


def test_an_unreachable_certificate_is_answered_503_so_sns_retries(hooks: Hooks) -> None:
    ana = hooks.served.mailed("c1", "ana@example.com")
    other_cert = CERT_URL.replace("-test.pem", "-next.pem")  # not cached yet
    bounce = notification(ses_bounce(ana, "ana@example.com"), "sns-r")
    message = signed(hooks.key, bounce | {"SigningCertURL": other_cert})
    port, hooks.loopback.port = hooks.loopback.port, free_port()  # nothing listens there
    try:
        assert hooks.sns(message).status_code == 503
    finally:
        hooks.loopback.port = port
    assert hooks.recorded() == []
    assert hooks.sns(message).json()["results"][0]["action"] == "suppressed"
