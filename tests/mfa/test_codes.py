"""Pure code helpers: TOTP (RFC 6238) against the real ``oathtool``, the replay floor, recovery codes, digests."""

from __future__ import annotations

import base64
import re
import secrets

import pytest

from tests.conftest import oathtool
from twig_auth.mfa import codes

RFC_KEY = b"12345678901234567890"  # RFC 6238 appendix B, SHA-1
PARAMS = codes.TotpParams()


def b32(key: bytes) -> str:
    return base64.b32encode(key).decode("ascii").rstrip("=")


@pytest.mark.parametrize("at", [0, 59, 1111111109, 1111111111, 1234567890, 2000000000, 20000000000])
def test_totp_code_agrees_with_oathtool(at):
    key = secrets.token_bytes(20)
    expected = oathtool(b32(key), at=at)
    assert re.fullmatch(r"\d{6}", expected)
    assert codes.totp_code(key, at) == expected


@pytest.mark.parametrize(("at", "code"), [(59, "287082"), (1111111109, "081804"), (1111111111, "050471"),
                                          (1234567890, "005924"), (2000000000, "279037"), (20000000000, "353130")])
def test_rfc6238_sha1_vectors_truncated_to_six_digits(at, code):
    assert codes.totp_code(RFC_KEY, at) == code
    assert oathtool(b32(RFC_KEY), at=at) == code


def test_codes_with_leading_zeros_keep_six_digits():
    assert codes.totp_code(RFC_KEY, 1234567890) == "005924"
    assert codes.totp_match(RFC_KEY, "005924", at=1234567890, params=PARAMS, tolerance=0, last_t=-1) is not None
    assert codes.totp_match(RFC_KEY, "5924", at=1234567890, params=PARAMS, tolerance=0, last_t=-1) is None


def test_totp_match_returns_the_step_and_honours_the_replay_floor():
    key = secrets.token_bytes(20)
    at = 1_800_000_015
    step = at // 30
    code = oathtool(b32(key), at=at)
    assert codes.totp_match(key, code, at=at, params=PARAMS, tolerance=1, last_t=-1) == step
    assert codes.totp_match(key, code, at=at, params=PARAMS, tolerance=1, last_t=step - 1) == step
    assert codes.totp_match(key, code, at=at, params=PARAMS, tolerance=1, last_t=step) is None  # used
    assert codes.totp_match(key, code, at=at, params=PARAMS, tolerance=1, last_t=step + 1) is None  # older


@pytest.mark.parametrize(("steps", "tolerance", "matches"),
                         [(-1, 1, True), (1, 1, True), (-2, 1, False), (2, 1, False), (1, 0, False), (2, 2, True)])
def test_totp_match_window(steps, tolerance, matches):
    key = secrets.token_bytes(20)
    at = 1_800_000_015
    code = oathtool(b32(key), at=at + steps * 30)
    found = codes.totp_match(key, code, at=at, params=PARAMS, tolerance=tolerance, last_t=-1)
    assert (found == at // 30 + steps) if matches else found is None


def test_totp_match_tolerates_spaces_and_refuses_non_codes():
    key = secrets.token_bytes(20)
    at = 1_800_000_015
    code = oathtool(b32(key), at=at)
    assert codes.totp_match(key, f" {code[:3]} {code[3:]} ", at=at, params=PARAMS, tolerance=0, last_t=-1)
    assert codes.totp_match(key, f"{code[:3]}-{code[3:]}", at=at, params=PARAMS, tolerance=0, last_t=-1)
    arabic = code.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))  # isdigit() is True for these
    for bad in ["", "abcdef", code + "0", code[:5], arabic, "١٢٣٤٥٦", "12345\x00", "9" * 10_000]:
        assert codes.totp_match(key, bad, at=at, params=PARAMS, tolerance=1, last_t=-1) is None


def test_drift_and_t0_shift_the_step():
    key = secrets.token_bytes(20)
    at = 1_800_000_015
    assert codes.totp_code(key, at, codes.TotpParams(drift=1)) == oathtool(b32(key), at=at + 30)
    assert codes.totp_code(key, at, codes.TotpParams(t0=30)) == oathtool(b32(key), at=at - 30)


def test_recovery_codes_are_distinct_readable_and_about_49_bits():
    batch = codes.new_recovery_codes(20)
    assert len(batch) == len(set(batch)) == 20
    for code in batch:
        assert re.fullmatch(r"[2-9a-hjkmnp-z]{5}-[2-9a-hjkmnp-z]{5}", code), code
        assert not set(code) & set("01ilo")
        assert codes.looks_like_recovery_code(code)
        assert codes.looks_like_recovery_code(code.upper().replace("-", " "))
    assert len(codes.RECOVERY_ALPHABET) ** codes.RECOVERY_LENGTH > 2 ** 49
    assert not codes.looks_like_recovery_code("123456")
    assert not codes.looks_like_recovery_code("abcde-fghi0")  # 0 is not in the alphabet


def test_sms_codes_are_six_ascii_digits_and_vary():
    batch = {codes.new_sms_code() for _ in range(50)}
    assert all(re.fullmatch(r"[0-9]{6}", c) for c in batch)
    assert len(batch) > 40


def test_digests_are_keyed_by_purpose_and_secret_key(settings):
    digest = codes.code_digest("123456", "sms")
    assert re.fullmatch(r"[0-9a-f]{64}", digest) and "123456" not in digest
    assert codes.code_digest(" 123 456 ", "sms") == digest  # normalized first
    assert codes.code_digest("123456", "recovery") != digest
    recovery = codes.recovery_digest("k7pm3-xq9wd")
    assert re.fullmatch(r"[0-9a-f]{16}", recovery)
    assert codes.recovery_digest("K7PM3 XQ9WD") == recovery
    settings.SECRET_KEY = "another-secret-key-" + "x" * 40
    assert codes.code_digest("123456", "sms") != digest
    assert codes.recovery_digest("k7pm3-xq9wd") != recovery
