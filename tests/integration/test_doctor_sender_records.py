"""`reengage doctor --sender` on records a receiver rejects or reads otherwise than they
look: SPF that does not parse, DKIM keys unusable for rsa-sha256 mail, DMARC records in
the wrong order or twice, a weak key, an inbound mailbox, a truncated answer, and
``--domain`` values that are no domain. Real dnsmasq on loopback, as in
``test_doctor_sender.py`` (whose ``doctor`` and ``lines`` helpers run the command).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import pytest

from tests.integration import inprocess
from tests.integration.dns_server import raw_txt
from tests.integration.test_doctor_sender import Keys, World, _key, doctor, lines, serving

# A 512-bit RSA key (openssl genrsa 512): too weak for any receiver; a test key only.
WEAK = b"""-----BEGIN PRIVATE KEY-----
MIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEA3w5i5BqgtljOSYcq
GOZZKg/tR3b6JNJqTiX0v21QrPuuTRuZQhyt2TPmtxFkVrwywLNVB5bzk7s2j5w0
ooSC1wIDAQABAkBvP0+XEKjDCTupdF5MmOYzkkn3cKGFp+QZIdkVeEHaY6XGbUDD
O/j23HNbHByXsc9FpY6DtHGPxFTIJVHtToyxAiEA8MDAESrhVY5QNrt0QF2lcGLK
hsjTG3ZjP4Yr1NMJQMsCIQDtLrl957tx9apCwoWhgeWY8HUHwRVp1kam2R02Y7FA
pQIgUc5dNTgp20WBUie+J8TqW1bmVIhW24UN0l8H88hF46MCIQCFENHAcWIYbVs4
WSnfkqDdTQpbb1g0KKM6uFRLT2MCgQIhAK9pGiP5rSKh6NPoDVqhARVn+p9pb/NR
66To9A18sEoa
-----END PRIVATE KEY-----
"""

BROKEN_SPF = {
    "typo.test": "v=spf1 inclde:spf.good.test -all",
    "addr.test": "v=spf1 ip4:999.1.1.1 -all",
    "prefix.test": "v=spf1 ip4:192.0.2.10/99 -all",
    "aprefix.test": "v=spf1 a:smtp.relay.test/99 mx:bounces.good.test/24 -all",
    "name.test": "v=spf1 ip4:192.0.2.0/24 a:bad..name -all",
    "twoall.test": "v=spf1 ip4:192.0.2.0/24 -all -all",
    "exp.test": "v=spf1 ip4:192.0.2.0/24 -all exp",
    "after.test": "v=spf1 ip4:192.0.2.0/24 ~all mx",
}
# what each must say, and the corrected record (None: not derivable, nothing to publish)
EXPECTED = {
    "typo.test": (
        "'inclde' is no SPF mechanism (meant include?)",
        "v=spf1 include:spf.good.test -all",
    ),
    "addr.test": ("'999.1.1.1' is not an IPv4 address", None),
    "prefix.test": ("the prefix /99 is not 0 to 32", "v=spf1 ip4:192.0.2.10 -all"),
    "aprefix.test": (
        "the prefix /99 is not 0 to 32",
        "v=spf1 a:smtp.relay.test mx:bounces.good.test/24 -all",
    ),
    "name.test": ("its domain 'bad..name' is not a domain name", None),
    "twoall.test": (
        "-all after -all: receivers never look past the first all",
        "v=spf1 ip4:192.0.2.0/24 -all",
    ),
    "after.test": ("mx after ~all", "v=spf1 ip4:192.0.2.0/24 mx ~all"),
    "exp.test": ("exp is a modifier: it needs =value", "v=spf1 ip4:192.0.2.0/24 -all"),
}


def _zone(public: str) -> list[str]:
    reject = '"v=DMARC1; p=reject; rua=mailto:dmarc@x.test"'
    lines = [
        "host-record=smtp.relay.test,192.0.2.10",
        "host-record=mx.good.test,192.0.2.25",
        'txt-record=spf.good.test,"v=spf1 ip4:192.0.2.0/28 -all"',
        'txt-record=good.test,"v=spf1 ip4:192.0.2.0/24 -all"',
        "mx-host=bounces.good.test,mx.good.test,10",
        'txt-record=inc.test,"v=spf1 include:typo.test -all"',
        'txt-record=redirect.test,"v=spf1 ip4:192.0.2.0/24 ~all redirect=gone.test"',
        f'txt-record=s1._domainkey.sha1.test,"v=DKIM1; h=sha1; k=rsa; p={public}"',
        f'txt-record=s1._domainkey.tls.test,"v=DKIM1; k=rsa; s=tlsrpt; p={public}"',
        f'txt-record=s1._domainkey.vlast.test,"k=rsa; v=DKIM1; p={public}"',
        f'txt-record=s1._domainkey.both.test,"v=DKIM1; h=sha1:sha256; s=email; p={public}"',
        'txt-record=_dmarc.order.test,"p=reject; v=DMARC1; rua=mailto:d@order.test"',
        'txt-record=_dmarc.two.test,"v=DMARC1; p=none"',
        'txt-record=_dmarc.typo.test,"v=DMARC1; p=rejcet; rua=mailto:d@typo.test"',
        'txt-record=_dmarc.two.test,"v=DMARC1; p=reject; rua=mailto:d@two.test"',
        'txt-record=_dmarc.rua.test,"v=DMARC1; p=reject; rua=https://reports.rua.test/in"',
        # over 512 bytes: over UDP without EDNS the answer comes truncated (TC)
        'txt-record=big.test,"v=spf1 '
        + " ".join(f"ip4:198.51.100.{i}" for i in range(1, 40))
        + ' ip4:192.0.2.0/24 -all"',
    ]
    for domain, record in BROKEN_SPF.items():
        lines.append(f'txt-record={domain},"{record}"')
    for domain in {*BROKEN_SPF} - {"typo.test"} | {"inc.test", "redirect.test"}:
        lines.append(f"txt-record=_dmarc.{domain},{reject}")
    for domain in ("rua.test", "sha1.test", "tls.test", "vlast.test", "both.test"):
        lines.append(f'txt-record={domain},"v=spf1 ip4:192.0.2.0/24 -all"')
    for domain in ("sha1.test", "tls.test", "vlast.test", "both.test", "big.test"):
        lines.append(f"txt-record=_dmarc.{domain},{reject}")
    return lines


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    folder = tmp_path_factory.mktemp("dkim")
    pem, public = _key(2048)
    (folder / "dkim.pem").write_bytes(pem)
    (folder / "weak.pem").write_bytes(WEAK)
    return Keys(folder / "dkim.pem", public, "", folder / "weak.pem")


@pytest.fixture(scope="module")
def server(keys: Keys, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from serving(_zone(keys.public), tmp_path_factory)


@pytest.mark.parametrize("domain", sorted(BROKEN_SPF))
def test_an_spf_record_receivers_cannot_parse_fails_with_the_corrected_record(
    domain: str, server: World, keys: Keys, tmp_path: Path
) -> None:
    result = doctor(server, keys, domain, tmp_path, REENGAGE_INBOUND_DOMAIN="")
    assert result.returncode == 1 and result.stderr == ""
    assert lines(result, f"ok   SPF {domain}: v=spf1") == [], result.stdout
    failed = "\n".join(lines(result, f"FAIL SPF {domain}"))
    said, fixed = EXPECTED[domain]
    assert said in failed, result.stdout
    assert "permanent error" in failed or "after" in domain or "twoall" in domain
    published = [
        p.strip() for p in result.stdout.splitlines() if p.strip().startswith(f"publish: {domain}.")
    ]
    if fixed is None:
        assert published == [] and "correct the term or remove it" in failed
    else:
        assert published == [f'publish: {domain}. TXT "{fixed}"']


def test_a_broken_record_reached_through_an_include_fails(
    server: World, keys: Keys, tmp_path: Path
) -> None:
    result = doctor(server, keys, "inc.test", tmp_path, REENGAGE_INBOUND_DOMAIN="")
    failed = "\n".join(lines(result, "FAIL SPF inc.test"))
    assert "include:typo.test's record" in failed and "'inclde' is no SPF mechanism" in failed


def test_redirect_beside_all_is_a_warning_not_a_failure(
    server: World, keys: Keys, tmp_path: Path
) -> None:
    result = doctor(server, keys, "redirect.test", tmp_path, REENGAGE_INBOUND_DOMAIN="")
    assert lines(result, "FAIL SPF") == [], result.stdout
    assert "warn SPF redirect.test: redirect=gone.test is ignored: the record has an all term" in (
        result.stdout
    )
    assert (
        "ok   SPF redirect.test: v=spf1 ip4:192.0.2.0/24 ~all redirect=gone.test" in result.stdout
    )


@pytest.mark.parametrize(
    ("domain", "said"),
    [
        ("sha1.test", "h=sha1 does not allow sha256"),
        ("tls.test", "s=tlsrpt does not allow email"),
        ("vlast.test", "v=DKIM1 must be the first tag"),
    ],
)
def test_a_dkim_key_record_receivers_cannot_use_for_rsa_sha256_fails(
    domain: str, said: str, server: World, keys: Keys, tmp_path: Path
) -> None:
    result = doctor(server, keys, domain, tmp_path, REENGAGE_INBOUND_DOMAIN="")
    [failed] = lines(result, f"FAIL DKIM s1._domainkey.{domain}")
    assert said in failed and "receivers reject every signature" in failed
    assert f'publish: s1._domainkey.{domain}. TXT "v=DKIM1; k=rsa; p=' in result.stdout
    # sha256 among others, and s=email, are fine
    fine = doctor(server, keys, "both.test", tmp_path, REENGAGE_INBOUND_DOMAIN="")
    assert "ok   DKIM s1._domainkey.both.test: publishes the public half" in fine.stdout


def test_a_weak_key_is_not_offered_for_publishing(
    server: World, keys: Keys, tmp_path: Path
) -> None:
    result = doctor(
        server,
        keys,
        "sha1.test",
        tmp_path,
        REENGAGE_INBOUND_DOMAIN="",
        REENGAGE_DKIM_PRIVATE_KEY_FILE=str(keys.short_pem),
    )
    [failed] = lines(result, "FAIL DKIM")
    assert "holds a 512-bit key" in failed and "openssl genrsa -out dkim.pem 2048" in failed
    assert "publish: s1._domainkey" not in result.stdout


def test_dmarc_in_the_wrong_order_or_twice_keeps_the_policy(
    server: World, keys: Keys, tmp_path: Path
) -> None:
    order = doctor(server, keys, "order.test", tmp_path, REENGAGE_INBOUND_DOMAIN="")
    [failed] = lines(order, "FAIL DMARC _dmarc.order.test")
    assert "v=DMARC1 must be the first tag" in failed
    assert (
        'publish: _dmarc.order.test. TXT "v=DMARC1; p=reject; rua=mailto:d@order.test"'
        in order.stdout
    )
    assert "p=none" not in order.stdout
    two = doctor(server, keys, "two.test", tmp_path, REENGAGE_INBOUND_DOMAIN="")
    [failed] = lines(two, "FAIL DMARC _dmarc.two.test")
    assert "2 DMARC records" in failed and "strongest policy (p=reject)" in failed
    assert 'publish: _dmarc.two.test. TXT "v=DMARC1; p=reject; rua=mailto:d@two.test"' in (
        two.stdout
    )
    assert 'TXT "v=DMARC1; p=none' not in two.stdout
    typo = doctor(server, keys, "typo.test", tmp_path, REENGAGE_INBOUND_DOMAIN="")
    assert "has no valid p=" in "\n".join(lines(typo, "FAIL DMARC _dmarc.typo.test"))
    assert 'publish: _dmarc.typo.test. TXT "v=DMARC1; p=reject; rua=mailto:d@typo.test"' in (
        typo.stdout
    )


def test_reports_to_an_https_address_are_a_warning(
    server: World, keys: Keys, tmp_path: Path
) -> None:
    result = doctor(server, keys, "rua.test", tmp_path, REENGAGE_INBOUND_DOMAIN="")
    warned = "\n".join(lines(result, "warn DMARC _dmarc.rua.test"))
    assert "rua=https://reports.rua.test/in: reports go to mailto: addresses only" in warned
    assert lines(result, "FAIL DMARC") == [], result.stdout


def test_a_truncated_answer_is_asked_again_over_tcp(
    server: World, keys: Keys, tmp_path: Path
) -> None:
    query = dns.message.make_query("big.test", "TXT")  # as the resolver asks: no EDNS
    host, port = server.address.split(":")
    assert dns.query.udp(query, host, port=int(port), timeout=2).flags & dns.flags.TC
    result = doctor(server, keys, "big.test", tmp_path, REENGAGE_INBOUND_DOMAIN="")
    assert "ok   SPF big.test: v=spf1 ip4:198.51.100.1 " in result.stdout, result.stdout
    assert "ip4:198.51.100.39 ip4:192.0.2.0/24 -all" in result.stdout


def test_with_an_inbound_mailbox_the_mx_is_the_mailbox_providers(
    server: World, keys: Keys, tmp_path: Path
) -> None:
    mailbox = {
        "REENGAGE_INBOUND_IMAP_URL": "imaps://u:p@imap.mail.test:993/INBOX",
        "REENGAGE_DKIM_DOMAIN": "good.test",
    }
    found = doctor(server, keys, "good.test", tmp_path, **mailbox)
    [mx] = lines(found, "ok   MX bounces.good.test")
    assert "the inbound mailbox at imap.mail.test is read" in mx and "has an MX" in mx
    missing = doctor(
        server, keys, "good.test", tmp_path, **mailbox, REENGAGE_INBOUND_DOMAIN="good.test"
    )
    [failed] = lines(missing, "FAIL MX good.test")
    assert "the MX records your mailbox provider documents for good.test" in failed
    for said in (found.stdout, missing.stdout):
        assert "inbound listener" not in said and "REENGAGE_INBOUND_PORT" not in said
        assert "publish: good.test. MX" not in said and "publish: bounces.good.test. MX" not in said


@pytest.mark.parametrize(
    "value",
    [
        "ac me.example",
        "-x.example",
        "*.example",
        '"acme.example"',
        "acme.example;",
        "",
        "a..b.test",
        "@",
    ],
)
def test_a_domain_option_that_is_no_domain_is_a_usage_error(value: str, tmp_path: Path) -> None:
    env = {"REENGAGE_DNS_SERVER": "127.0.0.1:9", "COLUMNS": "200"}
    result = inprocess.cli("doctor", "--sender", "--domain", value, cwd=tmp_path, env=env)
    assert result.returncode == 2 and result.stdout == ""
    assert "--domain" in result.stderr and repr(value) in result.stderr
    assert "no campaign was found" not in result.stderr


@pytest.mark.parametrize(
    "value", [b"v=spf1 ip4:192.0.2.1 a:mail.caf\xc3\xa9.test -all", b"v=spf1 a:\xff\xfe.test -all"]
)
def test_an_spf_record_that_is_not_ascii_fails(value: bytes, keys: Keys, tmp_path: Path) -> None:
    with raw_txt(value) as address:
        result = doctor(address, keys, "raw.test", tmp_path, REENGAGE_INBOUND_DOMAIN="")
    assert result.stderr == "" and result.returncode == 1
    failed = "\n".join(lines(result, "FAIL SPF raw.test"))
    assert "not ASCII" in failed and "permanent error" in failed, result.stdout
    assert "correct the term or remove it" in failed
    assert lines(result, "ok   SPF raw.test: v=spf1") == []
