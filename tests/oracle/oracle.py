#!/usr/bin/env python3
"""The providers' own libraries as the oracle for sluice's signature checks.

For each provider with an official library (or the library its docs use),
this signs requests the way the library does, makes mutated copies
(tampered body, wrong secret, stale and future timestamps, missing and
malformed signatures, another body's signature, rotated secrets) and asks
the LIBRARY whether it accepts each one. It prints one JSON document;
shared/tests/oracle.rs builds sluice's Verifier for every case and checks
that sluice's verdict is the library's.

Run with .venv-oracle/bin/python (`make oracle` installs the pinned
libraries of tests/requirements-oracle.txt). No network, no randomness:
keys and secrets are fixed, ECDSA signs deterministically (RFC 6979), and
every library's clock is frozen at the case's `now`.

Adding a provider is one function decorated with @provider("name"), where
the name is sluice's config name for the preset; it calls `o.case(...)`
once per request. A case's verdict is whatever the library answers:
nothing here decides it.
"""

import base64
import contextlib
import hashlib
import importlib.metadata
import json
import os
import sys
import time
from datetime import datetime, timezone
from unittest import mock
from urllib.parse import parse_qsl, urlencode

# Paddle's Verifier turns its time check off when TEST_MODE is set.
os.environ.pop("TEST_MODE", None)

import githubkit.webhooks  # noqa: E402
import jwt  # noqa: E402
import jwt.api_jwt  # noqa: E402
import nacl.exceptions  # noqa: E402
import nacl.signing  # noqa: E402
import standardwebhooks.webhooks  # noqa: E402
import stripe  # noqa: E402
import svix.webhooks  # noqa: E402
from cryptography.exceptions import InvalidSignature  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.utils import (  # noqa: E402
    decode_dss_signature,
    encode_dss_signature,
)
from paddle_billing.Notifications import PaddleSignature, Secret, Verifier  # noqa: E402
from sendgrid.helpers.eventwebhook import EventWebhook  # noqa: E402
from slack_sdk.signature import SignatureVerifier  # noqa: E402
from standardwebhooks import Webhook, WebhookVerificationError  # noqa: E402
from twilio.request_validator import RequestValidator  # noqa: E402

# The module, not the class that paddle_billing.Notifications re-exports
# under the same name: it holds the `time` that Verifier calls.
paddle_verifier_module = sys.modules["paddle_billing.Notifications.Verifier"]

# The moment every case is verified at, unless it says otherwise.
T = 1_700_000_000
# Signed timestamp minus `now`, in seconds: both sides of a 5 s window
# (Paddle) and of a 5 min window (the others), and far out.
OFFSETS = (-3600, -301, -300, -6, -5, 0, 5, 6, 300, 301, 3600)

# Ed25519's group order: S + L is the same signature, non-canonically encoded.
ED25519_L = 2**252 + 27742317777372353535851937790883648493
# P-256's group order: (r, n - s) is the other valid (high-S) form.
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

LIBRARIES = (
    "standardwebhooks",
    "svix",
    "stripe",
    "slack-sdk",
    "sendgrid",
    "pynacl",
    "paddle-python-sdk",
    "twilio",
    "githubkit",
    "PyJWT",
    "cryptography",
)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def offset_name(off: int) -> str:
    if off == 0:
        return "now"
    return f"{abs(off)}s-{'old' if off < 0 else 'ahead'}"


