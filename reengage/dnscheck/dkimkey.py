"""DKIM (RFC 6376): the public half of the signing key, published at
``<selector>._domainkey.<domain>``, must be the one the configured private key makes.

Checked: the record exists (one), is not revoked (an empty ``p=``), holds the same public
key as the private key file, the key is RSA (what reengage signs with) of at least 1024
bits (2048 advised; under 1024 no record is offered, only how to make a new key), its
other tags (RFC 6376 §3.6.1: ``v=DKIM1`` first, ``h=`` allowing sha256, ``s=`` allowing
email) let receivers use it, and the record is not in test mode (``t=y``). The record to
publish is always derived from the private key itself.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from reengage.dnscheck.findings import Finding, fail, ok, txt_line, warn
from reengage.dnscheck.lookup import Dns, LookupFailed

MIN_BITS, ADVISED_BITS = 1024, 2048


def tags(record: str) -> dict[str, str]:
    """A ``tag=value; tag=value`` record (DKIM, DMARC) as a dict; names lower-cased, values
    stripped of the folding whitespace a long record may carry."""
    out: dict[str, str] = {}
    for part in record.split(";"):
        name, eq, value = part.partition("=")
        if eq and name.strip():
            out.setdefault(name.strip().lower(), "".join(value.split()))
    return out


def public_key_record(private_pem: bytes) -> tuple[str, int]:
    """``("v=DKIM1; k=rsa; p=…", bits)`` for the private key in ``private_pem``.

    Raises ValueError naming the problem when it is not a readable, unencrypted RSA key.
    """
    try:
        key = serialization.load_pem_private_key(private_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"is not a readable, unencrypted PEM private key ({exc})") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"holds a {type(key).__name__} key: reengage signs with RSA (rsa-sha256)")
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}", key.key_size


def _published_numbers(p: str) -> rsa.RSAPublicNumbers | None:
    """The RSA key a ``p=`` value holds (SubjectPublicKeyInfo or bare RSAPublicKey)."""
    try:
        der = base64.b64decode(p, validate=True)
    except (binascii.Error, ValueError):
        return None
    for load in (
        serialization.load_der_public_key,
        lambda data: serialization.load_pem_public_key(
            b"-----BEGIN RSA PUBLIC KEY-----\n"
            + base64.encodebytes(data)
            + b"-----END RSA PUBLIC KEY-----\n"
        ),
    ):
        try:
            key = load(der)
        except (ValueError, TypeError):
            continue
        return key.public_numbers() if isinstance(key, rsa.RSAPublicKey) else None
    return None


def _unusable(value: str, record: dict[str, str]) -> str | None:
    """Why a key record's other tags (RFC 6376 §3.6.1) make it unusable for reengage's
    rsa-sha256 mail signatures, or None."""
    version = record.get("v")
    if version is not None and (version != "DKIM1" or not value.lstrip().startswith("v=")):
        return (
            f"v={version} must be exactly v=DKIM1 and the first tag"
            if version != "DKIM1"
            else "v=DKIM1 must be the first tag"
        )
    hashes = [h.lower() for h in record.get("h", "sha256").split(":")]
    if "sha256" not in hashes:
        return f"h={record['h']} does not allow sha256, the hash reengage signs with (rsa-sha256)"
    services = [s.lower() for s in record.get("s", "*").split(":")]
    if "email" not in services and "*" not in services:
        return f"s={record['s']} does not allow email (s=email or s=*, or leave s= out)"
    return None


def check_dkim(dns: Dns, selector: str, domain: str, private_pem: bytes) -> list[Finding]:
    """The findings about the DKIM record of the configured selector and key."""
    name = f"{selector}._domainkey.{domain}"
    what = f"DKIM {name}"
    try:
        wanted, bits = public_key_record(private_pem)
    except ValueError as exc:
        return [
            fail(
                what,
                f"REENGAGE_DKIM_PRIVATE_KEY_FILE {exc}: make a new key with "
                "`openssl genrsa -out dkim.pem 2048` and publish its public half",
            )
        ]
    publish = txt_line(name, wanted)
    found: list[Finding] = []
    if bits < MIN_BITS:  # no record of this key is worth publishing
        return [
            fail(
                what,
                f"REENGAGE_DKIM_PRIVATE_KEY_FILE holds a {bits}-bit key: receivers ignore keys "
                f"under {MIN_BITS} bits and every signature fails. Make a {ADVISED_BITS}-bit "
                f"key (`openssl genrsa -out dkim.pem {ADVISED_BITS}`), point the setting at "
                "it, best with a new REENGAGE_DKIM_SELECTOR, and run this again for the "
                "record to publish",
            )
        ]
    if bits < ADVISED_BITS:
        found.append(warn(what, f"the key has {bits} bits: {ADVISED_BITS} is advised"))
    try:
        records = dns.txt(name)
    except LookupFailed as exc:
        return [*found, fail(what, f"could not be checked: {exc}")]
    values = [v for v in records.values if "p=" in v or v.lower().startswith("v=dkim1")]
    if not values:
        why = records.absent or f"{name} holds no DKIM record"
        return [
            *found,
            fail(
                what,
                f"no DKIM record: {why}; every mail's signature fails "
                "until its public key is published",
                publish,
            ),
        ]
    if len(values) > 1:
        return [
            *found,
            fail(
                what,
                f"{len(values)} DKIM records at one selector: receivers "
                "may pick either; keep only this one",
                publish,
            ),
        ]
    record = tags(values[0])
    p = record.get("p")
    if p is None:
        return [*found, fail(what, "the record has no p= (public key)", publish)]
    if p == "":
        return [
            *found,
            fail(
                what,
                "the key is revoked (empty p=): signatures with this "
                "selector fail; publish the key or choose a new selector",
                publish,
            ),
        ]
    if record.get("k", "rsa").lower() != "rsa":
        return [*found, fail(what, f"k={record['k']}: reengage signs with RSA", publish)]
    if unusable := _unusable(values[0], record):
        return [*found, fail(what, f"{unusable}: receivers reject every signature", publish)]
    mine = serialization.load_pem_private_key(private_pem, password=None).public_key()
    assert isinstance(mine, rsa.RSAPublicKey)  # public_key_record checked it
    if _published_numbers(p) != mine.public_numbers():
        return [
            *found,
            fail(
                what,
                "the published key is not the public half of "
                "REENGAGE_DKIM_PRIVATE_KEY_FILE: every signature fails; publish "
                "this one (or point the setting at the key that was published)",
                publish,
            ),
        ]
    if "y" in record.get("t", "").lower().split(":"):
        found.append(
            warn(
                what,
                "t=y: the domain says it is testing DKIM and receivers may "
                "ignore failures; remove t=y",
            )
        )
    found.insert(0, ok(what, f"publishes the public half of the configured key ({bits}-bit RSA)"))
    return found
