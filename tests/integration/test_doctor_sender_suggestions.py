"""`reengage doctor --sender`: what it offers to publish must be right to publish, and what
it calls ok must pass (issue 20). SPF records merged or mended without an unparsable term
or a weaker ``all``, DMARC records that are several or misordered, an SMTP relay given as an
address, alignment of a mechanism that fails, and the MX to point at the inbound listener.
Real dnsmasq on loopback, as in ``test_doctor_sender.py`` (whose helpers run the command).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration import inprocess
from tests.integration.test_doctor_sender import Keys, World, _key, doctor, lines, serving

IP_RELAY = "198.51.100.9"


def _zone(public: str) -> list[str]:
    dkim = f'"v=DKIM1; k=rsa; p={public}"'
    zone = [
        f"host-record=smtp.ip.test,{IP_RELAY}",
        'txt-record=spf.good.test,"v=spf1 ip4:192.0.2.0/28 -all"',
        # two records: one with an address that is none, the other weaker
        'txt-record=merge.test,"v=spf1 include:spf.good.test -all"',
        'txt-record=merge.test,"v=spf1 ip4:999.1.1.1 ~all"',
        'txt-record=bothdash.test,"v=spf1 ip4:192.0.2.1 -all"',
        'txt-record=bothdash.test,"v=spf1 include:spf.good.test -all"',
        'txt-record=plustwo.test,"v=spf1 ip4:192.0.2.1 +all"',
        'txt-record=plustwo.test,"v=spf1 mx ~all"',
        'txt-record=typoplus.test,"v=spf1 inclde:spf.good.test ip4:192.0.2.1/99 +all"',
        # DMARC: v=DMARC1 last in one record, a weaker one beside it
        'txt-record=_dmarc.mixed.test,"p=reject; v=DMARC1"',
        'txt-record=_dmarc.mixed.test,"v=DMARC1; p=none; rua=https://x.test/r"',
        'txt-record=mixed.test,"v=spf1 ip4:192.0.2.0/24 -all"',
        # an SMTP relay given as an address: covered by ip4 or a:, or not at all
        'txt-record=ipcov.test,"v=spf1 ip4:198.51.100.0/24 -all"',
        'txt-record=acov.test,"v=spf1 a:smtp.ip.test -all"',
        'txt-record=nocov.test,"v=spf1 ip4:192.0.2.0/24 include:spf.good.test -all"',
        # alignment: SPF broken (two records), DKIM missing, or both
        'txt-record=spfbad.test,"v=spf1 ip4:192.0.2.0/24 -all"',
        'txt-record=spfbad.test,"v=spf1 ip4:192.0.2.1 -all"',
        f"txt-record=s1._domainkey.spfbad.test,{dkim}",
        'txt-record=nokey.test,"v=spf1 ip4:192.0.2.0/24 -all"',
        'txt-record=neither.test,"v=spf1 ip4:192.0.2.0/24 -all"',
        'txt-record=neither.test,"v=spf1 ip4:192.0.2.1 -all"',
        'txt-record=nomx.good.test,"v=spf1 ip4:192.0.2.0/24 -all"',
        f"txt-record=s1._domainkey.good.test,{dkim}",
        'txt-record=_dmarc.good.test,"v=DMARC1; p=reject; rua=mailto:d@good.test"',
    ]
    for domain in ("spfbad.test", "nokey.test", "neither.test", "nocov.test"):
        zone.append(f'txt-record=_dmarc.{domain},"v=DMARC1; p=reject; rua=mailto:d@{domain}"')
    return zone


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    folder = tmp_path_factory.mktemp("dkim")
    pem, public = _key(2048)
    (folder / "dkim.pem").write_bytes(pem)
    return Keys(folder / "dkim.pem", public, "", folder / "dkim.pem")


@pytest.fixture(scope="module")
def server(keys: Keys, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from serving(_zone(keys.public), tmp_path_factory)


def _published(result: inprocess.Result, name: str) -> list[str]:
    return [
        line.strip().removeprefix("publish: ")
        for line in result.stdout.splitlines()
        if line.strip().startswith(f"publish: {name}.")
    ]


def test_two_spf_records_merge_without_the_invalid_term_and_keep_minus_all(
    server: World, keys: Keys, tmp_path: Path
) -> None:
    result = doctor(server, keys, "merge.test", tmp_path, REENGAGE_INBOUND_DOMAIN="")
    [failed] = lines(result, "FAIL SPF merge.test")
    assert "2 SPF records" in failed
    assert "ip4:999.1.1.1 left out ('999.1.1.1' is not an IPv4 address)" in failed
    assert _published(result, "merge.test") == [
        'merge.test. TXT "v=spf1 include:spf.good.test -all"'
    ]
    both = doctor(server, keys, "bothdash.test", tmp_path, REENGAGE_INBOUND_DOMAIN="")
    assert _published(both, "bothdash.test") == [
        'bothdash.test. TXT "v=spf1 include:spf.good.test ip4:192.0.2.1 -all"'
    ]


def test_plus_all_is_flagged_and_never_offered_in_a_merge_or_a_mended_record(
    server: World, keys: Keys, tmp_path: Path
) -> None:
    two = doctor(server, keys, "plustwo.test", tmp_path, REENGAGE_INBOUND_DOMAIN="")
    failed = "\n".join(lines(two, "FAIL SPF plustwo.test"))
    assert "'v=spf1 ip4:192.0.2.1 +all' ends in +all: +all lets every server" in failed
    assert "+all replaced by ~all" in failed
    assert _published(two, "plustwo.test") == ['plustwo.test. TXT "v=spf1 ip4:192.0.2.1 mx ~all"']
    typo = doctor(server, keys, "typoplus.test", tmp_path, REENGAGE_INBOUND_DOMAIN="")
    failed = "\n".join(lines(typo, "FAIL SPF typoplus.test"))
    assert "'inclde' is no SPF mechanism" in failed and "the prefix /99 is not 0 to 32" in failed
    assert "ends in +all: +all lets every server on the internet send as the domain" in failed
    assert _published(typo, "typoplus.test") == [
        'typoplus.test. TXT "v=spf1 include:spf.good.test ip4:192.0.2.1 ~all"'
    ]


def test_every_dmarc_record_is_reported_and_the_strongest_is_offered_v_first(
    server: World, keys: Keys, tmp_path: Path
) -> None:
    result = doctor(server, keys, "mixed.test", tmp_path, REENGAGE_INBOUND_DOMAIN="")
    [failed] = lines(result, "FAIL DMARC _dmarc.mixed.test")
    assert "_dmarc.mixed.test has 2 DMARC records" in failed
    assert "receivers apply 'v=DMARC1; p=none; rua=https://x.test/r' alone" in failed
    assert "'p=reject; v=DMARC1' is ignored: v=DMARC1 must be the first tag" in failed
    assert "strongest policy (p=reject)" in failed
    assert _published(result, "_dmarc.mixed.test") == [
        '_dmarc.mixed.test. TXT "v=DMARC1; p=reject"'
    ]
    assert lines(result, "ok   DMARC") == [] and result.returncode == 1


@pytest.mark.parametrize(
    ("domain", "said"),
    [
        ("ipcov.test", f"ok   SPF ipcov.test: covers the SMTP relay {IP_RELAY} ({IP_RELAY})"),
        ("acov.test", f"ok   SPF acov.test: covers the SMTP relay {IP_RELAY} ({IP_RELAY})"),
        (
            "nocov.test",
            f"warn SPF nocov.test: the SMTP relay {IP_RELAY} ({IP_RELAY}) is not covered",
        ),
    ],
)
def test_an_smtp_relay_given_as_an_address_is_checked_against_spf(
    domain: str, said: str, server: World, keys: Keys, tmp_path: Path
) -> None:
    result = doctor(
        server, keys, domain, tmp_path, REENGAGE_INBOUND_DOMAIN="", REENGAGE_SMTP_HOST=IP_RELAY
    )
    assert said in result.stdout, result.stdout


@pytest.mark.parametrize(
    ("domain", "level", "said"),
    [
        ("spfbad.test", "warn", "SPF of the envelope sender bounces+…@spfbad.test would align"),
        ("nokey.test", "warn", "DKIM d=nokey.test would align (relaxed, adkim) but does not"),
        ("neither.test", "FAIL", "every mail fails DMARC; mend the SPF and DKIM records above"),
    ],
)
def test_alignment_is_not_ok_for_a_mechanism_that_fails(
    domain: str, level: str, said: str, server: World, keys: Keys, tmp_path: Path
) -> None:
    result = doctor(server, keys, domain, tmp_path, REENGAGE_INBOUND_DOMAIN="")
    assert lines(result, f"ok   DMARC _dmarc.{domain}: with From") == [], result.stdout
    [line] = lines(result, f"{level:<4} DMARC _dmarc.{domain}: with From")
    assert said in line and "does not pass: see the" in line


def test_the_mx_offered_names_the_listeners_host_not_the_web_apps(
    server: World, keys: Keys, tmp_path: Path
) -> None:
    inbound = {"REENGAGE_INBOUND_DOMAIN": "nomx.good.test", "REENGAGE_DKIM_DOMAIN": "good.test"}
    result = doctor(server, keys, "good.test", tmp_path, **inbound)
    [failed] = lines(result, "FAIL MX nomx.good.test")
    assert "no setting naming that host: mx.nomx.good.test below is a suggested name" in failed
    assert _published(result, "nomx.good.test") == ["nomx.good.test. MX 10 mx.nomx.good.test."]
    assert "app.good.test." not in result.stdout
    bound = doctor(
        server, keys, "good.test", tmp_path, **inbound, REENGAGE_INBOUND_HOST="203.0.113.25"
    )
    assert _published(bound, "nomx.good.test") == ["nomx.good.test. MX 10 mx.nomx.good.test."]
    assert _published(bound, "mx.nomx.good.test") == ["mx.nomx.good.test. A 203.0.113.25"]
