"""Access tokens: claims, HS256 only, key rotation by kid, expiry on the clock seam."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json

import jwt as pyjwt
import pytest

from twig_auth.core import clock
from twig_auth.exceptions import InvalidToken, TokenExpired
from twig_auth.tokens import jwt
from twig_auth.tokens.services import access_claims
from twig_auth.tokens.verification import authenticate_access_token

KEY_A = "a" * 32 + "-first-signing-key"
KEY_B = "b" * 32 + "-second-signing-key"
PUBLIC_KEY = """-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEVs/o5+uQbTjL3chynL4wXgUg2R9
q9UU8I5mEovUf86QZ7kOBIjJwqnzD1omageEHWwHdBO6B+dFabmdT9POxg==
-----END PUBLIC KEY-----"""


@pytest.fixture
def claims(owner):
    return access_claims(membership=owner, family="fam_test", now=clock.now())


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_claims_name_user_org_membership_roles_family_and_lifetime(owner, claims):
    token = jwt.encode(claims)
    header = pyjwt.get_unverified_header(token)
    assert header["alg"] == "HS256" and header["kid"] == jwt.signing_keys()[0][0].kid and len(header["kid"]) == 8
    decoded = jwt.decode(token)
    assert decoded["sub"] == str(owner.user_id) and decoded["org"] == owner.org_id and decoded["mem"] == owner.pk
    assert decoded["role"] == "super_admin" and decoded["roles"] == ["super_admin", "admin", "manager", "user"]
    assert decoded["fam"] == "fam_test" and len(decoded["jti"]) == 24
    assert decoded["exp"] - decoded["iat"] == 3600


def test_default_key_is_derived_from_secret_key_not_equal_to_it(settings):
    key = jwt.signing_keys()[0][0]
    assert key.secret != settings.SECRET_KEY and key.kid == jwt.kid_of(key.secret)


def test_first_key_signs_and_every_key_verifies(settings, claims):
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "JWT_SIGNING_KEYS": [KEY_B]}
    old = jwt.encode(claims)
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "JWT_SIGNING_KEYS": [KEY_A, KEY_B]}
    new = jwt.encode(claims)
    assert pyjwt.get_unverified_header(new)["kid"] == jwt.kid_of(KEY_A)
    assert jwt.decode(old)["sub"] == jwt.decode(new)["sub"]
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "JWT_SIGNING_KEYS": [KEY_A]}
    with pytest.raises(InvalidToken):
        jwt.decode(old)  # its key was retired


def test_unknown_kid_with_a_valid_signature_of_another_key_is_refused(settings, claims):
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "JWT_SIGNING_KEYS": [KEY_A]}
    forged = pyjwt.encode(claims, KEY_A, algorithm="HS256", headers={"kid": "deadbeef"})
    with pytest.raises(InvalidToken):
        jwt.decode(forged)


def test_tampered_payload_is_refused(claims):
    token = jwt.encode(claims)
    header, _, signature = token.split(".")
    raised = _b64({**claims, "role": "super_admin", "org": 999})
    with pytest.raises(InvalidToken):
        jwt.decode(f"{header}.{raised}.{signature}")


def test_alg_none_is_refused(claims):
    token = f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': jwt.signing_keys()[0][0].kid})}.{_b64(claims)}."
    with pytest.raises(InvalidToken):
        jwt.decode(token)


def test_rs256_header_and_public_key_as_hmac_secret_are_refused(claims):
    kid = jwt.signing_keys()[0][0].kid
    # The classic confusion: HMAC with a public key as the secret (PyJWT refuses PEM secrets, so sign by hand).
    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{_b64(claims)}"
    sig = base64.urlsafe_b64encode(hmac.new(PUBLIC_KEY.encode(), signing_input.encode(), hashlib.sha256).digest())
    with pytest.raises(InvalidToken):
        jwt.decode(f"{signing_input}.{sig.rstrip(b'=').decode()}")
    rs_header = f"{_b64({'alg': 'RS256', 'typ': 'JWT', 'kid': kid})}.{_b64(claims)}"
    with pytest.raises(InvalidToken):
        jwt.decode(f"{rs_header}.{sig.rstrip(b'=').decode()}")


def test_token_without_exp_or_of_another_type_is_refused(claims):
    secret = jwt.signing_keys()[0][0]
    for bad in ({k: v for k, v in claims.items() if k != "exp"}, {**claims, "typ": "session"},
                {**claims, "exp": str(claims["exp"])}):
        token = pyjwt.encode(bad, secret.secret, algorithm="HS256", headers={"kid": secret.kid})
        with pytest.raises(InvalidToken):
            jwt.decode(token)


def test_expiry_follows_the_clock_seam_with_no_leeway(owner):
    start = dt.datetime(2031, 5, 1, 12, 0, tzinfo=dt.UTC)
    with clock.frozen(start) as frozen:
        token = jwt.encode(access_claims(membership=owner, family="fam_x", now=clock.now()))
        frozen.advance(seconds=3599)
        assert authenticate_access_token(token).membership_id == owner.pk
        frozen.advance(seconds=1)
        with pytest.raises(TokenExpired):
            authenticate_access_token(token)


@pytest.mark.parametrize("garbage", ["", "a.b.c", "eyJ.eyJ.x", "ey" + "A" * 5000 + ".a.b", "eyJhbGciOi\x00.x.y"])
def test_garbage_is_an_invalid_token(garbage):
    with pytest.raises(InvalidToken):
        jwt.decode(garbage)
