"""Key hashers: bcrypt cost 12 by default, HMAC-SHA256 with rotating peppers, verify_any, the setting."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from django.core.cache import caches
from django.test import override_settings

from twig_auth.apikeys import hashers
from twig_auth.apikeys.hashers import BcryptKeyHasher, HmacSha256KeyHasher, get_hasher, verify_any
from twig_auth.apikeys.models import ApiKey
from twig_auth.apikeys.verification import authenticate_key, clear_local
from twig_auth.conf import app_settings

from .conftest import HMAC_HASHER

BCRYPT_HASHER = "twig_auth.apikeys.hashers.BcryptKeyHasher"
SECRET = "nD8sV1pQ0wErTyU6iOaS3dFgH5jKlZxC"


def _twig(**extra):
    from django.conf import settings

    return {**settings.TWIG_AUTH, **extra}


def test_default_hasher_is_bcrypt_cost_12():
    hashers.reset()
    hasher = get_hasher()
    assert isinstance(hasher, BcryptKeyHasher) and hasher.rounds == 12
    encoded = hasher.hash(SECRET)
    assert encoded.startswith("bcrypt$$2b$12$"), encoded
    assert len(encoded) == len("bcrypt$") + 60 <= ApiKey._meta.get_field("hashed_secret").max_length
    assert hasher.verify(SECRET, encoded)
    assert not hasher.verify(SECRET[:-1] + "X", encoded)
    assert not hasher.verify(SECRET, "hmac_sha256$abc$def")  # not its format: False, no exception
    assert encoded != hasher.hash(SECRET)  # salted


def test_issued_key_is_stored_with_bcrypt_12_and_never_in_plaintext(issue, owner, bcrypt_calls):
    key, plaintext = issue(owner, ["read"])
    row = ApiKey.objects.get(pk=key.pk)
    assert row.hashed_secret.startswith("bcrypt$$2b$12$")
    assert bcrypt_calls.hashes == 1
    secret = plaintext[24:56]
    for value in (row.hashed_secret, row.name, row.key_id, str(row.scopes)):
        assert plaintext not in value and secret not in value
    assert authenticate_key(plaintext).id == key.pk
    assert bcrypt_calls.checks == 1


def test_bcrypt_rounds_setting(settings):
    settings.TWIG_AUTH = _twig(API_KEY_BCRYPT_ROUNDS=4)
    assert get_hasher().hash(SECRET).startswith("bcrypt$$2b$04$")


def test_hmac_hasher_signs_with_the_first_pepper_and_verifies_with_all():
    with override_settings(TWIG_AUTH=_twig(API_KEY_PEPPERS=["old-pepper"])):
        old = HmacSha256KeyHasher().hash(SECRET)
    algorithm, kid, digest = old.split("$")
    assert algorithm == "hmac_sha256"
    assert kid == hashlib.sha256(b"old-pepper").hexdigest()[:8]
    assert digest == hmac.new(b"old-pepper", SECRET.encode(), hashlib.sha256).hexdigest()
    with override_settings(TWIG_AUTH=_twig(API_KEY_PEPPERS=["new-pepper", "old-pepper"])):
        hasher = HmacSha256KeyHasher()
        new = hasher.hash(SECRET)
        assert new.split("$")[1] == hashlib.sha256(b"new-pepper").hexdigest()[:8]
        assert hasher.verify(SECRET, old)  # rotation: the old pepper still verifies
        assert hasher.verify(SECRET, new)
        assert not hasher.verify(SECRET + "x", old)
        assert not hasher.verify(SECRET, old[:-1] + ("0" if old[-1] != "0" else "1"))
    with override_settings(TWIG_AUTH=_twig(API_KEY_PEPPERS=["new-pepper"])):
        assert not HmacSha256KeyHasher().verify(SECRET, old)  # a retired pepper no longer verifies
        assert HmacSha256KeyHasher().verify(SECRET, new)


def test_hmac_without_peppers_uses_secret_key(settings):
    settings.TWIG_AUTH = _twig(API_KEY_PEPPERS=[])
    encoded = HmacSha256KeyHasher().hash(SECRET)
    expected = hmac.new(settings.SECRET_KEY.encode(), SECRET.encode(), hashlib.sha256).hexdigest()
    assert encoded.endswith("$" + expected)


@pytest.mark.parametrize("encoded", ["", "hmac_sha256", "hmac_sha256$", "hmac_sha256$zz$", "md5$x$y", "bcrypt$",
                                     "plain"])
def test_garbage_encodings_never_verify(encoded):
    assert not HmacSha256KeyHasher().verify(SECRET, encoded)
    assert not verify_any(SECRET, encoded)


def test_verify_any_accepts_either_hasher_whatever_the_setting(settings):
    settings.TWIG_AUTH = _twig(API_KEY_BCRYPT_ROUNDS=4)
    bcrypt_encoded = BcryptKeyHasher().hash(SECRET)
    hmac_encoded = HmacSha256KeyHasher().hash(SECRET)
    for path in (BCRYPT_HASHER, HMAC_HASHER):
        settings.TWIG_AUTH = _twig(API_KEY_HASHER=path, API_KEY_BCRYPT_ROUNDS=4)
        assert verify_any(SECRET, bcrypt_encoded)
        assert verify_any(SECRET, hmac_encoded)
        assert not verify_any(SECRET.lower(), bcrypt_encoded)
        assert not verify_any(SECRET.lower(), hmac_encoded)


def test_api_key_hasher_setting_switches_and_old_keys_keep_working(settings, issue, owner, bcrypt_calls):
    settings.TWIG_AUTH = _twig(API_KEY_HASHER=HMAC_HASHER)
    assert isinstance(get_hasher(), HmacSha256KeyHasher)
    hmac_key, hmac_plain = issue(owner, ["read"])
    assert ApiKey.objects.get(pk=hmac_key.pk).hashed_secret.startswith("hmac_sha256$")
    assert authenticate_key(hmac_plain).id == hmac_key.pk
    assert bcrypt_calls.hashes == bcrypt_calls.checks == 0  # HMAC path: no bcrypt at all

    settings.TWIG_AUTH = _twig(API_KEY_HASHER=BCRYPT_HASHER, API_KEY_BCRYPT_ROUNDS=4)  # back to the default
    assert isinstance(get_hasher(), BcryptKeyHasher)
    bcrypt_key, bcrypt_plain = issue(owner, ["read"])
    assert ApiKey.objects.get(pk=bcrypt_key.pk).hashed_secret.startswith("bcrypt$$2b$04$")
    caches[app_settings.REDIS_CACHE_ALIAS].clear()  # cold again: the HMAC-hashed key verifies under the bcrypt setting
    clear_local()
    assert authenticate_key(hmac_plain).id == hmac_key.pk
    assert authenticate_key(bcrypt_plain).id == bcrypt_key.pk
    assert bcrypt_calls.checks == 1
