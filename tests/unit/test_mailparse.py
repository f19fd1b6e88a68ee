"""Inbound mail classification on real-world-shaped bounces, complaints and replies."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from reengage.mailparse import Inbound, InboundKind, classify, token_in

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "inbound"


def load(name: str, *recipients: str) -> Inbound:
    return classify((FIXTURES / name).read_bytes(), recipients)


# --- VERP tokens ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "prefix", "expected"),
    [
        ("bounces+AbC_-9@acme.example", "bounces", "AbC_-9"),
        ("Acme <reply+k3Jd9_x-Qa2m@acme.example>", "reply", "k3Jd9_x-Qa2m"),
        ("<Bounces+Case_Kept@acme.example>", "bounces", "Case_Kept"),
        ("reply+tok@acme.example", "bounces", None),
        ("bounces@acme.example", "bounces", None),
        ("bounces+@acme.example", "bounces", None),
        ("bounces+tok", "bounces", None),
        ("bounces+to k@acme.example", "bounces", None),
    ],
)
def test_token_in_reads_the_verp_part_of_our_address(
    address: str, prefix: str, expected: str | None
) -> None:
    assert token_in(address, prefix) == expected


# --- bounces -------------------------------------------------------------------------------


def test_postfix_dsn_is_a_hard_bounce_of_the_unknown_user() -> None:
    result = load("postfix_hard_bounce.eml", "bounces+k3Jd9_x-Qa2mZp7LrT0bWc@acme.example")
    assert result.kind is InboundKind.HARD_BOUNCE
    assert result.token == "k3Jd9_x-Qa2mZp7LrT0bWc"
    assert result.recipients == ("nobody.here@example.org",)
    assert result.status == "5.1.1"
    assert result.diagnostic is not None
    assert "User unknown in virtual mailbox table" in result.diagnostic
    assert "\n" not in result.diagnostic
    assert result.message_ids == ("171749250112.4242.1234567890@acme.example",)
    assert result.original_subject == "Nobody, three things you may have missed"


def test_dsn_is_a_bounce_even_though_it_says_auto_submitted() -> None:
    result = load("postfix_hard_bounce.eml")
    assert result.kind is InboundKind.HARD_BOUNCE
    assert result.auto_reason is None


def test_token_comes_from_the_envelope_before_the_headers() -> None:
    result = load("postfix_hard_bounce.eml", "bounces+FromEnvelope@acme.example")
    assert result.token == "FromEnvelope"


def test_token_survives_from_the_returned_original_when_the_envelope_lost_it() -> None:
    raw = (FIXTURES / "postfix_hard_bounce.eml").read_bytes()
    raw = raw.replace(
        b"To: bounces+k3Jd9_x-Qa2mZp7LrT0bWc@acme.example\n", b"To: postmaster@acme.example\n", 1
    )
    result = classify(raw, ["postmaster@acme.example"])
    assert result.token == "k3Jd9_x-Qa2mZp7LrT0bWc"
    assert result.message_ids == ("171749250112.4242.1234567890@acme.example",)


def test_gmail_bounce_names_the_missing_account() -> None:
    result = load("gmail_hard_bounce.eml")
    assert result.kind is InboundKind.HARD_BOUNCE
    assert result.token == "Zq8w-2YbN_0vXcRtLp4sAa"
    assert result.recipients == ("no.such.person.4711@gmail.com",)
    assert result.status == "5.1.1"
    assert result.diagnostic is not None
    assert result.diagnostic.startswith("550-5.1.1 The email account that you tried to reach")
    assert len(result.diagnostic) <= 500
    assert result.message_ids == ("171749260099.4242.555@acme.example",)
    assert result.original_subject == "Jürgen, three things you may have missed"


def test_exchange_ndr_with_headers_only_original() -> None:
    result = load("exchange_ndr.eml")
    assert result.kind is InboundKind.HARD_BOUNCE
    assert result.token == "Xh0Yq3k_Lm9-Pq2RsTuVwX"
    assert result.recipients == ("tom.ex-employee@contoso.example",)
    assert result.status == "5.1.10"
    assert result.diagnostic is not None
    assert "RecipientNotFound" in result.diagnostic
    assert result.message_ids == ("171749262201.4242.777@acme.example",)


def test_delayed_dsn_for_a_full_mailbox_is_a_soft_bounce() -> None:
    result = load("postfix_delayed_mailbox_full.eml")
    assert result.kind is InboundKind.SOFT_BOUNCE
    assert result.recipients == ("maria.full@example.net",)
    assert result.status == "4.2.2"
    assert result.diagnostic is not None
    assert "Mailbox full" in result.diagnostic
    assert result.message_ids == ("171757890177.4242.888@acme.example",)


def test_a_failed_dsn_with_a_transient_status_is_soft() -> None:
    # Postfix gives up on a queue after days with "Action: failed" and a 4.x.x status:
    # the server was away, the address may be fine.
    raw = (FIXTURES / "postfix_delayed_mailbox_full.eml").read_bytes()
    raw = raw.replace(b"Action: delayed", b"Action: failed").replace(
        b"Status: 4.2.2", b"Status: 4.4.7"
    )
    result = classify(raw)
    assert result.kind is InboundKind.SOFT_BOUNCE
    assert result.status == "4.4.7"


def test_one_failed_recipient_among_delayed_ones_makes_a_hard_bounce() -> None:
    raw = (FIXTURES / "postfix_delayed_mailbox_full.eml").read_bytes()
    extra = (
        b"Final-Recipient: rfc822; gone@example.net\n"
        b"Action: failed\nStatus: 5.1.1\n"
        b"Diagnostic-Code: smtp; 550 5.1.1 no such user\n\n"
        b"--9C4E12C0456.1717593302/mail.acme.example\n"
        b"Content-Description: Undelivered Message Headers"
    )
    raw = raw.replace(
        b"--9C4E12C0456.1717593302/mail.acme.example\n"
        b"Content-Description: Undelivered Message Headers",
        extra,
    )
    result = classify(raw)
    assert result.kind is InboundKind.HARD_BOUNCE
    assert result.recipients == ("gone@example.net",)
    assert result.status == "5.1.1"


def test_qmail_text_bounce_is_found_by_the_heuristic_detectors() -> None:
    result = load("qmail_bounce.eml")
    assert result.kind is InboundKind.HARD_BOUNCE
    assert result.token == "Rt5-Yu8_Io1pAsDfGhJkLz"
    assert result.recipients == ("gone.away@oldhost.example",)
    assert result.status == "5.1.1"
    assert result.message_ids == ("171749280955.4242.999@acme.example",)


# --- complaints ----------------------------------------------------------------------------


def test_yahoo_feedback_report_is_a_complaint() -> None:
    result = load("yahoo_arf_complaint.eml", "fbl@acme.example")
    assert result.kind is InboundKind.COMPLAINT
    assert result.feedback_type == "abuse"
    assert result.recipients == ("jane.doe@yahoo.example",)
    assert result.token == "Yb7_uN3-mK8jH2gF5dS4aQ"
    assert result.message_ids == ("171766788011.4242.1111@acme.example",)


def test_complaint_without_original_rcpt_to_uses_the_original_to() -> None:
    raw = (FIXTURES / "yahoo_arf_complaint.eml").read_bytes()
    raw = raw.replace(b"Original-Rcpt-To: Jane.Doe@yahoo.example\n", b"")
    raw = raw.replace(b"To: Jane.Doe@yahoo.example", b"To: Jane <JANE.DOE@yahoo.example>")
    result = classify(raw)
    assert result.kind is InboundKind.COMPLAINT
    assert result.recipients == ("jane.doe@yahoo.example",)


# --- replies -------------------------------------------------------------------------------


def test_gmail_reply_keeps_the_new_text_and_drops_the_quote() -> None:
    result = load("gmail_reply.eml", "reply+k3Jd9_x-Qa2mZp7LrT0bWc@acme.example")
    assert result.kind is InboundKind.REPLY
    assert result.token == "k3Jd9_x-Qa2mZp7LrT0bWc"
    assert result.sender == "jane.doe@gmail.example"
    assert result.recipients == ("jane.doe@gmail.example",)
    assert result.message_ids == ("171749250112.4242.1234567890@acme.example",)
    assert result.text is not None
    assert "your delivery times got too long — if that is fixed" in result.text
    assert "it has been a while" not in result.text
    assert "wrote:" not in result.text
    assert "Unsubscribe" not in result.text


def test_outlook_reply_drops_the_from_sent_block() -> None:
    result = load("outlook_reply.eml")
    assert result.kind is InboundKind.REPLY
    assert result.token == "Xh0Yq3k_Lm9-Pq2RsTuVwX"
    assert result.text is not None
    assert "Please call me next week – we need a new quote for the warehouse in Brühl." in (
        result.text
    )
    assert "it has been a while" not in result.text
    assert "Sent:" not in result.text


def test_reply_to_our_reply_address_counts_without_in_reply_to() -> None:
    result = load("outlook_original_message_reply.eml")
    assert result.kind is InboundKind.REPLY
    assert result.token == "Pq1-Wx2_Ec3Rv4Tb5Yn6Um"
    assert result.message_ids == ()
    assert result.text == "Send me the price list for the new drills, please."


def test_html_only_reply_is_read_as_text_without_the_blockquote() -> None:
    result = load("html_only_reply.eml")
    assert result.kind is InboundKind.REPLY
    assert result.text is not None
    assert "Yes, please send me the new catalogue – I'd like to see the autumn range." in (
        result.text
    )
    assert "it has been a while" not in result.text
    assert "<" not in result.text


def test_german_reply_in_latin1_drops_greeting_and_quote() -> None:
    result = load("german_reply.eml")
    assert result.kind is InboundKind.REPLY
    assert result.sender == "k.mueller@mueller-gmbh.example"
    assert result.subject == "AW: Klaus, drei Dinge, die Sie verpasst haben könnten"
    assert result.text is not None
    assert "Melden Sie sich bitte im März wieder." in result.text
    assert "Mit freundlichen Grüßen" not in result.text
    assert "Weile her" not in result.text


def test_reply_with_only_quoted_text_has_no_new_text() -> None:
    raw = (
        b"From: a@example.com\nTo: reply+T0k@acme.example\nSubject: Re: hi\n"
        b"In-Reply-To: <m1@acme.example>\n\n"
        b"On Tue, 4 Jun 2024 at 11:15, Acme <hello@acme.example> wrote:\n> old text\n"
    )
    result = classify(raw)
    assert result.kind is InboundKind.REPLY
    assert result.text == ""


def test_signature_after_dash_dash_is_dropped() -> None:
    raw = (
        b"From: a@example.com\nTo: reply+T0k@acme.example\nSubject: Re: hi\n\n"
        b"Count me in for the spring order.\n\n-- \nAnna Berg\nBerg & Sons\n"
    )
    result = classify(raw)
    assert result.text == "Count me in for the spring order."


# --- auto-replies --------------------------------------------------------------------------


def test_out_of_office_with_auto_submitted_is_an_auto_reply_not_a_reply() -> None:
    result = load("out_of_office_auto_submitted.eml")
    assert result.kind is InboundKind.AUTO_REPLY
    assert result.auto_reason == "Auto-Submitted: auto-replied"
    assert result.token == "k3Jd9_x-Qa2mZp7LrT0bWc"
    assert result.recipients == ("jane.doe@gmail.example",)


def test_x_autoreply_alone_marks_an_auto_reply() -> None:
    result = load("x_autoreply_only.eml")
    assert result.kind is InboundKind.AUTO_REPLY
    assert result.auto_reason == "X-Autoreply: yes"


def test_subject_alone_marks_an_auto_reply_even_in_gb2312() -> None:
    result = load("subject_only_auto_reply_zh.eml")
    assert result.kind is InboundKind.AUTO_REPLY
    assert result.subject.startswith("自动回复: 王先生")
    assert result.auto_reason == "subject: 自动回复"
    assert result.text == "您好，我正在休假，6月17日回来。"


@pytest.mark.parametrize(
    "subject",
    [
        "Out of Office: Jane, three things",
        "Automatic reply: Jane, three things",
        "Auto: Jane, three things",
        "Autoreply: Re: tips",
        "Abwesenheitsnotiz: Klaus, drei Dinge",
        "=?utf-8?q?R=C3=A9ponse_automatique=C2=A0=3A_Bonjour?=",
        "=?utf-8?q?Respuesta_autom=C3=A1tica=3A_Hola?=",
    ],
)
def test_typical_out_of_office_subjects(subject: str) -> None:
    raw = (
        f"From: x@example.com\nTo: reply+T0k@acme.example\nSubject: {subject}\n"
        "In-Reply-To: <m1@acme.example>\n\nI am away.\n"
    ).encode()
    assert classify(raw).kind is InboundKind.AUTO_REPLY


@pytest.mark.parametrize(
    ("header", "kind"),
    [
        ("Auto-Submitted: auto-generated", InboundKind.AUTO_REPLY),
        ("Auto-Submitted: no", InboundKind.REPLY),
        ("X-Auto-Response-Suppress: OOF, AutoReply", InboundKind.AUTO_REPLY),
        ("X-Auto-Response-Suppress: All", InboundKind.AUTO_REPLY),
        ("X-Auto-Response-Suppress: DR", InboundKind.REPLY),
        ("Precedence: auto_reply", InboundKind.AUTO_REPLY),
        ("Precedence: bulk", InboundKind.AUTO_REPLY),
        ("X-Precedence: junk", InboundKind.AUTO_REPLY),
        ("X-Autorespond: yes", InboundKind.AUTO_REPLY),
    ],
)
def test_auto_reply_headers(header: str, kind: InboundKind) -> None:
    raw = (
        f"From: x@example.com\nTo: reply+T0k@acme.example\nSubject: Re: tips\n{header}\n"
        "In-Reply-To: <m1@acme.example>\n\nThanks, noted.\n"
    ).encode()
    assert classify(raw).kind is kind


# --- nothing we know, and hostile input ----------------------------------------------------


def test_spam_to_the_bounce_address_is_unknown() -> None:
    result = load("spam_to_bounce_address.eml", "bounces+k3Jd9_x-Qa2mZp7LrT0bWc@acme.example")
    assert result.kind is InboundKind.UNKNOWN
    assert result.recipients == ()


def test_garbage_without_headers_is_unknown() -> None:
    result = load("garbage_no_headers.eml")
    assert result.kind is InboundKind.UNKNOWN
    assert "\n" not in result.subject


def test_hostile_subject_with_line_breaks_comes_out_as_one_line() -> None:
    raw = (
        b"From: x@example.com\nTo: reply+T0k@acme.example\n"
        b"Subject: =?utf-8?q?Hello=0D=0ABcc=3A_victim=40example=2Ecom=E2=80=A8more?=\n\nhi\n"
    )
    result = classify(raw)
    assert result.subject == "Hello Bcc: victim@example.com more"


def test_broken_charset_and_bad_transfer_encoding_still_classify() -> None:
    raw = (
        b"From: x@example.com\nTo: reply+T0k@acme.example\n"
        b"Subject: =?x-unknown-charset?q?caf=E9?=\n"
        b"Content-Type: text/plain; charset=x-nonsense\n"
        b"Content-Transfer-Encoding: base64\n\n"
        b"!!!not base64\xff\xfe and caf\xe9\n"
    )
    result = classify(raw)
    assert result.kind is InboundKind.REPLY
    assert result.subject.startswith("caf")


def test_a_reply_with_a_five_megabyte_attachment_is_classified_quickly() -> None:
    attachment = base64.encodebytes(bytes(range(256)) * (5 * 1024 * 4)).decode()
    raw = (
        "From: x@example.com\nTo: reply+T0k@acme.example\nSubject: Re: tips\n"
        "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b1\n\n"
        "--b1\nContent-Type: text/plain; charset=utf-8\n\nHere is our order list.\n"
        "--b1\nContent-Type: application/pdf\nContent-Disposition: attachment; filename=a.pdf\n"
        f"Content-Transfer-Encoding: base64\n\n{attachment}\n--b1--\n"
    ).encode()
    assert len(raw) > 5_000_000
    started = time.monotonic()
    result = classify(raw)
    assert time.monotonic() - started < 10
    assert result.kind is InboundKind.REPLY
    assert result.text == "Here is our order list."


def test_a_huge_text_body_is_bounded() -> None:
    raw = b"From: x@example.com\nTo: reply+T0k@acme.example\nSubject: Re: tips\n\n" + (
        b"word " * 1_000_000
    )
    result = classify(raw)
    assert result.text is not None
    assert len(result.text) <= 20_000


@pytest.mark.alone  # a bound on time: measured with the cores to itself
@pytest.mark.parametrize(
    "body",
    [
        b"On " + b"a " * 50_000 + b"wrote\n",  # one long line: minutes in the reply parser
        b"\n" * 200_000,  # blank lines: quadratic in its signature pattern
        (b"On " + b"a " * 95 + b"wrote\n") * 520,
        (b" " * 150 + b"\n") * 1000,
    ],
)
def test_pathological_reply_bodies_stay_fast(body: bytes) -> None:
    raw = b"From: x@example.com\nTo: reply+T0k@acme.example\nSubject: Re: tips\n\n" + body
    started = time.monotonic()
    result = classify(raw)
    assert time.monotonic() - started < 5
    assert result.kind is InboundKind.REPLY


def test_long_paragraph_and_hyphen_list_survive_in_the_reply() -> None:
    paragraph = "We would like to order again " + "and again " * 40 + "next month."
    raw = (
        "From: x@example.com\nTo: reply+T0k@acme.example\nSubject: Re: tips\n\n"
        f"{paragraph}\nWe need:\n- 20 drills\n- 5 saws\n\n"
        "On Tue, 4 Jun 2024 at 11:15, Acme <hello@acme.example> wrote:\n> old\n"
    ).encode()
    result = classify(raw)
    assert result.text == f"{paragraph}\nWe need:\n- 20 drills\n- 5 saws"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4000))
def test_classify_never_raises_on_arbitrary_bytes(raw: bytes) -> None:
    with capture_logs() as logs:
        result = classify(raw, ["bounces+T0k@acme.example"])
    assert isinstance(result.kind, InboundKind)
    # The last-resort catch-all in classify() was not what kept it from raising.
    assert [e for e in logs if e["event"] == "inbound_unparsable"] == []
    assert "\n" not in result.subject and "\r" not in result.subject


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\n",
                b"Content-Type: multipart/report; report-type=feedback-report; boundary=b\n",
                b"Content-Type: message/delivery-status\n",
                b"Content-Type: message/rfc822\n",
                b"Content-Type: text/rfc822-headers\n",
                b"Content-Type: message/feedback-report\n",
                b"Content-Transfer-Encoding: base64\n",
                b"From: MAILER-DAEMON@x\n",
                b"Subject: =?utf-8?q?=FF=0D?=\n",
                b"Auto-Submitted: auto-replied\n",
                b"--b\n",
                b"--b--\n",
                b"\n",
                b"Action: failed\nStatus: 5.1.1\nFinal-Recipient: rfc822; a@b\n",
                b"Original-Rcpt-To: a@b\n",
                b"Message-ID: <x@y>\n",
                b"Content-Type: text/plain; charset=\xff\n",
                b"From: \xff\xfe <a@b>\n",
                b"Content-Type: multipart/mixed; boundary=\xff\n",
                b"Hi. This is the qmail-send program\n\n<a@b>:\n",
            ]
        ),
        max_size=40,
    ),
    st.binary(max_size=200),
)
def test_classify_never_raises_on_mangled_reports(pieces: list[bytes], noise: bytes) -> None:
    with capture_logs() as logs:
        result = classify(b"".join(pieces) + noise)
    assert isinstance(result.kind, InboundKind)
    assert [e for e in logs if e["event"] == "inbound_unparsable"] == []


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.eml")))
def test_every_fixture_is_parsed_without_the_last_resort(name: str) -> None:
    with capture_logs() as logs:
        load(name)
    assert logs == []
