"""Amazon SNS messages checked before anything in them is believed.

A message is genuine when its signature (SignatureVersion 1: RSA over SHA1, 2: over
SHA256) verifies against the certificate at its ``SigningCertURL``, and that URL is an
https one on ``sns.<region>.amazonaws.com`` ending ``.pem``: the certificate of any
other address is never fetched. Certificates are cached by URL. A subscription is
confirmed by fetching its ``SubscribeURL`` only once the message verifies and only when
that URL, too, is https on an SNS host. Only the configured topics are accepted: anyone
with an AWS account can have SNS sign messages of their own topics.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from reengage.web.providers.common import Refused

TYPES = ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation")
# The fields each type signs, in this order, each as "Name\nvalue\n" (Subject only if sent).
_SIGNED = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
_SIGNED["UnsubscribeConfirmation"] = _SIGNED["SubscriptionConfirmation"]
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}
_SNS_HOST = re.compile(r"sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?")
MAX_CERT_BYTES = 64 * 1024
MAX_CACHED = 32


def sns_url(url: Any, *, pem: bool = False) -> bool:
    """Whether ``url`` is an https URL on an SNS host (ending ``.pem`` when ``pem``):
    no other port, no user, nothing SNS does not send."""
    if not isinstance(url, str) or len(url) > 2000:
        return False
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    return (
        parts.scheme == "https"
        and port is None
        and parts.username is None
        and _SNS_HOST.fullmatch(parts.hostname or "") is not None
        and (not pem or parts.path.endswith(".pem"))
    )


def fetch_https(url: str) -> bytes:
    """GET ``url`` over the internet (redirects not followed, at most 64 KB)."""
    import httpx

    try:
        with (
            httpx.Client(timeout=10, follow_redirects=False) as client,
            client.stream("GET", url) as answer,
        ):
            if answer.status_code != 200:
                raise OSError(f"{url} answered {answer.status_code}")
            body = b""
            for chunk in answer.iter_bytes():
                body += chunk
                if len(body) > MAX_CERT_BYTES:
                    raise OSError(f"{url} sent more than {MAX_CERT_BYTES} bytes")
            return body
    except httpx.HTTPError as exc:
        raise OSError(f"{url}: {exc}") from exc


_SES_KEYS = frozenset({"notificationType", "eventType"})  # what SES's own events carry


class Verifier:
    """Checks SNS messages for the configured topics; holds the certificate cache."""

    def __init__(self, topics: tuple[str, ...], fetch: Callable[[str], bytes]) -> None:
        self.topics, self.fetch = frozenset(topics), fetch
        self._keys: dict[str, rsa.RSAPublicKey] = {}
        self._lock = threading.Lock()

    def check(self, message: Any) -> Mapping[str, Any]:
        """The message when it is a genuine SNS message of an accepted topic; otherwise
        :class:`Refused` (400 malformed, 401 unsigned, 403 forged or another topic)."""
        if isinstance(message, dict) and "Type" not in message and _SES_KEYS & set(message):
            # Raw message delivery: SES's event without SNS's envelope, and so unsigned.
            raise Refused(
                401,
                "an SES event without its SNS envelope is unsigned: turn off raw message "
                "delivery on the SNS subscription",
            )
        if not isinstance(message, dict) or message.get("Type") not in TYPES:
            raise Refused(400, f"not an SNS message: Type must be one of {', '.join(TYPES)}")
        signed = _SIGNED[message["Type"]]
        for name in signed:
            if name != "Subject" and not isinstance(message.get(name), str):
                raise Refused(400, f"SNS message without {name}")
        if message.get("TopicArn") not in self.topics:
            raise Refused(403, "this SNS topic is not in REENGAGE_SES_TOPIC_ARNS")
        if not isinstance(message.get("Signature"), str) or not message["Signature"]:
            raise Refused(401, "SNS message unsigned: Signature is required")
        algorithm = _HASHES.get(str(message.get("SignatureVersion")))
        if algorithm is None:
            raise Refused(403, "SignatureVersion must be 1 (SHA1) or 2 (SHA256)")
        url = message.get("SigningCertURL")
        if not sns_url(url, pem=True):
            raise Refused(
                403, "SigningCertURL is not an https .pem URL on sns.<region>.amazonaws.com"
            )
        try:
            signature = base64.b64decode(message["Signature"], validate=True)
        except (binascii.Error, ValueError):
            raise Refused(403, "the SNS signature is not base64") from None
        key = self._key(str(url))
        try:
            key.verify(signature, string_to_sign(message), padding.PKCS1v15(), algorithm())
        except InvalidSignature:
            raise Refused(403, "the SNS signature does not verify") from None
        return message

    def _key(self, url: str) -> rsa.RSAPublicKey:
        with self._lock:
            key = self._keys.get(url)
        if key is not None:
            return key
        try:
            pem = self.fetch(url)
        except OSError as exc:  # SNS retries what is answered 5xx
            raise Refused(503, f"the signing certificate could not be fetched: {exc}") from None
        try:
            found = x509.load_pem_x509_certificate(pem).public_key()
        except ValueError as exc:
            raise Refused(403, f"the signing certificate could not be read: {exc}") from None
        if not isinstance(found, rsa.RSAPublicKey):
            raise Refused(403, "the signing certificate holds no RSA key")
        with self._lock:
            if len(self._keys) >= MAX_CACHED:
                self._keys.pop(next(iter(self._keys)))
            self._keys[url] = found
        return found


def string_to_sign(message: Mapping[str, Any]) -> bytes:
    """What SNS signed: each signed field present, as its name and value on two lines."""
    lines = []
    for name in _SIGNED[message["Type"]]:
        if name in message and isinstance(message[name], str):
            lines.append(f"{name}\n{message[name]}\n")
    return "".join(lines).encode("utf-8")