@contextlib.contextmanager
def frozen_clock(now: int):
    """Every library's idea of the time is `now`: time.time() (Stripe),
    Paddle's `from time import time`, and standardwebhooks' datetime.now().
    Slack's verifier takes a clock, which its wrapper passes."""

    class FrozenDatetime(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.fromtimestamp(now, tz=tz or timezone.utc)

    with (
        mock.patch.object(time, "time", lambda: float(now)),
        mock.patch.object(paddle_verifier_module, "time", lambda: float(now)),
        mock.patch.object(standardwebhooks.webhooks, "datetime", FrozenDatetime),
        mock.patch.object(jwt.api_jwt, "datetime", FrozenDatetime),
    ):
        yield


def hget(headers, name):
    """A request header, looked up case-insensitively, as frameworks do."""
    for k, v in headers:
        if k.lower() == name.lower():
            return v
    return None


class Oracle:
    def __init__(self):
        self.cases = []
        self.provider = None

    def case(
        self,
        name,
        description,
        *,
        secrets,
        headers,
        body,
        now,
        check,
        rejects,
        note=None,
        extra=None,
    ):
        """Record one request and the library's verdict on it.

        `check()` calls the library and returns its answer; False, or one
        of the exception types in `rejects`, is a rejection, anything else
        acceptance. Any other exception is a bug in this file and ends it.
        """
        with frozen_clock(now):
            try:
                answer = check()
                said = None if answer is not False else "returned False"
            except rejects as e:
                answer, said = False, f"{type(e).__name__}: {e}"
        case = {
            "id": f"{self.provider}/{name}",
            "provider": self.provider,
            "description": description,
            "secrets": list(secrets),
            "headers": [[k, v] for k, v in headers],
            "body_b64": b64(body),
            "now": now,
            "verdict": "reject" if answer is False else "accept",
        }
        if said:
            case["library_said"] = said[:200]
        if note:
            case["note"] = note
        if extra:
            case.update(extra)
        self.cases.append(case)


PROVIDERS = {}


def provider(name):
    def register(fn):
        PROVIDERS[name] = fn
        return fn

    return register


# --- Standard Webhooks -------------------------------------------------------

SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the library's test vector
SW_OTHER = "whsec_" + b64(bytes(range(24)))
SW_ED_KEY = nacl.signing.SigningKey(bytes([5] * 32))
SW_ED_OTHER = nacl.signing.SigningKey(bytes([6] * 32))


def whpk(key: nacl.signing.SigningKey) -> str:
    return "whpk_" + b64(bytes(key.verify_key))


def sw_v1a_verify(public: str, body: bytes, headers) -> bool:
    """standardwebhooks 1.3.0 has no v1a: this is its verify() with Ed25519
    in place of HMAC: the same header rules and the library's own
    timestamp check (its private __verify_timestamp), then PyNaCl's
    VerifyKey on `{id}.{ts}.{body}`, as the spec defines v1a."""
    h = {k.lower(): v for k, v in headers}
    msg_id, ts, sig = h.get("webhook-id"), h.get("webhook-timestamp"), h.get("webhook-signature")
    if not (msg_id and ts and sig):
        raise WebhookVerificationError("Missing required headers")
    window = Webhook(SW_SECRET)
    stamp = window._Webhook__verify_timestamp(ts)  # raises when out of the window
    key = nacl.signing.VerifyKey(base64.b64decode(public.removeprefix("whpk_")))
    signed = f"{msg_id}.{int(stamp.timestamp())}.".encode() + body
    for item in sig.split(" "):
        version, _, value = item.partition(",")
        if version != "v1a":
            continue
        try:
            key.verify(signed, base64.b64decode(value, validate=True))
            return True
        except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError):
            continue
    raise WebhookVerificationError("No matching signature found")


def sw_verify(secrets, body, headers):
    """Any configured secret: the library with each whsec_ secret, the v1a
    check above with each whpk_ key."""
    for s in secrets:
        try:
            if s.startswith("whpk_"):
                sw_v1a_verify(s, body, headers)
            else:
                Webhook(s).verify(body, dict(headers), json_parse=False)
            return True
        except WebhookVerificationError as e:
            last = e
    raise last


@provider("standard-webhooks")
def standard_webhooks(o: Oracle):
    body = b'{"type":"invoice.paid","data":{"id":"in_1","amount":2500}}'
    other_body = b'{"type":"invoice.paid","data":{"id":"in_1","amount":9900}}'
    msg_id = "msg_p5jXN8AQM9LWM0D4loKWxJek"

    def v1(secret, ts, data=body, mid=msg_id):
        return Webhook(secret).sign(mid, datetime.fromtimestamp(ts, tz=timezone.utc), data)

    def v1a(key, ts, data=body, mid=msg_id):
        return "v1a," + b64(key.sign(f"{mid}.{ts}.".encode() + data).signature)

    def hdrs(sig, ts=T, mid=msg_id, names=("webhook-id", "webhook-timestamp", "webhook-signature")):
        out = [(names[0], mid), (names[1], str(ts)), (names[2], sig)]
        return [(k, v) for k, v in out if v is not None]

    def case(name, desc, sig, *, secrets=(SW_SECRET,), data=body, ts=T, now=T, headers=None, note=None):
        h = headers if headers is not None else hdrs(sig, ts)
        o.case(
            name,
            desc,
            secrets=secrets,
            headers=h,
            body=data,
            now=now,
            check=lambda: sw_verify(secrets, data, h),
            rejects=(WebhookVerificationError,),
            note=note,
        )

    good = v1(SW_SECRET, T)
    case("valid", "signed by the library", good)
    case("tampered-body", "one byte of the body changed", good, data=body.replace(b"25", b"26"))
    case("wrong-secret", "verified with another secret", good, secrets=(SW_OTHER,))
    case("other-body", "the signature of another body", v1(SW_SECRET, T, other_body))
    case("other-id", "signed for another webhook-id", v1(SW_SECRET, T, mid="msg_other"))
    case("other-timestamp", "webhook-timestamp changed after signing", good, ts=T + 1, now=T)
    case("missing-signature", "no webhook-signature", None)
    case("missing-id", "no webhook-id", good, headers=hdrs(good, mid=None))
    case("missing-timestamp", "no webhook-timestamp", good, headers=[("webhook-id", msg_id), ("webhook-signature", good)])
    for label, bad in [
        ("bare-base64", good.removeprefix("v1,")),
        ("empty", "v1,"),
        ("not-base64", "v1,!!!!"),
        ("short", "v1,AAAA"),
        ("v2", "v2," + good.removeprefix("v1,")),
    ]:
        case(f"malformed-{label}", f"signature header {bad!r}", bad)
    case("malformed-timestamp", "webhook-timestamp is not a number", good, ts="16142653e0x")
    for off in OFFSETS:
        case(
            f"timestamp-{offset_name(off)}",
            f"signed at now{off:+d}s",
            v1(SW_SECRET, T + off),
            ts=T + off,
        )
    case("rotation-config", "two secrets configured, the second signed", good, secrets=(SW_OTHER, SW_SECRET))
    case("rotation-none", "two secrets configured, neither signed", good, secrets=(SW_OTHER, "whsec_" + b64(b"x" * 24)))
    case("rotation-header", "two signatures sent, the second valid", f"{v1(SW_OTHER, T)} {good}")
    case("rotation-header-none", "two signatures sent, neither valid", f"{v1(SW_OTHER, T)} {v1(SW_OTHER, T, other_body)}")
    case(
        "unpadded-signature",
        "the valid signature without its base64 padding",
        good.rstrip("="),
        note="the library compares the header text; sluice decodes the base64",
    )
    case(
        "svix-header-names",
        "svix-id, svix-timestamp, svix-signature instead of webhook-*",
        good,
        headers=hdrs(good, names=("svix-id", "svix-timestamp", "svix-signature")),
        note="standardwebhooks reads only the webhook-* names (the svix provider below reads both)",
    )
    # v1a: Ed25519 under whpk_ keys (PyNaCl; see sw_v1a_verify).
    pk = whpk(SW_ED_KEY)
    sig = v1a(SW_ED_KEY, T)
    v1a_note = "standardwebhooks 1.3.0 has no v1a: its header rules and window, PyNaCl for Ed25519"
    case("v1a-valid", "v1a signed with the key", sig, secrets=(pk,), note=v1a_note)
    case("v1a-tampered-body", "v1a, body changed", sig, secrets=(pk,), data=other_body, note=v1a_note)
    case("v1a-other-key", "v1a by another key", v1a(SW_ED_OTHER, T), secrets=(pk,), note=v1a_note)
    case("v1a-stale", "v1a signed 301 s ago", v1a(SW_ED_KEY, T - 301), ts=T - 301, secrets=(pk,), note=v1a_note)
    case("v1a-future", "v1a signed 301 s ahead", v1a(SW_ED_KEY, T + 301), ts=T + 301, secrets=(pk,), note=v1a_note)
    case("v1a-mixed-keys-v1a", "whsec_ and whpk_ configured, v1a sent", sig, secrets=(SW_SECRET, pk), note=v1a_note)
    case("v1a-mixed-keys-v1", "whsec_ and whpk_ configured, v1 sent", good, secrets=(SW_SECRET, pk), note=v1a_note)
    case("v1a-v1-to-public-key", "only whpk_ configured, v1 sent", good, secrets=(pk,), note=v1a_note)
    raw = base64.b64decode(sig.removeprefix("v1a,"))
    s = int.from_bytes(raw[32:], "little") + ED25519_L
    noncanonical = "v1a," + b64(raw[:32] + s.to_bytes(32, "little"))
    case("v1a-noncanonical-s", "v1a with S + L (malleated)", noncanonical, secrets=(pk,), note=v1a_note)


