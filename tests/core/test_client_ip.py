"""client_ip: the socket address unless trusted proxies are configured, and never a spoofed header."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from twig_auth.checks import check_settings
from twig_auth.core.http import client_ip

SPOOF = "6.6.6.6"
rf = RequestFactory()


def request(remote: str | None = "203.0.113.9", xff: str | None = None):
    req = rf.get("/")
    if remote is None:
        del req.META["REMOTE_ADDR"]
    else:
        req.META["REMOTE_ADDR"] = remote
    if xff is not None:
        req.META["HTTP_X_FORWARDED_FOR"] = xff
    return req


@pytest.fixture
def proxies(settings):
    def use(value):
        settings.TWIG_AUTH = {**settings.TWIG_AUTH, "TRUSTED_PROXIES": value}

    return use


# --- no trusted proxies (the default) ---------------------------------------------------------------------

@pytest.mark.parametrize("value", [None, 0, []])
def test_without_trusted_proxies_the_header_is_ignored(proxies, value):
    proxies(value)
    assert client_ip(request("203.0.113.9", xff=SPOOF)) == "203.0.113.9"
    assert client_ip(request("203.0.113.9", xff=f"{SPOOF}, 10.0.0.1")) == "203.0.113.9"


def test_the_default_ignores_the_header(settings):
    settings.TWIG_AUTH = {k: v for k, v in settings.TWIG_AUTH.items() if k != "TRUSTED_PROXIES"}
    assert client_ip(request("198.51.100.4", xff=SPOOF)) == "198.51.100.4"


@pytest.mark.parametrize(("remote", "expected"), [
    ("::ffff:198.51.100.4", "198.51.100.4"), ("2001:DB8::7", "2001:db8::7"), (" 198.51.100.4 ", "198.51.100.4"),
    ("garbage", "0.0.0.0"), ("", "0.0.0.0"), (None, "0.0.0.0"),
])
def test_the_socket_address_is_normalized_and_never_garbage(proxies, remote, expected):
    proxies(None)
    assert client_ip(request(remote)) == expected


# --- a hop count ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("count", "xff", "expected"), [
    (1, "198.51.100.4", "198.51.100.4"),
    (1, f"{SPOOF}, 198.51.100.4", "198.51.100.4"),  # the client's own entry is left of ours: never read
    (2, f"{SPOOF}, 198.51.100.4, 10.0.0.2", "198.51.100.4"),
    (2, f"{SPOOF},198.51.100.4,10.0.0.2", "198.51.100.4"),
    (1, "[2001:db8::4]:51234", "2001:db8::4"),
    (1, "198.51.100.4:51234", "198.51.100.4"),
    (1, "::ffff:198.51.100.4", "198.51.100.4"),
    (1, "  198.51.100.4  ", "198.51.100.4"),
    (3, "198.51.100.4, 10.0.0.2", "198.51.100.4"),  # shorter chain than the count: leftmost present
    (2, "garbage, 10.0.0.2", "10.0.0.2"),  # unusable entry: one hop inwards
    (1, "garbage", "203.0.113.9"),  # ... and then the socket
    (2, "198.51.100.4, ", "198.51.100.4"),
    (1, "198.51.100.4, ", "203.0.113.9"),
    (1, "", "203.0.113.9"),
    (1, " , ,", "203.0.113.9"),
    (1, None, "203.0.113.9"),
])
def test_count_takes_the_nth_entry_from_the_right(proxies, count, xff, expected):
    proxies(count)
    assert client_ip(request("203.0.113.9", xff=xff)) == expected


def test_count_never_returns_an_invalid_address(proxies):
    proxies(1)
    assert client_ip(request("garbage", xff="also garbage")) == "0.0.0.0"


def test_count_reads_only_its_own_hops_of_a_huge_header(proxies):
    proxies(2)
    xff = ", ".join([SPOOF] * 50_000 + ["198.51.100.4", "10.0.0.2"])
    assert client_ip(request("10.0.0.1", xff=xff)) == "198.51.100.4"


# --- CIDR ranges ------------------------------------------------------------------------------------------

TRUSTED = ["10.0.0.0/8", "2001:db8:ffff::/48"]


@pytest.mark.parametrize("remote", ["203.0.113.9", "11.0.0.1", "2001:db8::1"])
def test_ranges_ignore_the_header_from_an_untrusted_peer(proxies, remote):
    proxies(TRUSTED)
    assert client_ip(request(remote, xff=SPOOF)) == remote
    assert client_ip(request(remote, xff=f"{SPOOF}, 10.0.0.7")) == remote


@pytest.mark.parametrize(("remote", "xff", "expected"), [
    ("10.0.0.1", "198.51.100.4", "198.51.100.4"),
    ("10.0.0.1", f"{SPOOF}, 198.51.100.4", "198.51.100.4"),
    ("10.0.0.1", f"{SPOOF}, 198.51.100.4, 10.1.2.3, 10.9.9.9", "198.51.100.4"),  # trusted hops skipped
    ("::ffff:10.0.0.1", "198.51.100.4", "198.51.100.4"),  # mapped peer is the IPv4 proxy
    ("2001:db8:ffff::1", "[2001:db8::4]:443, 2001:db8:ffff::2", "2001:db8::4"),
    ("10.0.0.1", "::ffff:198.51.100.4, ::ffff:10.0.0.2", "198.51.100.4"),
    ("10.0.0.1", " 198.51.100.4:1234 ,10.0.0.2 ", "198.51.100.4"),
    ("10.0.0.1", f"{SPOOF}, garbage, 10.0.0.2", "10.0.0.2"),  # unusable entry: stop at the last trusted hop
    ("10.0.0.1", f"{SPOOF}, garbage", "10.0.0.1"),
    ("10.0.0.1", f"{SPOOF}, , 10.0.0.2", "10.0.0.2"),
    ("10.0.0.1", "10.0.0.3, 10.0.0.2", "10.0.0.3"),  # every hop trusted: the farthest one
    ("10.0.0.1", "", "10.0.0.1"),
    ("10.0.0.1", None, "10.0.0.1"),
])
def test_ranges_walk_from_the_right_past_trusted_proxies(proxies, remote, xff, expected):
    proxies(TRUSTED)
    assert client_ip(request(remote, xff=xff)) == expected


def test_ranges_with_an_unusable_peer_ignore_the_header(proxies):
    proxies(TRUSTED)
    assert client_ip(request("garbage", xff="198.51.100.4")) == "0.0.0.0"
    assert client_ip(request(None, xff="198.51.100.4")) == "0.0.0.0"


def test_a_changed_setting_takes_effect(proxies):
    req = request("10.0.0.1", xff="198.51.100.4")
    proxies(None)
    assert client_ip(req) == "10.0.0.1"
    proxies(["10.0.0.0/8"])
    assert client_ip(req) == "198.51.100.4"
    proxies(["192.168.0.0/16"])
    assert client_ip(req) == "10.0.0.1"


def test_throttle_buckets_are_keyed_by_client_ip(proxies):
    """The sign-in throttles key their IP bucket with client_ip: a spoofed header from an untrusted peer does
    not give a fresh bucket, and two clients behind a trusted proxy get one bucket each."""
    from twig_auth.ratelimit.endpoints import check

    def limited(req):
        return not check(req, "test.client_ip", account=None, ip_rate="1/h", account_rate="1/h").allowed

    proxies(["10.0.0.0/8"])
    assert not limited(request("203.0.113.9", xff="198.51.100.1"))
    assert limited(request("203.0.113.9", xff="198.51.100.2")), "an untrusted peer cannot rotate its IP"
    assert not limited(request("10.0.0.1", xff="198.51.100.3"))
    assert not limited(request("10.0.0.1", xff="198.51.100.4")), "distinct clients behind the proxy"
    assert limited(request("10.0.0.2", xff=f"{SPOOF}, 198.51.100.4"))


# --- validation -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [None, 0, 1, 3, [], ["10.0.0.0/8"], ["10.0.0.0/8", "2001:db8::/32"],
                                   ["10.0.0.5"], ("10.0.0.0/8",)])
def test_valid_settings_pass_the_check(settings, proxies, value):
    settings.DEBUG = True
    proxies(value)
    assert [m for m in check_settings() if "TRUSTED_PROXIES" in m.msg] == []


@pytest.mark.parametrize(("value", "words"), [
    (True, "hop"), (-1, "between 0"), (17, "between 0"), ("10.0.0.0/8", "list of proxy CIDR"),
    (["10.0.0.0/33"], "not a valid"), (["proxy.internal"], "not a valid"), ([10], "not a CIDR"),
    (["0.0.0.0/0"], "every address"), (["::/0"], "every address"), ({"count": 1}, "got dict"),
    (["10.0.0.0/8"] * 1001, "at most"),
])
def test_invalid_settings_fail_with_e001(settings, proxies, value, words):
    settings.DEBUG = True
    proxies(value)
    messages = [m for m in check_settings() if "TRUSTED_PROXIES" in m.msg]
    assert [m.id for m in messages] == ["twig_auth.E001"]
    assert words in messages[0].msg
