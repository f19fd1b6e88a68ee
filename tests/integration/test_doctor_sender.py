"""`reengage doctor --sender` against real DNS servers on loopback: dnsmasq serving good
and broken zones, a server that answers SERVFAIL and one that never answers.

Each From domain under ``.test`` is one scenario; the command runs as a person runs it
(in process, see ``inprocess.py``) with its DNS server set by ``REENGAGE_DNS_SERVER``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from reengage.store import Store
from tests.integration import inprocess
from tests.integration.dns_server import dnsmasq, servfail, silent
from tests.integration.test_stats import T0, fill

RELAY = "192.0.2.10"


@dataclass(frozen=True)
class Keys:
    """The configured private key's file and public half, and another key's public half."""

    pem: Path
    public: str  # base64 SubjectPublicKeyInfo, as published in p=
    other: str
    short_pem: Path


def _key(bits: int) -> tuple[bytes, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem, base64.b64encode(der).decode()


def _zone(keys: Keys) -> list[str]:
    dkim = f'"v=DKIM1; k=rsa; p={keys.public}"'  # over 255 bytes: dnsmasq sends two strings
    reject = '"v=DMARC1; p=reject; rua=mailto:dmarc@{0}"'
    lines = [
        "host-record=smtp.relay.test," + RELAY,
        "host-record=mx.good.test,192.0.2.25",
        # good.test: everything right; bounces go to bounces.good.test (its own SPF and MX)
        'txt-record=good.test,"v=spf1 ip4:192.0.2.0/24 -all"',
        'txt-record=bounces.good.test,"v=spf1 include:spf.good.test -all"',
        'txt-record=spf.good.test,"v=spf1 ip4:192.0.2.0/28 -all"',
        "mx-host=bounces.good.test,mx.good.test,10",
        f"txt-record=s1._domainkey.good.test,{dkim}",
        "txt-record=_dmarc.good.test," + reject.format("good.test"),
        # an SPF record split in the middle of a word, as a long one may be
        'txt-record=split.test,"v=spf1 ip4:192.0.2.0/24 in","clude:spf.good.test -all"',
        "txt-record=_dmarc.split.test," + reject.format("split.test"),
        "txt-record=_dmarc.nodkim.test," + reject.format("nodkim.test"),
        "txt-record=_dmarc.badkey.test," + reject.format("badkey.test"),
        f'txt-record=s1._domainkey.badkey.test,"v=DKIM1; k=rsa; p={keys.other}"',
        'txt-record=s1._domainkey.revoked.test,"v=DKIM1; k=rsa; p="',
        'txt-record=_dmarc.none.test,"v=DMARC1; p=none"',
        'txt-record=two.test,"v=spf1 ip4:192.0.2.0/24 -all"',
        'txt-record=two.test,"v=spf1 include:spf.good.test ~all"',
        'txt-record=plus.test,"v=spf1 ip4:192.0.2.0/24 +all"',
        'txt-record=many.test,"v=spf1 include:m1.many.test include:m2.many.test -all"',
        'txt-record=m1.many.test,"v=spf1 a:h1.test a:h2.test a:h3.test a:h4.test a:h5.test -all"',
        'txt-record=m2.many.test,"v=spf1 mx:h6.test mx:h7.test a:h8.test a:h9.test ~all"',
        'txt-record=nomx.good.test,"v=spf1 ip4:192.0.2.0/24 -all"',
        'txt-record=loop.test,"v=spf1 include:loop2.test -all"',
        'txt-record=mxcov.test,"v=spf1 mx:bounces.good.test/24 -all"',
        'txt-record=far.test,"v=spf1 ip4:198.51.100.0/24 -all"',
        'txt-record=loop2.test,"v=spf1 ip4:192.0.2.0/24 include:loop.test -all"',
        'txt-record=_dmarc.loop.test,"v=DMARC1; p=reject; rua=mailto:a@loop.test"',
        'txt-record=_dmarc.loop.test,"v=DMARC1; p=none"',
        'txt-record=s1._domainkey.loop.test,"v=DKIM1; k=rsa; p=not*base64!"',
    ]
    for domain in ("nodkim.test", "badkey.test", "none.test", "revoked.test"):
        lines.append(f'txt-record={domain},"v=spf1 ip4:192.0.2.0/24 -all"')
        if domain != "badkey.test":
            lines.append(f"txt-record=s1._domainkey.{domain},{dkim}")
    lines.remove(f"txt-record=s1._domainkey.nodkim.test,{dkim}")
    lines.remove(f"txt-record=s1._domainkey.revoked.test,{dkim}")
    return lines


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    folder = tmp_path_factory.mktemp("dkim")
    pem, public = _key(2048)
    _, other = _key(2048)
    short, _ = _key(1024)
    (folder / "dkim.pem").write_bytes(pem)
    (folder / "short.pem").write_bytes(short)
    return Keys(folder / "dkim.pem", public, other, folder / "short.pem")


@dataclass(frozen=True)
class World:
    """The DNS server serving the zones, and a migrated database without mail."""

    address: str
    database: str


def serving(zone: list[str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """dnsmasq serving ``zone`` beside a migrated database: each doctor test file's world."""
    folder = tmp_path_factory.mktemp("dns")
    database = f"sqlite:///{folder / 'reengage.db'}"
    upgrade = inprocess.cli("db", "upgrade", cwd=folder, env={"REENGAGE_DATABASE_URL": database})
    assert upgrade.returncode == 0, upgrade.stderr
    with dnsmasq(zone, folder) as address:
        yield World(address, database)