# --- Svix --------------------------------------------------------------------


@provider("svix")
def svix_(o: Oracle):
    """sluice's `svix` is an alias of `standard-webhooks`; Svix's library
    wraps standardwebhooks and reads the svix-* names first."""
    body = b'{"type":"user.created","data":{"id":"u_1"}}'
    other_body = body.replace(b"u_1", b"u_2")
    msg_id = "msg_2Lh9KRb0pzN4LePd3XiA4Dy0Tsa"
    svix_names = ("svix-id", "svix-timestamp", "svix-signature")
    std_names = ("webhook-id", "webhook-timestamp", "webhook-signature")

    def sig(ts, data=body, secret=SW_SECRET):
        return svix.webhooks.Webhook(secret).sign(msg_id, datetime.fromtimestamp(ts, tz=timezone.utc), data)

    def hdrs(value, ts=T, names=svix_names):
        return list(zip(names, (msg_id, str(ts), value)))

    def verify(secrets, data, headers):
        for s in secrets:
            try:
                return svix.webhooks.Webhook(s).verify(data, dict(headers))
            except svix.webhooks.WebhookVerificationError as e:
                last = e
        raise last

    def case(name, desc, headers, *, secrets=(SW_SECRET,), data=body, now=T, note=None):
        o.case(
            name,
            desc,
            secrets=secrets,
            headers=headers,
            body=data,
            now=now,
            check=lambda: verify(secrets, data, headers),
            rejects=(svix.webhooks.WebhookVerificationError,),
            note=note,
        )

    good = sig(T)
    case("valid", "svix-* headers, signed by the library", hdrs(good))
    case("webhook-names", "webhook-* headers", hdrs(good, names=std_names))
    case("tampered-body", "body changed", hdrs(good), data=other_body)
    case("wrong-secret", "verified with another secret", hdrs(good), secrets=(SW_OTHER,))
    case("stale", "signed 301 s ago", hdrs(sig(T - 301), ts=T - 301))
    case("future", "signed 301 s ahead", hdrs(sig(T + 301), ts=T + 301))
    case("missing-signature", "no svix-signature", hdrs(good)[:2])
    case(
        "both-names-svix-wrong",
        "valid webhook-* headers and a wrong svix-signature",
        hdrs(good, names=std_names) + hdrs(sig(T, other_body)),
        note="Svix's library reads svix-* first, sluice webhook-*",
    )


# --- Stripe ------------------------------------------------------------------

