"""Webhook signatures: sign and verify, and every reason verify rejects a header."""
from __future__ import annotations

import hashlib
import hmac

import pytest

from payments.signatures import InvalidSignature, sign, verify

SECRET = "whsec_unit_test"
PAYLOAD = b'{"id":"evt_1","type":"payment_intent.succeeded"}'
NOW = 1_700_000_000


def test_sign_format_and_value():
    header = sign(PAYLOAD, SECRET, NOW)

    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + PAYLOAD, hashlib.sha256).hexdigest()
    assert header == f"t={NOW},v1={expected}"


def test_verify_accepts_own_signature():
    verify(PAYLOAD, sign(PAYLOAD, SECRET, NOW), SECRET, now=NOW + 10)


def test_verify_accepts_any_matching_v1():
    valid = sign(PAYLOAD, SECRET, NOW).split(",")[1]
    header = f"t={NOW},v1={'0' * 64},{valid},v0=legacy"

    verify(PAYLOAD, header, SECRET, now=NOW)


@pytest.mark.parametrize("header", [None, "", "   "])
def test_verify_missing_header(header):
    with pytest.raises(InvalidSignature) as caught:
        verify(PAYLOAD, header, SECRET, now=NOW)

    assert caught.value.reason == InvalidSignature.MISSING


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        "t=abc,v1=00",
        f"v1={'0' * 64}",
        f"t={NOW}",
        f"t={NOW},v1=",
        f"t=-{NOW},v1=00",
    ],
)
def test_verify_malformed_header(header):
    with pytest.raises(InvalidSignature) as caught:
        verify(PAYLOAD, header, SECRET, now=NOW)

    assert caught.value.reason == InvalidSignature.MALFORMED


@pytest.mark.parametrize("offset", [-301, 301, -3600])
def test_verify_timestamp_outside_tolerance(offset):
    header = sign(PAYLOAD, SECRET, NOW + offset)

    with pytest.raises(InvalidSignature) as caught:
        verify(PAYLOAD, header, SECRET, now=NOW)

    assert caught.value.reason == InvalidSignature.OUTSIDE_TOLERANCE


def test_verify_custom_tolerance():
    header = sign(PAYLOAD, SECRET, NOW - 30)

    verify(PAYLOAD, header, SECRET, tolerance_seconds=60, now=NOW)
    with pytest.raises(InvalidSignature):
        verify(PAYLOAD, header, SECRET, tolerance_seconds=10, now=NOW)


@pytest.mark.parametrize(
    ("payload", "secret"),
    [
        (PAYLOAD + b" ", SECRET),
        (PAYLOAD.replace(b"succeeded", b"failed"), SECRET),
        (PAYLOAD, "whsec_other"),
    ],
)
def test_verify_mismatch(payload, secret):
    header = sign(PAYLOAD, SECRET, NOW)

    with pytest.raises(InvalidSignature) as caught:
        verify(payload, header, secret, now=NOW)

    assert caught.value.reason == InvalidSignature.MISMATCH


def test_verify_rejects_other_timestamp_with_old_signature():
    signature = sign(PAYLOAD, SECRET, NOW).split(",")[1]

    with pytest.raises(InvalidSignature) as caught:
        verify(PAYLOAD, f"t={NOW + 5},{signature}", SECRET, now=NOW)

    assert caught.value.reason == InvalidSignature.MISMATCH


def test_verify_requires_bytes():
    with pytest.raises(TypeError):
        verify(PAYLOAD.decode(), sign(PAYLOAD, SECRET, NOW), SECRET, now=NOW)


def test_empty_secret_rejected():
    with pytest.raises(ValueError):
        sign(PAYLOAD, "", NOW)
    with pytest.raises(ValueError):
        verify(PAYLOAD, f"t={NOW},v1=00", "", now=NOW)


def test_signatures_module_uses_only_stdlib():
    import payments.signatures as module

    source = open(module.__file__, encoding="utf-8").read()
    imports = {line.split()[1] for line in source.splitlines() if line.startswith(("import ", "from "))}
    assert imports <= {"__future__", "hashlib", "hmac", "time"}
