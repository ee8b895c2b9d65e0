"""The key format: generate → parse, every malformation refused with a helpful message, checksum without I/O."""

from __future__ import annotations

import re
import string
import zlib

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from twig_auth.apikeys import format as key_format
from twig_auth.apikeys.format import KeyFormatError, ParsedKey, checksum, generate, parse
from twig_auth.apikeys.verification import authenticate_key
from twig_auth.core.crypto import BASE62
from twig_auth.exceptions import InvalidApiKey

KEY_RE = re.compile(r"twigsk_(live|test)_[0-9A-Za-z]{12}[0-9A-Za-z]{32}[0-9A-Za-z]{6}")


def _base62(value: int, width: int) -> str:
    out = ""
    for _ in range(width):
        value, digit = divmod(value, 62)
        out = BASE62[digit] + out
    return out


# --- vectors --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("environment", ["live", "test"])
def test_generated_key_has_prefix_key_id_secret_and_crc32_checksum(environment):
    parsed = generate(environment)
    full = parsed.full
    assert KEY_RE.fullmatch(full), full
    assert full.startswith(f"twigsk_{environment}_")
    assert len(full) == key_format.KEY_LENGTH == len("twigsk_live_") + 12 + 32 + 6 == 62
    assert len(parsed.key_id) == 12 and len(parsed.secret) >= 32
    assert set(parsed.key_id + parsed.secret) <= set(string.ascii_letters + string.digits)
    head, crc = full[:-6], full[-6:]
    assert head == f"twigsk_{environment}_{parsed.key_id}{parsed.secret}"
    assert crc == _base62(zlib.crc32(head.encode()), 6)  # CRC32 in 6 base62 digits, zero padded
    assert parsed.prefix == f"twigsk_{environment}_{parsed.key_id}"
    assert parse(full) == parsed == ParsedKey(environment, parsed.key_id, parsed.secret, full)


def test_checksum_known_vectors():
    assert checksum("") == "000000"  # crc32("") == 0
    assert checksum("twigsk_live_") == _base62(zlib.crc32(b"twigsk_live_"), 6)
    assert len(checksum("x" * 1000)) == 6


def test_keys_are_random_and_key_id_may_be_given():
    keys = {generate("live").full for _ in range(200)}
    assert len(keys) == 200
    assert len({k[12:24] for k in keys}) == 200
    same_id = generate("test", key_id="AAAAAAAAAAAA")
    assert same_id.key_id == "AAAAAAAAAAAA" and parse(same_id.full).key_id == "AAAAAAAAAAAA"


def test_generate_refuses_unknown_environment():
    with pytest.raises(ValueError, match="environment"):
        generate("prod")


# --- malformations ------------------------------------------------------------------------------------

GOOD = generate("live", key_id="Abcdefghijkl").full  # distinct neighbours at 20/21 for the swap case


def _flip(key: str, index: int) -> str:
    char = key[index]
    replacement = "a" if char != "a" else "b"
    return key[:index] + replacement + key[index + 1:]