STRIPE_SECRET = "whsec_test_secret_abc123"
STRIPE_OTHER = "whsec_rotated_secret_def456"


@provider("stripe")
def stripe_(o: Oracle):
    body = b'{"id":"evt_1","object":"event","type":"charge.succeeded","data":{"object":{"amount":2500}}}'
    other_body = body.replace(b"2500", b"9900")

    def v1(secret, ts, data=body):
        return stripe.WebhookSignature._compute_signature(f"{ts}.{data.decode()}", secret)

    def header(secret, ts, data=body):
        return stripe.WebhookSignature.generate_signature_header(data.decode(), secret, timestamp=ts)

    def verify(secrets, data, value):
        # construct_event: verify_header with the default tolerance (300 s),
        # then the event. The library takes one secret: try each.
        for s in secrets:
            try:
                return stripe.Webhook.construct_event(data, value, s)
            except stripe.SignatureVerificationError as e:
                last = e
        raise last

    def case(name, desc, value, *, secrets=(STRIPE_SECRET,), data=body, now=T + 10, note=None):
        h = [("Stripe-Signature", value)] if value is not None else []
        o.case(
            name,
            desc,
            secrets=secrets,
            headers=h,
            body=data,
            now=now,
            check=lambda: verify(secrets, data, hget(h, "Stripe-Signature")),
            rejects=(stripe.SignatureVerificationError,),
            note=note,
        )

    good = header(STRIPE_SECRET, T)
    case("valid", "generate_signature_header", good)
    case("tampered-body", "amount changed", good, data=other_body)
    case("wrong-secret", "verified with another secret", good, secrets=(STRIPE_OTHER,))
    case("other-body", "the signature of another body", header(STRIPE_SECRET, T, other_body))
    case("other-timestamp", "t= changed after signing", f"t={T + 1},v1={v1(STRIPE_SECRET, T)}")
    case("missing-signature", "no Stripe-Signature", None)
    for label, bad in [
        ("no-t", f"v1={v1(STRIPE_SECRET, T)}"),
        ("no-v1", f"t={T}"),
        ("v0-only", f"t={T},v0={v1(STRIPE_SECRET, T)}"),
        ("not-hex", f"t={T},v1=zz{v1(STRIPE_SECRET, T)[2:]}"),
        ("short", f"t={T},v1={v1(STRIPE_SECRET, T)[:32]}"),
        ("garbage", "garbage"),
        ("t-not-a-number", f"t=x,v1={v1(STRIPE_SECRET, T)}"),
    ]:
        case(f"malformed-{label}", f"Stripe-Signature {bad!r}", bad)
    for off in OFFSETS:
        case(
            f"timestamp-{offset_name(off)}",
            f"signed at now{off:+d}s",
            header(STRIPE_SECRET, T + off),
            now=T,
            note="Stripe's library rejects only old timestamps",
        )
    case("rotation-config", "two secrets configured, the second signed", good, secrets=(STRIPE_OTHER, STRIPE_SECRET))
    case("rotation-none", "two secrets configured, neither signed", good, secrets=(STRIPE_OTHER, "whsec_third"))
    case(
        "rotation-header",
        "one v1 per secret, as Stripe sends during a rotation",
        f"t={T},v1={v1(STRIPE_OTHER, T)},v1={v1(STRIPE_SECRET, T)}",
    )
    case("rotation-header-none", "two v1, neither valid", f"t={T},v1={v1(STRIPE_OTHER, T)},v1={'0' * 64}")
    case("extra-v0", "a v0 before the v1", f"t={T},v0={'0' * 64},v1={v1(STRIPE_SECRET, T)}")
    case(
        "spaces-after-commas",
        "t=…, v1=… (a space after the comma)",
        f"t={T}, v1={v1(STRIPE_SECRET, T)}",
        note="the library splits on ',' and '=' without trimming",
    )
    case(
        "uppercase-hex",
        "the v1 in upper-case hex",
        f"t={T},v1={v1(STRIPE_SECRET, T).upper()}",
        note="the library compares the hex text",
    )


# --- Slack -------------------------------------------------------------------

SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"  # Slack's docs
SLACK_OTHER = "0000aaaa1111bbbb2222cccc3333dddd"


class FixedClock:
    def __init__(self, now):
        self._now = now

    def now(self):
        return float(self._now)