@pytest.fixture(scope="module")
def server(keys: Keys, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from serving(_zone(keys), tmp_path_factory)


def doctor(
    server: World | str, keys: Keys, domain: str, tmp_path: Path, **settings: str
) -> inprocess.Result:
    """``reengage doctor --sender --domain DOMAIN`` signed as DOMAIN with selector s1, asking
    the world's DNS server (or the one at the address given)."""
    world = server if isinstance(server, World) else World(server, "")
    env = {
        "REENGAGE_DATABASE_URL": world.database,
        "REENGAGE_DNS_SERVER": world.address,
        "REENGAGE_DNS_TIMEOUT_SECONDS": "2",
        "REENGAGE_SMTP_HOST": "smtp.relay.test",
        "REENGAGE_DKIM_SELECTOR": "s1",
        "REENGAGE_DKIM_DOMAIN": domain,
        "REENGAGE_DKIM_PRIVATE_KEY_FILE": str(keys.pem),
        "REENGAGE_INBOUND_DOMAIN": "bounces.good.test",
        "REENGAGE_BASE_URL": "https://app.good.test",
        "COLUMNS": "400",
        **settings,
    }
    env = {k: v for k, v in env.items() if v}
    return inprocess.cli("doctor", "--sender", "--domain", domain, cwd=tmp_path, env=env)


def lines(result: inprocess.Result, start: str) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith(start)]


