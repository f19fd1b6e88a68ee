"""The sender checks' pure parts: SPF terms, tag lists, TXT strings, the DNS server setting."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from reengage.config import dns_address, load_settings
from reengage.dnscheck.dkimkey import public_key_record, tags
from reengage.dnscheck.findings import txt_line
from reengage.dnscheck.spf import Term, spf_records, terms
from reengage.dnscheck.spfmerge import merged
from reengage.dnscheck.spfsyntax import corrected, syntax_errors
from reengage.errors import ConfigError


def test_spf_terms_are_read_with_their_qualifiers_domains_and_prefixes() -> None:
    parsed = terms(
        "v=spf1 -ip4:192.0.2.0/24 a a:mail.x.test/28//64 mx//64 ~include:x.test "
        "redirect=_spf.x.test ?all"
    )
    assert parsed == [
        Term("-", "ip4", "", network="192.0.2.0/24"),
        Term("+", "a", ""),
        Term("+", "a", "mail.x.test", 28, 64),
        Term("+", "mx", "", None, 64),
        Term("~", "include", "x.test"),
        Term("+", "redirect", "_spf.x.test", modifier=True),
        Term("?", "all", ""),
    ]


def test_only_v_spf1_records_count_as_spf() -> None:
    values = (
        "v=spf1 -all",
        "V=SPF1 mx ~all",
        "v=spf10 -all",
        "google-site-verification=x",
        "v=spf1",
    )
    assert spf_records(values) == ["v=spf1 -all", "V=SPF1 mx ~all", "v=spf1"]


def test_merging_two_records_keeps_every_mechanism_once_and_the_strongest_all() -> None:
    merge = merged(
        ["v=spf1 ip4:192.0.2.1 include:firewall.test +all", "v=spf1 include:firewall.test -ALL"]
    )
    assert merge.record == "v=spf1 include:firewall.test ip4:192.0.2.1 -all"
    assert merge.changes == ["+all replaced by -all"]
    both = merged(["v=spf1 include:_spf.x.test -all", "v=spf1 ip4:192.0.2.9 -all"])
    assert both.record == "v=spf1 include:_spf.x.test ip4:192.0.2.9 -all"


def test_a_merged_record_leaves_out_or_mends_terms_receivers_cannot_parse_and_says_so() -> None:
    merge = merged(["v=spf1 include:_spf.x.test -all", "v=spf1 ip4:999.1.1.1 inclde:y.test ~all"])
    assert merge.record == "v=spf1 include:_spf.x.test include:y.test -all"
    assert merge.changes == [
        "ip4:999.1.1.1 left out ('999.1.1.1' is not an IPv4 address): add the term you meant",
        "inclde:y.test corrected to include:y.test ('inclde' is no SPF mechanism (meant include?))",
    ]
    assert merged(["v=spf1 a ?all", "v=spf1 mx +all"]).record == "v=spf1 a mx ~all"


_WORDS = [
    "-all",
    "~all",
    "+all",
    "?all",
    "all",
    "ip4:192.0.2.1",
    "ip4:999.1.1.1",
    "inclde:x.test",
    "a:b..c",
    "exp",
    "exp=e.test",
    "ip4:1.2.3.4/40",
    "mx",
    "é",
    "redirect=r.test",
]


@given(st.lists(st.lists(st.sampled_from(_WORDS), max_size=6), min_size=2, max_size=3))
def test_a_merged_record_always_parses_and_keeps_the_strongest_all(words: list[list[str]]) -> None:
    records = [" ".join(["v=spf1", *w]) for w in words]
    merge = merged(records)
    assert syntax_errors(merge.record) == [], merge
    ending = merge.record.split()[-1]
    assert ending == ("-all" if any("-all" in w for w in words) else "~all")
    assert sum(w.endswith("all") for w in merge.record.split()) == 1


def test_tags_are_read_whatever_the_spacing_and_case() -> None:
    record = "v=DKIM1;  K=rsa ; p=MIIB IjAN\tBgkq ; t=y:s;"
    assert tags(record) == {"v": "DKIM1", "k": "rsa", "p": "MIIBIjANBgkq", "t": "y:s"}
    assert tags("v=DMARC1; p=none; p=reject")["p"] == "none"  # the first counts


@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=900))
def test_a_txt_line_splits_any_value_into_strings_that_join_back(value: str) -> None:
    line = txt_line("s._domainkey.x.test", value)
    assert line.startswith('s._domainkey.x.test. TXT "')
    quoted = line.split(" TXT ", 1)[1]
    strings, rest, i = [], quoted, 0
    while rest:
        assert rest[0] == '"'
        i, text = 1, []
        while rest[i] != '"':
            if rest[i] == "\\":
                i += 1
            text.append(rest[i])
            i += 1
        strings.append("".join(text))
        rest = rest[i + 1 :].lstrip(" ")
    assert all(len(s) <= 255 for s in strings)
    assert "".join(strings) == value


def test_a_private_key_that_is_not_rsa_or_not_a_key_is_named() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(ValueError, match="Ed25519PrivateKey key: reengage signs with RSA"):
        public_key_record(pem)
    with pytest.raises(ValueError, match="is not a readable, unencrypted PEM private key"):
        public_key_record(b"-----BEGIN PRIVATE KEY-----\nnonsense\n-----END PRIVATE KEY-----\n")


@pytest.mark.parametrize(
    ("value", "address"),
    [
        ("127.0.0.1", ("127.0.0.1", 53)),
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("[::1]:5353", ("::1", 5353)),
        ("::1", ("::1", 53)),
        (" 10.0.0.2:53 ", ("10.0.0.2", 53)),
    ],
)
def test_the_dns_server_setting_takes_an_address_and_port(
    value: str, address: tuple[str, int]
) -> None:
    assert dns_address(value) == address


@pytest.mark.parametrize(
    "value",
    [
        "dns.example",
        "127.0.0.1:0",
        "127.0.0.1:x",
        "[::1]x",
        "127.0.0.1:70000",
        "1.2.3:53",
        "127.0.0.1:\u00b2",
    ],
)
def test_a_dns_server_setting_that_is_no_address_stops_start_up_naming_it(value: str) -> None:
    with pytest.raises(ConfigError, match=r"REENGAGE_DNS_SERVER: .*(IP address|port)"):
        load_settings(None, dns_server=value)


@given(st.text(max_size=300))
@example("a/\u00b2 mx:x//\u0663 ip4:999.1.1.1/99 include: =x a:/")
def test_any_txt_value_parses_without_raising(value: str) -> None:
    # Anything a DNS zone holds is read as terms and tags, or left out, never an error.
    terms("v=spf1 " + value)
    tags(value)
    spf_records((value,))


@pytest.mark.parametrize(
    "record",
    [
        "v=spf1 ip4:192.0.2.1 caf\u00e9 -all",  # not ASCII
        "v=spf1 ip4:192.0.2.1 a:x\ufffdy.test -all",  # bytes that were not UTF-8, replaced
        "v=spf1 redirect=a.test redirect=b.test",
        "v=spf1 ip6:192.0.2.1 -all",
        "v=spf1 include -all",
        "v=spf1 -all:x",
        "v=spf1 exists:%{q}.x.test -all",
    ],
)
def test_spf_records_receivers_cannot_parse_are_named(record: str) -> None:
    assert syntax_errors(record), record


def test_a_record_that_parses_has_no_syntax_errors() -> None:
    record = (
        "v=spf1 +a -mx:mail.x.test/24//64 ~ip4:192.0.2.0/24 ?ip6:2001:db8::/32 ptr "
        "include:_spf.x.test exists:%{i}._spf.x.test a:%{D} ip6:::1 ip4:192.0.2.1/0 "
        "redirect=x.test exp=why.%{d} "
        "foo=bar -all"
    )
    assert syntax_errors(record) == []


@given(
    st.lists(
        st.sampled_from(
            [
                "-all",
                "ip4:192.0.2.1",
                "inclde:x.test",
                "a:b..c",
                "exp",
                "ip4:1.2.3.4/40",
                "~all",
                "mx",
                "é",
                "redirect=r.test",
            ]
        ),
        max_size=8,
    )
)
def test_a_corrected_spf_record_always_parses(words: list[str]) -> None:
    record = " ".join(["v=spf1", *words])
    fixed = corrected(record)
    assert fixed is None or syntax_errors(fixed) == []
    assert fixed is None or not any(w in fixed.split() for w in ("+all", "?all", "all"))
    if not syntax_errors(record):
        assert fixed is not None


@given(st.text(max_size=80))
@example("acme.example")
@example("Hello <hello@acme.example>")
@example("bücher.example")
def test_a_domain_option_is_a_domain_name_or_a_usage_error(value: str) -> None:
    import typer

    from reengage.cli.doctor_sender import _domain_option

    try:
        domain = _domain_option(value)
    except typer.BadParameter as exc:
        refused = exc
    else:
        refused = None
    if refused is not None:
        assert refused.param_hint == "--domain" and repr(value) in str(refused)
        return
    name = domain.encode("idna").decode("ascii")
    assert name and "." in name and all(c.isalnum() or c in ".-" for c in name), domain
    assert not any(label.startswith("-") or label.endswith("-") for label in name.split("."))