@provider("slack")
def slack(o: Oracle):
    body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&command=%2Fdeploy&text=prod"
    other_body = body.replace(b"prod", b"staging")

    def sig(secret, ts, data=body):
        return SignatureVerifier(secret).generate_signature(timestamp=str(ts), body=data)

    def verify(secrets, data, headers, now):
        return any(
            SignatureVerifier(s, clock=FixedClock(now)).is_valid_request(data, dict(headers))
            for s in secrets
        )

    def case(name, desc, value, *, secrets=(SLACK_SECRET,), data=body, ts=T, now=T + 5, note=None):
        h = [("X-Slack-Signature", value), ("X-Slack-Request-Timestamp", None if ts is None else str(ts))]
        h = [(k, v) for k, v in h if v is not None]
        o.case(
            name,
            desc,
            secrets=secrets,
            headers=h,
            body=data,
            now=now,
            check=lambda: verify(secrets, data, h, now),
            # is_valid() parses the timestamp with int() before it checks.
            rejects=(ValueError,),
            note=note,
        )

    good = sig(SLACK_SECRET, T)
    case("valid", "generate_signature", good)
    case("tampered-body", "text changed", good, data=other_body)
    case("wrong-secret", "verified with another secret", good, secrets=(SLACK_OTHER,))
    case("other-body", "the signature of another body", sig(SLACK_SECRET, T, other_body))
    case("other-timestamp", "timestamp changed after signing", good, ts=T + 1)
    case("missing-signature", "no X-Slack-Signature", None)
    case("missing-timestamp", "no X-Slack-Request-Timestamp", good, ts=None)
    for label, bad in [
        ("bare-hex", good.removeprefix("v0=")),
        ("empty", "v0="),
        ("not-hex", "v0=nothex"),
        ("v1", "v1=" + good.removeprefix("v0=")),
        ("short", good[:20]),
    ]:
        case(f"malformed-{label}", f"X-Slack-Signature {bad!r}", bad)
    case("malformed-timestamp", "timestamp is not a number", good, ts="15314206l8")
    for off in OFFSETS:
        case(f"timestamp-{offset_name(off)}", f"signed at now{off:+d}s", sig(SLACK_SECRET, T + off), ts=T + off, now=T)
    case("rotation-config", "two secrets configured, the second signed", good, secrets=(SLACK_OTHER, SLACK_SECRET))
    case("rotation-none", "two secrets configured, neither signed", good, secrets=(SLACK_OTHER, "another"))
    case(
        "uppercase-hex",
        "the signature in upper-case hex",
        "v0=" + good.removeprefix("v0=").upper(),
        note="the library compares the signature text",
    )


# --- SendGrid ----------------------------------------------------------------

SG_KEY = ec.derive_private_key(0x5EED_0001, ec.SECP256R1())
SG_OTHER = ec.derive_private_key(0x5EED_0002, ec.SECP256R1())


def sg_public(key) -> str:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return b64(der)


@provider("sendgrid")
def sendgrid(o: Oracle):
    body = b'[{"email":"a@example.com","event":"delivered","sg_event_id":"e1","timestamp":1700000000}]'
    other_body = body.replace(b"delivered", b"bounce")

    def sign_der(key, ts, data=body):
        # SendGrid signs on its side; its library only verifies. The same
        # primitive, from the library's own dependency (cryptography),
        # deterministic (RFC 6979).
        return key.sign(str(ts).encode() + data, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))

    def sig(key, ts, data=body):
        return b64(sign_der(key, ts, data))

    def verify(keys, data, headers):
        # As the library's docs: verify_signature(payload, signature header,
        # timestamp header). The library takes one key: try each.
        value = hget(headers, "X-Twilio-Email-Event-Webhook-Signature") or ""
        ts = hget(headers, "X-Twilio-Email-Event-Webhook-Timestamp") or ""
        return any(EventWebhook(public_key=k).verify_signature(data.decode(), value, ts) for k in keys)

    def case(name, desc, value, *, keys=(sg_public(SG_KEY),), data=body, ts=T, now=T, note=None):
        h = [
            ("X-Twilio-Email-Event-Webhook-Signature", value),
            ("X-Twilio-Email-Event-Webhook-Timestamp", None if ts is None else str(ts)),
        ]
        h = [(k, v) for k, v in h if v is not None]
        o.case(
            name,
            desc,
            secrets=keys,
            headers=h,
            body=data,
            now=now,
            check=lambda: verify(keys, data, h),
            # Undecodable base64 (binascii.Error is a ValueError).
            rejects=(ValueError, InvalidSignature),
            note=note,
        )

    good = sig(SG_KEY, T)
    no_time = "the library checks no time"
    case("valid", "signed with the key", good)
    case("tampered-body", "event changed", good, data=other_body)
    case("other-key", "signed by another key", sig(SG_OTHER, T))
    case("other-body", "the signature of another body", sig(SG_KEY, T, other_body))
    case("other-timestamp", "timestamp changed after signing", good, ts=T + 9)
    case("missing-signature", "no signature header", None)
    case("missing-timestamp", "no timestamp header", good, ts=None)
    for label, bad in [
        ("not-der", b64(b"not der")),
        ("not-base64", "%%%"),
        ("truncated", good[:40]),
        ("raw-r-s", b64(b"\x01" * 64)),
    ]:
        case(f"malformed-{label}", f"signature {bad!r}", bad)
    case("stale", "signed an hour before now", sig(SG_KEY, T - 3600), ts=T - 3600, note=no_time)
    case("future", "signed an hour after now", sig(SG_KEY, T + 3600), ts=T + 3600, note=no_time)
    case("rotation-config", "two keys configured, the second signed", good, keys=(sg_public(SG_OTHER), sg_public(SG_KEY)))
    case("rotation-none", "two keys configured, neither signed", sig(SG_OTHER, T), keys=(sg_public(SG_KEY), sg_public(SG_KEY)))
    r, s = decode_dss_signature(sign_der(SG_KEY, T))
    case("high-s", "the same signature as (r, n - s)", b64(encode_dss_signature(r, P256_N - s)))


# --- Discord -----------------------------------------------------------------

