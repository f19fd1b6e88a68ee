"""Providers' webhook payloads are read without I/O: whatever a signed payload holds, each
reader turns it into events or per-item problems, never an exception; an SNS certificate
or confirmation address must be https on an SNS host; a SendGrid key that is not one
stops start-up with the setting's name."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reengage.errors import ConfigError
from reengage.responses import PROVIDER_TYPES, ProviderEvent
from reengage.web.providers import mailgun, postmark, sendgrid, ses
from reengage.web.providers.common import Refused, Skipped
from reengage.web.providers.sns import sns_url

SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
)
KEYS = st.sampled_from(
    ["event", "sg_event_id", "email", "smtp-id", "type", "id", "recipient", "severity",
     "RecordType", "ID", "Type", "Email", "Recipient", "MessageID", "DeliveredAt", "Metadata",
     "SuppressSending", "message", "headers", "message-id", "reengage_message_id"]
) | st.text(max_size=8)  # fmt: skip
JSON = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=6),
    max_leaves=25,
)  # fmt: skip
EVENT_NAMES = st.sampled_from(
    ["bounce", "delivered", "open", "click", "spamreport", "unsubscribe", "failed", "opened",
     "clicked", "complained", "unsubscribed", "Bounce", "SpamComplaint", "Delivery", "Open",
     "Click", "SubscriptionChange", "processed"]
)  # fmt: skip


def check(found: list[Any]) -> None:
    for item in found:
        assert isinstance(item, ProviderEvent | Skipped)
        if isinstance(item, ProviderEvent):
            assert item.type in PROVIDER_TYPES
            assert len(item.id) <= 150 and "\x00" not in item.id
            assert item.detail is None or len(item.detail) <= 500


@settings(max_examples=150, deadline=None)
@given(body=JSON, name=EVENT_NAMES, more=st.dictionaries(KEYS, JSON, max_size=6))
def test_every_reader_turns_any_payload_into_events_or_problems(
    body: Any, name: str, more: dict[str, Any]
) -> None:
    shaped = {"event": name, "RecordType": name, "sg_event_id": "e1", "ID": 1, **more}
    for reader, payload in [
        (sendgrid.events, [body, shaped]),
        (mailgun.events, shaped),
        (mailgun.events, body),
        (postmark.events, shaped),
    ]:
        check(reader(payload))
    if not isinstance(body, dict):  # Postmark posts one event, an object
        with pytest.raises(Refused):
            postmark.events(body)
    for message in (json.dumps(body), json.dumps({"eventType": name.capitalize(), **more})):
        check(ses.events({"MessageId": "m1", "Message": message}))


def test_an_event_without_a_recipient_address_is_a_problem_not_an_act() -> None:
    (item,) = sendgrid.events([{"event": "bounce", "sg_event_id": "e", "email": "nobody"}])
    assert isinstance(item, Skipped) and item.problem is not None and "email" in item.problem


@pytest.mark.parametrize(
    ("url", "pem", "ok"),
    [
        ("https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem", True, True),
        ("https://sns.cn-north-1.amazonaws.com.cn/x.pem", True, True),
        ("https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription", False, True),
        ("https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription", True, False),
        ("http://sns.us-east-1.amazonaws.com/x.pem", True, False),
        ("https://sns.us-east-1.amazonaws.com:8443/x.pem", True, False),
        ("https://a@sns.us-east-1.amazonaws.com/x.pem", True, False),
        ("https://sns.us-east-1.amazonaws.com.evil.example/x.pem", True, False),
        ("https://evil.example/sns.us-east-1.amazonaws.com/x.pem", True, False),
        ("https://s3.amazonaws.com/x.pem", True, False),
        ("https://sns.us-east-1.amazonaws.com:bad/x.pem", True, False),
        (None, True, False),
    ],
)
def test_only_https_sns_addresses_are_ever_fetched(url: Any, pem: bool, ok: bool) -> None:
    assert sns_url(url, pem=pem) is ok


@pytest.mark.parametrize("key", ["not base64!", "AAAA", "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE"])
def test_a_sendgrid_key_that_is_not_one_names_the_setting(key: str) -> None:
    with pytest.raises(ConfigError, match="REENGAGE_SENDGRID_WEBHOOK_KEY"):
        sendgrid.public_key(key)


def test_each_provider_is_on_by_its_own_setting_only() -> None:
    from reengage.config import Settings
    from reengage.web import WebConfig

    given = Settings(
        _env_file=None,
        secret_key="s" * 40,
        ses_topic_arns=" arn:aws:sns:eu-west-1:1:a , ,arn:aws:sns:eu-west-1:1:b",
        postmark_webhook_auth="user:pass",
    )
    web = WebConfig.from_settings(given)
    assert web.ses_topic_arns == ("arn:aws:sns:eu-west-1:1:a", "arn:aws:sns:eu-west-1:1:b")
    assert web.postmark_auth == "user:pass"
    assert web.sendgrid_key is None and web.mailgun_key is None
