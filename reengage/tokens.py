"""Sealed tokens for links in mail (unsubscribe, tracking, rep outcome forms) and sessions.

A token is one base64url string: a version byte, a random nonce and the payload (a small
JSON object) encrypted and authenticated with AES-GCM-SIV under a key derived from the
secret key for its purpose (HKDF-SHA256). It reveals nothing it carries (no customer id,
no rep, no date, no destination), and one that was tampered with, cut short, or made for
another purpose is refused. A token stamped with the hour it was issued (``"t"``, see
:func:`stamp`) can also be refused once it is too old.

Keys rotate: :func:`verify` takes the previous secret keys too, so links in mail already
sent keep working. Tokens of the first format (``payload.signature``, an HMAC-SHA256 over
readable base64 JSON) are still accepted under the same keys and ages, because mail in
inboxes carries them; none is issued any more.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from reengage.errors import ReengageError

VERSION = b"\x02"
NONCE_BYTES = 12
# Longer than any token this module makes (a click token carries its destination, and a
# track()ed address may be long); anything longer is refused before any work is done.
MAX_TOKEN_CHARS = 8192
_SEALED = re.compile(r"[A-Za-z0-9_-]+")
_LEGACY = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_NOT_VALID = "this link is not valid: it may have been cut short or changed"
# A word SpamAssassin takes for a Bitcoin address (__BITCOIN_ID in its 72_active.cf).
_LIKE_BITCOIN = re.compile(
    r"(?<![A-Za-z0-9_])(?:[13][a-km-zA-HJ-NP-Z1-9]{29,34}|bc1[ac-hj-np-z02-9]{30,90})"
    r"(?![A-Za-z0-9_])"
)


class BadToken(ReengageError):  # reads better at the call site than BadTokenError
    """A token was malformed, tampered with, or made for another purpose."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@lru_cache(maxsize=64)
def _cipher(secret: str, purpose: str) -> AESGCMSIV:
    """The AEAD for one purpose: a key of its own, so a token never passes for another."""
    key = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"reengage tokens v2",
        info=purpose.encode(),
    ).derive(secret.encode())
    return AESGCMSIV(key)


def sign(secret: str, purpose: str, payload: dict[str, Any]) -> str:
    """A URL-safe opaque token carrying ``payload``, valid only for ``purpose``.

    A token that a spam filter would read as a Bitcoin address is drawn again (about one
    in 3,000): the links in a mail are its words to SpamAssassin, whose ``PDS_BTC_ID``
    (+1.0) counts a word of 30 to 35 base58 letters starting with 1 or 3, and a token's
    last ``-``-separated piece is sometimes one."""
    plain = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    while True:
        nonce = os.urandom(NONCE_BYTES)
        token = _b64(VERSION + nonce + _cipher(secret, purpose).encrypt(nonce, plain, VERSION))
        if not _LIKE_BITCOIN.search(token):
            return token


def stamp(issued: datetime) -> int:
    """The issue time a token carries: whole hours since the epoch (short, and enough)."""
    return int(issued.timestamp()) // 3600


def verify(
    secret: str,
    purpose: str,
    token: str,
    *,
    previous: Sequence[str] = (),
    now: datetime | None = None,
    max_age: timedelta | None = None,
) -> dict[str, Any]:
    """The payload of a genuine token made with ``secret`` or one of the ``previous`` keys;
    raises :class:`BadToken` for anything else (any string at all: never another error).

    With ``max_age`` (and ``now``), a token must carry its issue time and be younger.
    """
    keys = (secret, *previous)
    if len(token) > MAX_TOKEN_CHARS:
        raise BadToken(_NOT_VALID)
    if _SEALED.fullmatch(token):
        plain = _open(keys, purpose, token)
    elif _LEGACY.fullmatch(token):
        plain = _legacy(keys, purpose, token)
    else:
        raise BadToken(_NOT_VALID)
    try:
        payload = json.loads(plain)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadToken("this link is not valid") from exc
    if not isinstance(payload, dict):
        raise BadToken("this link is not valid")
    if max_age is not None and now is not None:
        issued = payload.get("t")
        if not isinstance(issued, int) or now.timestamp() - issued * 3600 > (
            max_age.total_seconds() + 3600
        ):
            raise BadToken("this link has expired")
    return payload


def _open(keys: Sequence[str], purpose: str, token: str) -> bytes:
    try:
        raw = _unb64(token)
    except (ValueError, binascii.Error) as exc:
        raise BadToken(_NOT_VALID) from exc
    if len(raw) < 1 + NONCE_BYTES + 16 or raw[:1] != VERSION:
        raise BadToken(_NOT_VALID)
    nonce, sealed = raw[1 : 1 + NONCE_BYTES], raw[1 + NONCE_BYTES :]
    for key in keys:
        try:
            return _cipher(key, purpose).decrypt(nonce, sealed, VERSION)
        except InvalidTag:
            continue
    raise BadToken(_NOT_VALID)


def _legacy(keys: Sequence[str], purpose: str, token: str) -> bytes:
    """The payload of a first-format token (readable, HMAC-signed), still in old mail."""
    body, _, mac = token.partition(".")
    given = mac.encode()  # ASCII, checked by the caller's pattern
    if not any(hmac.compare_digest(given, _mac(key, purpose, body)) for key in keys):
        raise BadToken(_NOT_VALID)
    try:
        return _unb64(body)
    except (ValueError, binascii.Error) as exc:
        raise BadToken("this link is not valid") from exc


def _mac(secret: str, purpose: str, body: str) -> bytes:
    digest = hmac.new(secret.encode(), f"{purpose}\x1f{body}".encode(), hashlib.sha256)
    return _b64(digest.digest()[:20]).encode()