DISCORD_KEY = nacl.signing.SigningKey(bytes([7] * 32))
DISCORD_OTHER = nacl.signing.SigningKey(bytes([8] * 32))


@provider("discord")
def discord(o: Oracle):
    body = b'{"id":"1234","type":2,"data":{"name":"deploy"}}'
    other_body = body.replace(b"deploy", b"destroy")

    def sig(key, ts, data=body):
        return key.sign(f"{ts}".encode() + data).signature.hex()

    def verify(keys, data, headers):
        # Discord's documented check, once per configured key.
        signature = hget(headers, "X-Signature-Ed25519") or ""
        timestamp = hget(headers, "X-Signature-Timestamp") or ""
        for k in keys:
            try:
                nacl.signing.VerifyKey(bytes.fromhex(k)).verify(
                    f"{timestamp}{data.decode()}".encode(), bytes.fromhex(signature)
                )
                return True
            except nacl.exceptions.BadSignatureError as e:
                last = e
        raise last

    def case(name, desc, value, *, keys=(bytes(DISCORD_KEY.verify_key).hex(),), data=body, ts=T, now=T, note=None):
        h = [("X-Signature-Ed25519", value), ("X-Signature-Timestamp", None if ts is None else str(ts))]
        h = [(k, v) for k, v in h if v is not None]
        o.case(
            name,
            desc,
            secrets=keys,
            headers=h,
            body=data,
            now=now,
            check=lambda: verify(keys, data, h),
            # bytes.fromhex and PyNaCl's length checks raise ValueError.
            rejects=(nacl.exceptions.BadSignatureError, ValueError),
            note=note,
        )

    pk = bytes(DISCORD_KEY.verify_key).hex()
    other_pk = bytes(DISCORD_OTHER.verify_key).hex()
    good = sig(DISCORD_KEY, T)
    no_time = "PyNaCl checks no time, nor do Discord's docs"
    case("valid", "signed with the key", good)
    case("tampered-body", "command changed", good, data=other_body)
    case("other-key", "signed by another key", sig(DISCORD_OTHER, T))
    case("other-body", "the signature of another body", sig(DISCORD_KEY, T, other_body))
    case("other-timestamp", "timestamp changed after signing", good, ts=T + 1)
    case("missing-signature", "no X-Signature-Ed25519", None)
    case("missing-timestamp", "no X-Signature-Timestamp", good, ts=None)
    for label, bad in [("short", "abcd"), ("not-hex", "zz" + good[2:]), ("empty", "")]:
        case(f"malformed-{label}", f"signature {bad!r}", bad)
    case("stale", "signed an hour before now", sig(DISCORD_KEY, T - 3600), ts=T - 3600, note=no_time)
    case("future", "signed an hour after now", sig(DISCORD_KEY, T + 3600), ts=T + 3600, note=no_time)
    case("rotation-config", "two keys configured, the second signed", good, keys=(other_pk, pk))
    case("rotation-none", "two keys configured, neither signed", sig(DISCORD_OTHER, T), keys=(pk, pk))
    case("uppercase-hex", "the signature in upper-case hex", good.upper())
    raw = bytes.fromhex(good)
    s = int.from_bytes(raw[32:], "little") + ED25519_L
    case("noncanonical-s", "S + L (malleated)", (raw[:32] + s.to_bytes(32, "little")).hex())


# --- Paddle ------------------------------------------------------------------

PADDLE_SECRET = "pdl_ntfset_01gkpjp8bkh3a7zwrxxqmhdpc7_6Jh0bGuJbNBmY7eW2ZNLmSSlCI1VNxDi"
PADDLE_OTHER = "pdl_ntfset_01hrotated0000000000000000_AAAAbbbbCCCCddddEEEEffffGGGGhhhh"


class PaddleRequest:
    """What paddle_billing's Verifier reads: .headers.get() and .body."""

    class Headers:
        def __init__(self, pairs):
            self._pairs = pairs

        def get(self, key, default=None):
            v = hget(self._pairs, key)
            return default if v is None else v

    def __init__(self, headers, body):
        self.headers = PaddleRequest.Headers(headers)
        self.body = body


