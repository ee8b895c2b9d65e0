"""Password rules: every violated rule at once; bcrypt cost 12 first; long passwords work."""

from __future__ import annotations

import pytest
from django.contrib.auth.hashers import check_password, identify_hasher, make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from hypothesis import given, settings
from hypothesis import strategies as st

from twig_auth.passwords.validators import ComplexityValidator, password_problems


def codes(password: str) -> set[str]:
    return {e.code for e in password_problems(password)}


def test_a_password_meeting_every_rule_passes():
    ComplexityValidator().validate("Correct-Horse-9!")


def test_every_broken_rule_is_reported_at_once():
    assert codes("abc") == {"password_too_short", "password_no_upper", "password_no_digit", "password_no_special"}
    assert codes("") == {"password_too_short", "password_no_upper", "password_no_lower", "password_no_digit",
                         "password_no_special"}
    with pytest.raises(ValidationError) as info:
        validate_password("abc")
    messages = info.value.messages
    assert "Use at least 8 characters." in messages
    assert "Add an uppercase letter." in messages
    assert "Add a digit." in messages
    assert "Add a special character such as ! ? # or %." in messages


@pytest.mark.parametrize("password,missing", [
    ("lowercase-only-1", "password_no_upper"),
    ("UPPERCASE-ONLY-1", "password_no_lower"),
    ("No-Digits-Here!", "password_no_digit"),
    ("NoSpecial1234", "password_no_special"),
    ("Sh0rt!a", "password_too_short"),
])
def test_each_rule_on_its_own(password, missing):
    assert codes(password) == {missing}


def test_unicode_letters_and_symbols_count():
    assert codes("Ünïcødé-pässwörd-9") == set()
    assert codes("Пароль-надёжный-7") == set()
    assert codes("Abcdefg1 ") == {"password_no_special"}, "a space is not a special character"
    assert "password_invalid_character" in codes("Abcdef-1\x00x")


def test_the_first_hasher_is_bcrypt_sha256_with_cost_12():
    encoded = make_password("Correct-Horse-9!")
    hasher = identify_hasher(encoded)
    assert hasher.algorithm == "bcrypt_sha256"
    assert hasher.safe_summary(encoded)["work factor"] == 12


def test_passwords_longer_than_72_bytes_hash_and_verify_without_truncation():
    long = "Aa1!" + "é" * 100  # 204 bytes in UTF-8
    encoded = make_password(long)
    assert check_password(long, encoded)
    assert not check_password(long[:-1] + "e", encoded), "bytes past 72 must still matter"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_problems_are_exactly_the_rules_broken(password):
    found = codes(password)
    assert ("password_too_short" in found) == (len(password) < 8)
    assert ("password_no_digit" in found) == (not any(c.isdigit() for c in password))
    assert ("password_no_upper" in found) == (not any(c.isupper() for c in password))
