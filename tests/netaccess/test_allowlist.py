"""The pure allowlist matcher and the address parser it shares with client_ip."""

from __future__ import annotations

import ipaddress

import pytest

from twig_auth.netaccess.allowlist import compile_allowlist, normalize_ip, parse_ip

RANGES = ["192.168.1.0/24", "10.0.0.5/32", "2001:db8::/32", "2001:db8:ffff::1/128"]


@pytest.mark.parametrize(("ip", "allowed"), [
    ("192.168.1.0", True), ("192.168.1.77", True), ("192.168.1.255", True),
    ("192.168.0.255", False), ("192.168.2.0", False),
    ("10.0.0.5", True), ("10.0.0.4", False), ("10.0.0.6", False),  # /32 is exactly one address
    ("2001:db8::1", True), ("2001:db8:ffff:ffff::", True), ("2001:db9::", False), ("2001:db7:ffff::1", False),
    ("2001:0db8:0000::0001", True),  # any spelling of an address in range
    ("::ffff:192.168.1.9", True), ("::ffff:10.0.0.5", True), ("::ffff:10.0.0.6", False),  # mapped → IPv4
    ("[2001:db8::1]", True), (" 192.168.1.9 ", True),
    ("", False), ("garbage", False), ("192.168.1", False), ("192.168.1.300", False), ("192.168.001.1", False),
    ("fe80::1%eth0", False), (None, False), (3232235777, False), ("192.168.1.1/24", False),
])
def test_allowlist_matrix(ip, allowed):
    assert compile_allowlist(RANGES).allows(ip) is allowed


def test_slash_128_is_exactly_one_address():
    allow = compile_allowlist(["2001:db8::5/128"])
    assert allow.allows("2001:db8::5")
    assert not allow.allows("2001:db8::4") and not allow.allows("2001:db8::6")


def test_families_are_kept_apart():
    """The integer of an IPv4 address is small; it must not match a low IPv6 range, nor the reverse."""
    assert not compile_allowlist(["::/96"]).allows("1.2.3.4")  # ::/96 is IPv4-compatible, not mapped
    assert not compile_allowlist(["0.0.0.0/1"]).allows("::1")
    assert not compile_allowlist(["10.0.0.0/8"]).allows("::a00:1")


def test_mapped_ranges_become_ipv4_ranges():
    allow = compile_allowlist(["::ffff:10.0.0.0/104"])
    assert allow.allows("10.9.8.7") and allow.allows("::ffff:10.9.8.7")
    assert not allow.allows("11.0.0.1")


def test_an_ipv6_range_containing_the_mapped_block_covers_ipv4():
    assert compile_allowlist(["::/0"]).allows("203.0.113.9")
    assert not compile_allowlist(["2000::/3"]).allows("203.0.113.9")


def test_empty_list_allows_everything_even_garbage():
    allow = compile_allowlist([])
    assert allow.allows("203.0.113.9") and allow.allows("2001:db8::1") and allow.allows("garbage")
    assert allow.empty and not compile_allowlist(["10.0.0.0/8"]).empty


def test_host_bits_are_accepted_and_overlaps_merge():
    allow = compile_allowlist(["10.0.0.5/24", "10.0.0.128/25", "10.0.1.0/24", "10.0.3.0/24"])
    assert allow.v4_starts == (int(ipaddress.ip_address("10.0.0.0")), int(ipaddress.ip_address("10.0.3.0")))
    assert allow.allows("10.0.1.200") and not allow.allows("10.0.2.1") and allow.allows("10.0.3.1")


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "banana", "", "2001:db8::/129", None, 42])
def test_invalid_ranges_raise_a_clear_error(bad):
    with pytest.raises(ValueError, match="CIDR range"):
        compile_allowlist([bad])


def test_one_string_is_not_a_list():
    with pytest.raises(ValueError, match="list"):
        compile_allowlist("10.0.0.0/8")


def test_five_hundred_ranges_match_by_interval():
    ranges = [f"10.{i // 256}.{i % 256}.0/24" for i in range(0, 1000, 2)]  # 500 disjoint, with gaps between
    ranges += [f"2001:db8:{i:x}::/48" for i in range(0, 20, 2)]
    allow = compile_allowlist(ranges)
    assert len(allow.v4_starts) == 500 and len(allow.v6_starts) == 10
    for i in range(1000):
        ip = f"10.{i // 256}.{i % 256}.77"
        assert allow.allows(ip) is (i % 2 == 0), ip
    assert allow.allows("2001:db8:12::9") and not allow.allows("2001:db8:13::9")
    assert not allow.allows("9.255.255.255") and not allow.allows("10.3.232.0")


@pytest.mark.parametrize(("text", "expected"), [
    ("203.0.113.9", "203.0.113.9"), ("  203.0.113.9\t", "203.0.113.9"), ("203.0.113.9:4431", "203.0.113.9"),
    ("[2001:DB8::1]", "2001:db8::1"), ("[2001:db8::1]:443", "2001:db8::1"), ("2001:db8::1", "2001:db8::1"),
    ("::ffff:203.0.113.9", "203.0.113.9"), ("[::ffff:cb00:7109]:80", "203.0.113.9"),
    ("", None), ("   ", None), ("unknown", None), ("203.0.113.9:http", None), ("203.0.113.9:", None),
    ("[2001:db8::1", None), ("[2001:db8::1]x", None), ("[2001:db8::1]:", None), ("[]", None),
    ("203.0.113.9:80:80", None), ("example.com", None), ("1" * 80, None), ("fe80::1%eth0", None),
    ("unix:/tmp/sock", None),
])
def test_normalize_ip(text, expected):
    assert normalize_ip(text) == expected


def test_parse_ip_returns_address_objects():
    assert parse_ip("::ffff:1.2.3.4") == ipaddress.IPv4Address("1.2.3.4")
    assert parse_ip("::1") == ipaddress.IPv6Address("::1")