@provider("paddle")
def paddle(o: Oracle):
    body = b'{"event_id":"evt_01h8bz","event_type":"transaction.completed","data":{"total":"2500"}}'
    other_body = body.replace(b"2500", b"9900")

    def h1(secret, ts, data=body):
        # The SDK only verifies; its own HMAC helper signs.
        return PaddleSignature.calculate_hmac(secret, f"{ts}:".encode() + data).hexdigest()

    def header(secret, ts, data=body):
        return f"ts={ts};h1={h1(secret, ts, data)}"

    def case(name, desc, value, *, secrets=(PADDLE_SECRET,), data=body, now=T + 1, note=None):
        h = [("Paddle-Signature", value)] if value is not None else []
        o.case(
            name,
            desc,
            secrets=secrets,
            headers=h,
            body=data,
            now=now,
            # A list of secrets: the SDK's rotation support.
            check=lambda: Verifier().verify(PaddleRequest(h, data), [Secret(s) for s in secrets]),
            # ConnectionRefusedError: no secret matched; ValueError: the
            # header does not parse.
            rejects=(ConnectionRefusedError, ValueError),
            note=note,
        )

    good = header(PADDLE_SECRET, T)
    case("valid", "signed with the secret, verified 1 s later", good)
    case("tampered-body", "total changed", good, data=other_body)
    case("wrong-secret", "verified with another secret", good, secrets=(PADDLE_OTHER,))
    case("other-body", "the signature of another body", header(PADDLE_SECRET, T, other_body))
    case("other-timestamp", "ts changed after signing", f"ts={T + 1};h1={h1(PADDLE_SECRET, T)}")
    case("missing-signature", "no Paddle-Signature", None)
    for label, bad in [
        ("no-ts", f"h1={h1(PADDLE_SECRET, T)}"),
        ("no-h1", f"ts={T}"),
        ("not-hex", f"ts={T};h1=zz"),
        ("short", f"ts={T};h1={h1(PADDLE_SECRET, T)[:32]}"),
        ("ts-not-a-number", f"ts=x;h1={h1(PADDLE_SECRET, T)}"),
    ]:
        case(f"malformed-{label}", f"Paddle-Signature {bad!r}", bad)
    for off in OFFSETS:
        case(f"timestamp-{offset_name(off)}", f"signed at now{off:+d}s", header(PADDLE_SECRET, T + off), now=T)
    case("rotation-config", "two secrets configured, the second signed", good, secrets=(PADDLE_OTHER, PADDLE_SECRET))
    case("rotation-none", "two secrets configured, neither signed", good, secrets=(PADDLE_OTHER, "pdl_ntfset_third"))
    case(
        "rotation-header",
        "one h1 per secret, as Paddle sends during a rotation",
        f"ts={T};h1={h1(PADDLE_OTHER, T)};h1={h1(PADDLE_SECRET, T)}",
    )
    case("rotation-header-none", "two h1, neither valid", f"ts={T};h1={h1(PADDLE_OTHER, T)};h1={'0' * 64}")
    case(
        "unknown-key",
        "an h2 next to the valid h1",
        f"ts={T};h1={h1(PADDLE_SECRET, T)};h2={'0' * 64}",
        note="the SDK raises on a key it does not know",
    )


# --- GitHub ------------------------------------------------------------------

GITHUB_SECRET = "It's a Secret to Everybody"  # GitHub's docs
GITHUB_OTHER = "not the secret"


@provider("github")
def github(o: Oracle):
    body = b'{"action":"opened","number":1,"repository":{"full_name":"octo/hello"}}'
    other_body = body.replace(b"opened", b"closed")

    def verify(secrets, data, headers):
        # githubkit verifies one signature string; the caller picks the
        # header: X-Hub-Signature-256, else the legacy X-Hub-Signature.
        value = hget(headers, "X-Hub-Signature-256") or hget(headers, "X-Hub-Signature") or ""
        return any(githubkit.webhooks.verify(s, data, value) for s in secrets)

    def case(name, desc, headers, *, secrets=(GITHUB_SECRET,), data=body, note=None):
        o.case(
            name,
            desc,
            secrets=secrets,
            headers=headers,
            body=data,
            now=T,
            check=lambda: verify(secrets, data, headers),
            rejects=(),
            note=note,
        )

    good = githubkit.webhooks.sign(GITHUB_SECRET, body, "sha256")
    sha1 = githubkit.webhooks.sign(GITHUB_SECRET, body, "sha1")
    case("valid", "githubkit.webhooks.sign", [("X-Hub-Signature-256", good)])
    case("tampered-body", "action changed", [("X-Hub-Signature-256", good)], data=other_body)
    case("wrong-secret", "verified with another secret", [("X-Hub-Signature-256", good)], secrets=(GITHUB_OTHER,))
    case("other-body", "the signature of another body", [("X-Hub-Signature-256", githubkit.webhooks.sign(GITHUB_SECRET, other_body))])
    case("missing-signature", "no signature header", [])
    for label, bad in [
        ("bare-hex", good.removeprefix("sha256=")),
        ("not-hex", "sha256=zz" + good[9:]),
        ("short", good[:20]),
        ("empty", ""),
    ]:
        case(f"malformed-{label}", f"X-Hub-Signature-256 {bad!r}", [("X-Hub-Signature-256", bad)])
    case("rotation-config", "two secrets configured, the second signed", [("X-Hub-Signature-256", good)], secrets=(GITHUB_OTHER, GITHUB_SECRET))
    case("rotation-none", "two secrets configured, neither signed", [("X-Hub-Signature-256", good)], secrets=(GITHUB_OTHER, "third"))
    case("legacy-sha1", "only X-Hub-Signature (sha1=)", [("X-Hub-Signature", sha1)])
    case("legacy-sha1-tampered", "only X-Hub-Signature, body changed", [("X-Hub-Signature", sha1)], data=other_body)
    case(
        "sha1-does-not-rescue-sha256",
        "a valid sha1 and a wrong sha256",
        [("X-Hub-Signature", sha1), ("X-Hub-Signature-256", "sha256=" + "0" * 64)],
    )
    case(
        "uppercase-hex",
        "the signature in upper-case hex",
        [("X-Hub-Signature-256", "sha256=" + good.removeprefix("sha256=").upper())],
        note="githubkit compares the signature text",
    )


