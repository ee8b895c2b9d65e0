"""AES-256-GCM tokens: what they bind, what they refuse, and how keys are written."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from twig_auth.exceptions import DecryptionFailed
from twig_auth.vault import ciphers
from twig_auth.vault.ciphers import VaultKey, format_key, new_key, parse_key, seal, token_version, unseal
from twig_auth.vault.keys import validate_keys

K1, K2 = new_key(1), new_key(2)
RING = {1: AESGCM(K1.secret), 2: AESGCM(K2.secret)}


def test_round_trip_names_the_key_version():
    token = seal(b"sk-live-secret", aad=b"row-1", key=K2)
    assert token.startswith("tv1.2.") and token_version(token) == 2
    assert b"sk-live-secret" not in token.encode() and "sk-live" not in token
    assert unseal(token, aad=b"row-1", keys=RING) == b"sk-live-secret"


def test_the_same_plaintext_seals_differently_every_time():
    assert len({seal(b"same", aad=b"a", key=K1) for _ in range(50)}) == 50


def test_other_associated_data_is_refused():
    token = seal(b"secret", aad=b"row-1", key=K1)
    with pytest.raises(DecryptionFailed, match="does not belong to this record"):
        unseal(token, aad=b"row-2", keys=RING)


@pytest.mark.parametrize("mutate", [
    lambda t: t[:-2] + ("A" if t[-2] != "A" else "B") + t[-1],  # ciphertext or tag flipped
    lambda t: t.replace("tv1.1.", "tv1.2.", 1),  # relabelled as sealed by another key
    lambda t: t[:20],  # truncated
    lambda t: t + "!",  # not base64url
    lambda t: "tv2" + t[3:],  # unknown format
    lambda t: "",
])
def test_altered_tokens_are_refused(mutate):
    token = seal(b"secret", aad=b"row", key=K1)
    with pytest.raises(DecryptionFailed):
        unseal(mutate(token), aad=b"row", keys=RING)


def test_a_key_version_that_is_not_configured_is_named():
    token = seal(b"secret", aad=b"row", key=new_key(7))
    with pytest.raises(DecryptionFailed, match="key version 7") as caught:
        unseal(token, aad=b"row", keys=RING)
    assert caught.value.extra["key_version"] == 7
    assert token not in str(caught.value)


def test_keys_are_written_as_version_and_base64():
    key = new_key(3)
    assert parse_key(format_key(key)) == key
    urlsafe = "3:" + base64.urlsafe_b64encode(key.secret).decode().rstrip("=")
    assert parse_key(urlsafe) == key
    assert "secret" not in repr(key) and str(key.secret) not in repr(key)


@pytest.mark.parametrize(("line", "problem"), [
    ("abc", "must read"),
    ("0:" + base64.b64encode(b"k" * 32).decode(), "must read"),
    ("1:" + base64.b64encode(b"k" * 16).decode(), "32 bytes"),
    ("1:not base64!!", "must read"),
    ("1:@@@@", "not valid base64"),
    (12, "must be a string"),
])
def test_malformed_keys_are_explained(line, problem):
    with pytest.raises(ValueError, match=problem):
        parse_key(line)


def test_key_list_validation():
    assert validate_keys([format_key(K2), format_key(K1)]) is None
    assert validate_keys([]) is None  # empty is check E009's business
    assert "appears twice" in validate_keys([format_key(K1), format_key(VaultKey(1, b"x" * 32))])
    assert "must be a list" in validate_keys(format_key(K1))
    assert validate_keys(["1:short"]).startswith("entry 0:")


def test_token_prefix_and_header_are_authenticated_not_just_parsed():
    assert ciphers.is_token("tv1.1.abc") and not ciphers.is_token("sk-abc") and not ciphers.is_token(None)