MALFORMED = [
    pytest.param("", "empty", id="empty"),
    pytest.param(" " + GOOD, "spaces or line breaks around it", id="leading-space"),
    pytest.param(GOOD + "\n", "spaces or line breaks around it", id="trailing-newline"),
    pytest.param("\t" + GOOD + " ", "spaces or line breaks around it", id="both-sides"),
    pytest.param(GOOD[:30] + " " + GOOD[30:], "contains whitespace", id="inner-space"),
    pytest.param(GOOD[:30] + "\n" + GOOD[30:], "contains whitespace", id="inner-newline"),
    pytest.param("Bearer " + GOOD, 'preceded by "Bearer" twice', id="bearer-inside"),
    pytest.param("bearer " + GOOD, 'preceded by "Bearer" twice', id="bearer-lowercase"),
    pytest.param("sk_live_" + GOOD[12:], "start with twigsk_live_ or twigsk_test_", id="stripe-prefix"),
    pytest.param("twigsk_prod_" + GOOD[12:], "start with twigsk_live_ or twigsk_test_", id="unknown-env"),
    pytest.param("twigsk_" + GOOD[12:], "start with twigsk_live_ or twigsk_test_", id="no-env"),
    pytest.param("TWIGSK_LIVE_" + GOOD[12:], "start with twigsk_live_ or twigsk_test_", id="upper-prefix"),
    pytest.param(GOOD[:-1], "wrong length", id="truncated-by-one"),
    pytest.param(GOOD[:40], "wrong length", id="truncated"),
    pytest.param(GOOD + "a", "wrong length", id="extra-char"),
    pytest.param(GOOD[:30] + "-" + GOOD[31:], "characters that never appear", id="dash"),
    pytest.param(GOOD[:30] + "é" + GOOD[31:], "characters that never appear", id="non-ascii"),
    pytest.param(GOOD[:30] + "_" + GOOD[31:], "characters that never appear", id="underscore"),
    pytest.param(_flip(GOOD, 20), "checksum does not match", id="flipped-key-id"),
    pytest.param(_flip(GOOD, 40), "checksum does not match", id="flipped-secret"),
    pytest.param(_flip(GOOD, 60), "checksum does not match", id="flipped-checksum"),
    pytest.param(GOOD[:20] + GOOD[21] + GOOD[20] + GOOD[22:], "checksum does not match", id="swapped-pair"),
    pytest.param(GOOD.replace("live", "test", 1), "checksum does not match", id="env-swapped"),
]


@pytest.mark.parametrize(("raw", "hint"), MALFORMED)
def test_malformed_key_is_refused_with_a_helpful_message(raw, hint):
    with pytest.raises(KeyFormatError) as excinfo:
        parse(raw)
    assert hint in str(excinfo.value)


@pytest.mark.parametrize("raw", [None, 123, b"twigsk_live_x", ["twigsk"]])
def test_non_string_is_refused(raw):
    with pytest.raises(KeyFormatError, match="empty"):
        parse(raw)


def test_length_message_names_the_expected_length():
    with pytest.raises(KeyFormatError, match=r"\(61 characters, expected 62\)"):
        parse(GOOD[:-1])


# --- properties ---------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["live", "test"]), st.text(alphabet=BASE62, min_size=12, max_size=12))
def test_any_generated_key_parses(environment, key_id):
    parsed = generate(environment, key_id=key_id)
    assert parse(parsed.full) == parsed
    assert key_format.looks_like_key(parsed.full)


@settings(max_examples=500, deadline=None)
@given(st.data())
def test_any_single_character_substitution_in_the_body_is_rejected(data):
    key = generate(data.draw(st.sampled_from(["live", "test"]))).full
    index = data.draw(st.integers(min_value=len("twigsk_live_"), max_value=len(key) - 1))
    replacement = data.draw(st.characters(codec="utf-8").filter(lambda c: c != key[index]))
    with pytest.raises(KeyFormatError) as excinfo:
        parse(key[:index] + replacement + key[index + 1:])
    message = str(excinfo.value)
    if replacement in BASE62:
        assert "checksum" in message  # CRC32 catches every single-character error
    else:
        assert "checksum" not in message


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.text(),
    st.text(alphabet=BASE62 + "_ ", min_size=50, max_size=70),
    st.builds(lambda env, body: f"twigsk_{env}_{body}", st.sampled_from(["live", "test", "prod"]),
              st.text(alphabet=BASE62, min_size=48, max_size=52)),
))
def test_random_text_never_parses_unless_it_is_a_valid_key(raw):
    valid = KEY_RE.fullmatch(raw) is not None and checksum(raw[:-6]) == raw[-6:]
    assume(not valid)  # a random 50-char body matches its checksum with probability 62**-6
    with pytest.raises(KeyFormatError) as excinfo:
        parse(raw)
    assert str(excinfo.value)  # always a message


# --- no I/O for a bad checksum ----------------------------------------------------------------------------


def test_bad_checksum_is_refused_without_sql_or_cache(django_assert_num_queries, store_trips, db):
    bad = _flip(generate("live").full, 30)
    with django_assert_num_queries(0):
        with pytest.raises(InvalidApiKey, match="checksum"):
            authenticate_key(bad)
        for malformed in ("", "Bearer " + GOOD, GOOD[:-1], GOOD + " "):
            with pytest.raises(InvalidApiKey):
                authenticate_key(malformed)
    assert store_trips.count == 0, store_trips.calls