# --- Twilio (no sluice preset yet) -------------------------------------------

TWILIO_TOKEN = "12345abcdef67890abcdef1234567890"
TWILIO_OTHER = "0987654321fedcba0987654321fedcba"


@provider("twilio")
def twilio(o: Oracle):
    # Twilio signs the URL it calls plus the sorted form parameters, so a
    # preset will need the request's URL: each case carries it.
    url = "https://hooks.example.com/sources/twilio?source=sms"
    params = {"AccountSid": "AC123", "From": "+15005550006", "To": "+15005550001", "Body": "hello"}
    body = urlencode(params).encode()
    other_body = urlencode({**params, "Body": "goodbye"}).encode()

    def sig(token, data=body, at=url):
        return RequestValidator(token).compute_signature(at, dict(parse_qsl(data.decode())))

    def case(name, desc, value, *, secrets=(TWILIO_TOKEN,), data=body, at=url):
        h = [("X-Twilio-Signature", value)] if value is not None else []
        o.case(
            name,
            desc,
            secrets=secrets,
            headers=h,
            body=data,
            now=T,
            check=lambda: any(
                RequestValidator(s).validate(at, dict(parse_qsl(data.decode())), hget(h, "X-Twilio-Signature") or "")
                for s in secrets
            ),
            rejects=(),
            extra={"url": at},
        )

    good = sig(TWILIO_TOKEN)
    case("valid", "compute_signature", good)
    case("tampered-body", "Body parameter changed", good, data=other_body)
    case("wrong-secret", "verified with another auth token", good, secrets=(TWILIO_OTHER,))
    case("other-url", "verified at another URL", good, at=url.replace("sms", "voice"))
    case("missing-signature", "no X-Twilio-Signature", None)
    case("rotation-config", "two tokens configured, the second signed", good, secrets=(TWILIO_OTHER, TWILIO_TOKEN))


# --- Netlify -----------------------------------------------------------------

NETLIFY_SECRET = "netlify-jws-secret-3c1f" * 3
NETLIFY_OTHER = "netlify-jws-secret-0000" * 3


@provider("netlify")
def netlify(o: Oracle):
    # Netlify's documented check: a JWT library verifies the token (HS256,
    # iss "netlify"), then the sha256 claim is compared with the body's.
    body = b'{"id":"5ebc34bf4fea0b01f02efa3a","state":"ready","name":"www"}'
    other_body = body.replace(b"ready", b"error")

    def token(claims=None, key=NETLIFY_SECRET, alg="HS256", data=body):
        c = {"iss": "netlify", "sha256": hashlib.sha256(data).hexdigest()}
        c.update(claims or {})
        c = {k: v for k, v in c.items() if v is not None}
        return jwt.encode(c, key if alg != "none" else None, algorithm=alg)

    def library(secrets, h, data):
        value = hget(h, "X-Webhook-Signature")
        if value is None:
            return False
        for s in secrets:
            try:
                claims = jwt.decode(value, s, algorithms=["HS256"], issuer="netlify")
            except jwt.InvalidSignatureError:
                continue
            return claims.get("sha256") == hashlib.sha256(data).hexdigest()
        return False

    def case(name, desc, value, *, secrets=(NETLIFY_SECRET,), data=body, now=T):
        h = [("X-Webhook-Signature", value)] if value is not None else []
        o.case(
            name,
            desc,
            secrets=secrets,
            headers=h,
            body=data,
            now=now,
            check=lambda: library(secrets, h, data),
            rejects=(jwt.InvalidTokenError,),
        )

    good = token()
    case("valid", "encoded by PyJWT", good)
    case("tampered-body", "the body changed after signing", good, data=other_body)
    case("wrong-secret", "verified with another secret", good, secrets=(NETLIFY_OTHER,))
    case("rotation-config", "two secrets configured, the second signed", good, secrets=(NETLIFY_OTHER, NETLIFY_SECRET))
    case("missing-signature", "no X-Webhook-Signature", None)
    case("other-issuer", "iss is not netlify", token({"iss": "elsewhere"}))
    case("no-issuer", "no iss claim", token({"iss": None}))
    case("no-body-hash", "no sha256 claim", token({"sha256": None}))
    case("alg-none", "an unsigned token (alg none)", token(alg="none"))
    case("alg-hs512", "HS512 under the same secret", token(alg="HS512"))
    case("expired", "exp one second ago", token({"exp": T - 1}))
    case("not-expired", "exp in a minute", token({"exp": T + 60}))
    case("not-yet-valid", "nbf in a minute", token({"nbf": T + 60}))
    case("valid-since", "nbf a minute ago", token({"nbf": T - 60}))
    case("malformed", "not a JWT", "not.a.jwt")
    case("two-parts", "header and payload only", good.rsplit(".", 1)[0])


def main():
    o = Oracle()
    only = set(sys.argv[1:])
    for name, fn in PROVIDERS.items():
        if only and name not in only:
            continue
        o.provider = name
        fn(o)
    versions = {lib: importlib.metadata.version(lib) for lib in LIBRARIES}
    json.dump(
        {"generator": "tests/oracle/oracle.py", "libraries": versions, "cases": o.cases},
        sys.stdout,
        indent=1,
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
