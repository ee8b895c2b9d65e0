"""Password requirements of OWASP ASVS 4.0.3 (V2.1, V2.4, V2.5) that no other test proves; docs/security.md cites
each test by name."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import PBKDF2PasswordHasher, identify_hasher, make_password
from django.contrib.auth.password_validation import validate_password
from django.core import mail
from django.core.exceptions import ValidationError
from django.test import Client

from tests.conftest import PASSWORD
from twig_auth.core import clock
from twig_auth.orgs.models import Membership
from twig_auth.passwords.validators import password_problems


def sign_in(email: str, password: str) -> Client:
    client = Client()
    response = client.post("/login/", {"email": email, "password": password})
    assert response.status_code == 302, response.content[:300]
    return client


def test_spaces_and_emoji_are_kept_exactly_and_sign_in(make_user: Any) -> None:
    """V2.1.4: any printable Unicode, spaces and emoji included; V2.1.3: nothing is cut or collapsed."""
    password = "  Horse 🐴 Battery  Staple 9 "
    validate_password(password)
    make_user("ann@example.test", password=password)

    sign_in("ann@example.test", password)
    for near_miss in (password.strip(), "  Horse 🐴 Battery Staple 9 ", password.replace("🐴", "🐎")):
        response = Client().post("/login/", {"email": "ann@example.test", "password": near_miss})
        assert response.status_code == 200, f"{near_miss!r} must not sign in"


def test_long_passphrases_are_allowed_up_to_the_configured_maximum(settings: Any) -> None:
    """V2.1.2: 64 and 128 characters are accepted; PASSWORD_MAX_LENGTH (1024) refuses longer; a deployer may
    set it to 128 to refuse anything longer than 128."""
    for length in (64, 128, 1024):
        assert password_problems(("Aa1!" * 300)[:length]) == []
    assert {e.code for e in password_problems("Aa1!" * 257)} == {"password_too_long"}

    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "PASSWORD_MAX_LENGTH": 128}
    assert password_problems(("Aa1!" * 40)[:128]) == []
    assert {e.code for e in password_problems(("Aa1!" * 40)[:129])} == {"password_too_long"}


def test_the_minimum_length_can_be_raised_and_the_composition_rules_turned_off(settings: Any) -> None:
    """V2.1.1, V2.1.9: the contract's defaults (8 characters, four character classes) are settings; a deployer may
    require 12 characters and drop the composition rules."""
    assert {e.code for e in password_problems("Aa1!aaaaaaa")} == set()
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "PASSWORD_MIN_LENGTH": 12, "PASSWORD_REQUIRE_CLASSES": False}
    assert {e.code for e in password_problems("Aa1!aaaaaaa")} == {"password_too_short"}
    assert password_problems("correct horse battery staple") == []
    assert password_problems("日本語のながいパスワード") == []


def test_common_passwords_are_refused_even_when_they_meet_the_rules() -> None:
    """V2.1.7 (partly): Django's list of about 20,000 common passwords applies when a password is set."""
    assert password_problems("P@ssw0rd") == []  # meets every composition rule …
    with pytest.raises(ValidationError) as info:
        validate_password("P@ssw0rd")  # … and is still refused
    assert [e.code for e in info.value.error_list] == ["password_too_common"]


def test_a_password_never_expires(make_user: Any) -> None:
    """V2.1.10: no periodic rotation: a password set three years ago still signs in."""
    make_user("ann@example.test")
    with clock.frozen(clock.now() + dt.timedelta(days=3 * 365)):
        sign_in("ann@example.test", PASSWORD)


def test_password_fields_let_password_managers_and_paste_work(owner: Any, logged_in: Any) -> None:
    """V2.1.11: no autocomplete="off" or paste blocking on password fields; autocomplete hints for managers."""
    login = Client().get("/login/").content.decode()
    assert 'autocomplete="current-password"' in login
    change = logged_in(owner.user).get("/password/change/").content.decode()
    assert change.count('autocomplete="new-password"') == 2 and 'autocomplete="current-password"' in change
    for page in (login, change):
        fields = re.findall(r"<input[^>]*type=\"password\"[^>]*>", page)
        assert fields
        for field in fields:
            assert "onpaste" not in field and 'autocomplete="off"' not in field
        assert "onpaste" not in page and not re.search(r"<form[^>]*autocomplete=\"off\"", page)


def test_each_hash_has_its_own_random_salt_and_cost_12() -> None:
    """V2.4.1, V2.4.2, V2.4.4: bcrypt (SHA-256 pre-hash) with a fresh 128-bit salt per hash and cost 12."""
    first, second = make_password("Correct-Horse-9!"), make_password("Correct-Horse-9!")
    assert first != second
    salts = set()
    for encoded in (first, second):
        summary = identify_hasher(encoded).safe_summary(encoded)
        assert summary["work factor"] == 12
        bcrypt_hash = encoded.split("$", 1)[1]  # $2b$12$<22 characters of salt><31 of hash>
        salts.add(bcrypt_hash.split("$")[3][:22])
    assert len(salts) == 2


def test_a_legacy_pbkdf2_hash_is_upgraded_to_bcrypt_at_sign_in(make_user: Any) -> None:
    """V2.4.3: PBKDF2 only verifies old hashes, with Django's 1,000,000+ iterations, and is replaced at sign-in."""
    assert PBKDF2PasswordHasher.iterations >= 600_000
    user = make_user("ann@example.test")
    user.password = PBKDF2PasswordHasher().encode(PASSWORD, PBKDF2PasswordHasher().salt())
    user.save(update_fields=["password"])

    sign_in("ann@example.test", PASSWORD)
    user.refresh_from_db()
    assert identify_hasher(user.password).algorithm == "bcrypt_sha256"


def test_the_reset_email_carries_a_link_and_never_a_password_or_hash(owner: Any) -> None:
    """V2.5.1, V2.5.3: recovery sends a single-use link, never the current password, a new one or its hash."""
    client = Client()
    assert client.post("/password/reset/", {"email": "owner@acme.test"}).status_code == 302
    (message,) = mail.outbox
    owner.user.refresh_from_db()
    body = message.body + message.subject
    assert re.search(r"/password/reset/[^/\s]+/[^/\s]+/", body)
    assert PASSWORD not in body and owner.user.password not in body
    assert owner.user.password.split("$")[-1][-20:] not in body


def test_a_fresh_installation_has_no_account(db: None) -> None:
    """V2.5.4: migrations create no default, shared or administrator account (the demo's exist only after
    ``manage.py twig_demo``, which is for the demo)."""
    assert not get_user_model().objects.exists()
    assert not Membership.objects.exists()