def test_a_sender_with_every_record_right_passes(server: World, keys: Keys, tmp_path: Path) -> None:
    result = doctor(server, keys, "good.test", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert lines(result, "FAIL") == [] and lines(result, "warn") == [], result.stdout
    out = result.stdout
    assert "ok   SPF bounces.good.test: v=spf1 include:spf.good.test -all" in out
    assert "2 of 10 DNS lookups" not in out and "1 of 10 DNS lookups" in out
    assert f"covers the SMTP relay smtp.relay.test ({RELAY})" in out
    # the 2048-bit key's record came as two strings: joined, it is the configured key
    assert "ok   DKIM s1._domainkey.good.test: publishes the public half" in out
    assert "ok   DMARC _dmarc.good.test: v=DMARC1; p=reject; rua=mailto:dmarc@good.test" in out
    assert "SPF of the envelope sender bounces+…@bounces.good.test aligns (relaxed" in out
    assert "ok   MX bounces.good.test: 10 mx.good.test." in out
    assert "ok   one-click unsubscribe" in out


def test_an_spf_record_split_mid_word_is_read_joined(
    server: World, keys: Keys, tmp_path: Path
) -> None:
    result = doctor(server, keys, "split.test", tmp_path, REENGAGE_INBOUND_DOMAIN="")
    assert "ok   SPF split.test: v=spf1 ip4:192.0.2.0/24 include:spf.good.test -all" in (
        result.stdout
    )
    assert "(2 of 10" not in result.stdout and "1 of 10 DNS lookups" in result.stdout


def test_a_missing_dkim_record_fails_with_the_record_to_publish(
    server: World, keys: Keys, tmp_path: Path
) -> None:
    result = doctor(server, keys, "nodkim.test", tmp_path)
    assert result.returncode == 1
    [failed] = lines(result, "FAIL DKIM")
    assert failed.startswith("FAIL DKIM s1._domainkey.nodkim.test: no DKIM record")
    publish = result.stdout.split(failed, 1)[1].splitlines()[1].strip()
    assert publish.startswith('publish: s1._domainkey.nodkim.test. TXT "v=DKIM1; k=rsa; p=')
    # the record derived from the private key, in strings of at most 255 bytes
    strings = publish.split(" TXT ", 1)[1].strip('"').split('" "')
    assert all(len(s) <= 255 for s in strings) and len(strings) == 2
    assert "".join(strings) == f"v=DKIM1; k=rsa; p={keys.public}"


def test_a_published_key_that_is_not_the_configured_one_fails(
    server: World, keys: Keys, tmp_path: Path
) -> None:
    result = doctor(server, keys, "badkey.test", tmp_path)
    assert result.returncode == 1
    assert "FAIL DKIM s1._domainkey.badkey.test: the published key is not the public half" in (
        result.stdout
    )
    assert keys.public[:200] in result.stdout  # the right key, to publish instead


def test_a_revoked_key_and_a_short_key_are_named(server: World, keys: Keys, tmp_path: Path) -> None:
    revoked = doctor(server, keys, "revoked.test", tmp_path)
    assert "FAIL DKIM s1._domainkey.revoked.test: the key is revoked (empty p=)" in (revoked.stdout)
    short = doctor(
        server, keys, "good.test", tmp_path, REENGAGE_DKIM_PRIVATE_KEY_FILE=str(keys.short_pem)
    )
    assert "warn DKIM s1._domainkey.good.test: the key has 1024 bits: 2048 is advised" in (
        short.stdout
    )
    assert "FAIL DKIM s1._domainkey.good.test: the published key is not" in short.stdout


def test_dmarc_p_none_is_a_warning_with_the_enforced_record(
    server: World, keys: Keys, tmp_path: Path
) -> None:
    result = doctor(server, keys, "none.test", tmp_path, REENGAGE_INBOUND_DOMAIN="")
    warned = lines(result, "warn DMARC _dmarc.none.test")
    assert any("p=none gives no protection" in w and "advise enforcement" in w for w in warned)
    assert 'publish: _dmarc.none.test. TXT "v=DMARC1; p=quarantine"' in result.stdout
    assert any("no rua=" in w for w in warned)
    assert lines(result, "FAIL") == [], result.stdout  # accepted, so not a failure


def test_a_subdomain_without_dmarc_follows_its_organisational_domain(
    server: World, keys: Keys, tmp_path: Path
) -> None:
    result = doctor(server, keys, "news.good.test", tmp_path, REENGAGE_DKIM_DOMAIN="good.test")
    assert (
        "ok   DMARC _dmarc.news.good.test: no record here: _dmarc.good.test's applies"
        in result.stdout
    )
    # DKIM d=good.test aligns with From @news.good.test under relaxed alignment
    assert "DKIM d=good.test aligns (relaxed, adkim)" in result.stdout


def test_mail_aligned_with_nothing_fails_dmarc(server: World, keys: Keys, tmp_path: Path) -> None:
    result = doctor(server, keys, "nodkim.test", tmp_path, REENGAGE_DKIM_DOMAIN="good.test")
    assert "every mail fails DMARC" in "\n".join(lines(result, "FAIL DMARC _dmarc.nodkim.test"))


def test_two_spf_records_fail_and_one_merged_record_is_offered(
    server: World, keys: Keys, tmp_path: Path
) -> None:
    result = doctor(server, keys, "two.test", tmp_path, REENGAGE_INBOUND_DOMAIN="")
    [failed] = lines(result, "FAIL SPF two.test")
    assert "2 SPF records" in failed and "permanent error" in failed
    assert 'publish: two.test. TXT "v=spf1 include:spf.good.test ip4:192.0.2.0/24 -all"' in (
        result.stdout
    )


def test_spf_plus_all_fails(server: World, keys: Keys, tmp_path: Path) -> None:
    result = doctor(server, keys, "plus.test", tmp_path, REENGAGE_INBOUND_DOMAIN="")
    [failed] = lines(result, "FAIL SPF plus.test")
    assert "ends in +all" in failed and "v=spf1 ip4:192.0.2.0/24 ~all" in failed


def test_too_many_spf_lookups_through_includes_fail(
    server: World, keys: Keys, tmp_path: Path
) -> None:
    result = doctor(server, keys, "many.test", tmp_path, REENGAGE_INBOUND_DOMAIN="")
    [failed] = lines(result, "FAIL SPF many.test")
    assert failed.startswith("FAIL SPF many.test: 11 DNS lookups (includes counted through)")


def test_an_inbound_domain_without_mx_fails(server: World, keys: Keys, tmp_path: Path) -> None:
    result = doctor(server, keys, "good.test", tmp_path, REENGAGE_INBOUND_DOMAIN="nomx.good.test")
    assert result.returncode == 1
    [failed] = lines(result, "FAIL MX nomx.good.test")
    assert "no MX record (nomx.good.test has no MX record)" in failed
    assert "publish: nomx.good.test. MX 10 mx.nomx.good.test." in result.stdout


def test_an_unknown_domain_and_an_http_unsubscribe_link_are_named(
    server: World, keys: Keys, tmp_path: Path
) -> None:
    result = doctor(
        server,
        keys,
        "gone.test",
        tmp_path,
        REENGAGE_INBOUND_DOMAIN="",
        REENGAGE_BASE_URL="http://127.0.0.1:8025",
    )
    assert "FAIL SPF gone.test: no SPF record" in result.stdout
    assert "gone.test does not exist (NXDOMAIN)" in result.stdout  # the DKIM name's parent
    assert "FAIL one-click unsubscribe: REENGAGE_BASE_URL is http://127.0.0.1:8025" in (
        result.stdout
    )


@pytest.mark.parametrize("kind", ["timeout", "servfail"])
def test_a_dns_server_that_fails_is_reported_per_record_without_a_traceback(
    kind: str, keys: Keys, tmp_path: Path
) -> None:
    with silent() if kind == "timeout" else servfail() as address:
        result = doctor(address, keys, "good.test", tmp_path, REENGAGE_DNS_TIMEOUT_SECONDS="0.3")
    assert result.returncode == 1
    assert result.stderr == ""
    said = "no answer within 0.3 s" if kind == "timeout" else "the server answered SERVFAIL"
    failed = lines(result, "FAIL")
    assert {f.split(":")[0] for f in failed} >= {
        "FAIL SPF bounces.good.test",
        "FAIL DKIM s1._domainkey.good.test",
        "FAIL DMARC _dmarc.good.test",
        "FAIL MX bounces.good.test",
    }
    assert all(f"could not be checked: asking {address} for" in f and said in f for f in failed)


def test_the_from_domains_come_from_the_campaigns_and_the_digest(
    server: World, keys: Keys, tmp_path: Path
) -> None:
    campaign = (Path(__file__).parents[2] / "campaigns" / "declining-check-in.yaml").read_text()
    (tmp_path / "campaigns").mkdir()
    (tmp_path / "campaigns" / "x.yaml").write_text(campaign.replace("acme.example", "good.test"))
    env = {
        "REENGAGE_DNS_SERVER": server.address,
        "REENGAGE_DATABASE_URL": server.database,
        "REENGAGE_DIGEST_FROM": "Calls <calls@none.test>",
        "REENGAGE_BASE_URL": "https://app.good.test",
    }
    result = inprocess.cli("doctor", "--sender", cwd=tmp_path, env=env)
    assert result.stdout.startswith(f"sender: From good.test, none.test, asking {server.address}\n")
    assert "FAIL DKIM: not configured" in result.stdout
    assert "warn inbound: REENGAGE_INBOUND_DOMAIN is not set" in result.stdout
    # with DKIM unset, good.test's mail aligns through SPF alone
    assert "only SPF aligns" in "\n".join(lines(result, "warn DMARC _dmarc.good.test"))
    assert result.returncode == 1


def test_no_from_domain_and_domain_without_sender_are_named(tmp_path: Path) -> None:
    env = {"REENGAGE_DIGEST_FROM": "calls", "REENGAGE_DNS_SERVER": "127.0.0.1:9"}
    result = inprocess.cli("doctor", "--sender", cwd=tmp_path, env=env)
    assert "FAIL From: no From domain to check" in result.stdout
    misuse = inprocess.cli("doctor", "--domain", "x.test", cwd=tmp_path)
    assert misuse.returncode == 2 and "--domain goes with --sender" in misuse.stderr


def test_the_complaint_rate_of_the_last_30_days_is_held_to_0_3_percent(
    server: World, keys: Keys, tmp_path: Path, store: Store, database_url: str
) -> None:
    # 13 mails accepted (9 on day 0, one more refused; 4 on day 7), one complaint on day 0
    fill(store)
    at = {"REENGAGE_DATABASE_URL": database_url}
    day8 = doctor(server, keys, "good.test", tmp_path, **at, REENGAGE_NOW=_iso(T0, 8))
    assert (
        "FAIL complaint rate: 1 complaint(s) over 13 mail(s) in the last 30 days: 7.69%, "
        "at or over Gmail's and Yahoo's limit of 0.3 %"
    ) in day8.stdout
    assert day8.returncode == 1
    day31 = doctor(server, keys, "good.test", tmp_path, **at, REENGAGE_NOW=_iso(T0, 31))
    assert "ok   complaint rate: 0 complaint(s) over 4 mail(s) in the last 30 days" in (
        day31.stdout
    )
    assert day31.returncode == 0, day31.stdout


def _iso(start: datetime, days: int) -> str:
    return (start + timedelta(days=days)).isoformat()


def test_an_spf_loop_two_dmarc_records_and_a_garbled_key_each_fail(
    server: World, keys: Keys, tmp_path: Path
) -> None:
    result = doctor(server, keys, "loop.test", tmp_path, REENGAGE_INBOUND_DOMAIN="")
    failed = "\n".join(lines(result, "FAIL"))
    assert "FAIL SPF loop.test: include:loop.test loops back to a record it came from" in failed
    assert "FAIL DMARC _dmarc.loop.test: _dmarc.loop.test has 2 DMARC records: receivers " in (
        failed
    )
    assert "FAIL DKIM s1._domainkey.loop.test: the published key is not the public half" in (failed)
    assert result.stderr == ""


def test_a_domain_that_is_no_domain_name_is_a_usage_error(
    server: World, keys: Keys, tmp_path: Path
) -> None:
    result = doctor(server, keys, "a..b.test", tmp_path, REENGAGE_INBOUND_DOMAIN="")
    assert result.returncode == 2 and result.stdout == ""
    assert "'a..b.test' is not a domain name" in result.stderr and "--domain" in result.stderr


def test_relay_coverage_follows_mx(server: World, keys: Keys, tmp_path: Path) -> None:
    covered = doctor(server, keys, "mxcov.test", tmp_path, REENGAGE_INBOUND_DOMAIN="")
    assert f"ok   SPF mxcov.test: covers the SMTP relay smtp.relay.test ({RELAY})" in (
        covered.stdout
    )
    elsewhere = doctor(server, keys, "far.test", tmp_path, REENGAGE_INBOUND_DOMAIN="")
    assert f"warn SPF far.test: the SMTP relay smtp.relay.test ({RELAY}) is not covered" in (
        elsewhere.stdout
    )
    assert covered.stderr == elsewhere.stderr == ""
