"""netaccess.enforce.check: the org list AND the key's list, IPv4/IPv6 matrix, client IP rules, IP_BLOCKED
audit with coalescing, a WARNING log without secrets, propagation of a settings change, and 0 SQL / 0 cache
trips on the warm allowed path."""

from __future__ import annotations

import logging
import socket
from typing import Any

import pytest
from django.core import cache as django_cache
from django.test import RequestFactory

from twig_auth.audit.models import AuditEvent
from twig_auth.exceptions import IpNotAllowed
from twig_auth.netaccess import enforce
from twig_auth.orgs import services as org_services
from twig_auth.orgs.models import Organization

rf = RequestFactory()


def request(remote: str = "203.0.113.7", xff: str | None = None, path: str = "/api/agents", **extra: Any) -> Any:
    req = rf.get(path, REMOTE_ADDR=remote, HTTP_USER_AGENT="curl/8.5", **extra)
    if xff is not None:
        req.META["HTTP_X_FORWARDED_FOR"] = xff
    return req


def set_list(org: Organization, cidrs: list[str]) -> None:
    org_services.update_org_settings(org=org, patch={"ipAllowlist": cidrs})


def allowed(org: Organization, remote: str, **kw: Any) -> bool:
    try:
        enforce.check(request(remote, **{k: v for k, v in kw.items() if k == "xff"}), org_id=org.pk,
                      credential=kw.get("credential", "session"), user_id=kw.get("user_id"),
                      key_allowlist=kw.get("key_allowlist"), key_id=kw.get("key_id"))
    except IpNotAllowed:
        return False
    return True


def blocked_events(org: Organization | None = None) -> list[AuditEvent]:
    qs = AuditEvent.objects.filter(event="IP_BLOCKED")
    return list(qs.filter(org=org) if org is not None else qs)


@pytest.fixture(autouse=True)
def _fresh() -> None:
    enforce.forget()


MATRIX = [
    # (org list, client address as the socket reports it, allowed)
    (["203.0.113.7/32"], "203.0.113.7", True),
    (["203.0.113.7/32"], "203.0.113.8", False),
    (["198.51.100.0/24"], "198.51.100.1", True),
    (["198.51.100.0/24"], "198.51.100.255", True),
    (["198.51.100.0/24"], "198.51.101.0", False),
    (["198.51.100.0/24"], "::ffff:198.51.100.9", True),  # IPv4-mapped IPv6 is the IPv4 client
    (["198.51.100.0/24"], "::ffff:198.51.101.9", False),
    (["2001:db8:1:2::/64"], "2001:db8:1:2::1", True),
    (["2001:db8:1:2::/64"], "2001:db8:1:2:ffff:ffff:ffff:ffff", True),
    (["2001:db8:1:2::/64"], "2001:db8:1:3::1", False),
    (["2001:db8:1:2::/64"], "198.51.100.1", False),
    (["::1"], "::1", True),
    (["::1"], "127.0.0.1", False),
    (["::1"], "::2", False),
    (["198.51.100.0/24", "2001:db8:1:2::/64"], "2001:db8:1:2::abcd", True),
    (["198.51.100.0/24", "2001:db8:1:2::/64"], "198.51.100.77", True),
    (["198.51.100.0/24", "2001:db8:1:2::/64"], "192.0.2.1", False),
]


@pytest.mark.parametrize(("cidrs", "remote", "expected"), MATRIX)
def test_org_allowlist_matrix(org, cidrs, remote, expected):
    set_list(org, cidrs)
    assert allowed(org, remote) is expected
    assert len(blocked_events(org)) == (0 if expected else 1)


def test_an_empty_list_allows_every_address(org):
    for remote in ("203.0.113.7", "2001:db8::1", "::1", "garbage"):
        assert allowed(org, remote)
    assert not blocked_events()


def test_a_spoofed_forwarded_for_from_an_untrusted_peer_does_not_get_in(org, settings):
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "TRUSTED_PROXIES": None}
    set_list(org, ["198.51.100.0/24"])
    assert not allowed(org, "203.0.113.50", xff="198.51.100.1")
    [event] = blocked_events(org)
    assert event.ip_address == "203.0.113.50"  # the socket address is the client, and what is recorded


def test_with_one_trusted_proxy_the_forwarded_client_is_checked(org, settings):
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "TRUSTED_PROXIES": 1}
    set_list(org, ["198.51.100.0/24"])
    assert allowed(org, "10.0.0.2", xff="198.51.100.1")  # the proxy itself is outside the list: irrelevant
    assert not allowed(org, "198.51.100.1", xff="203.0.113.50")  # the proxy inside, the client outside
    assert not allowed(org, "10.0.0.2", xff="198.51.100.1, 203.0.113.50")  # only the last hop is ours
    assert [e.ip_address for e in blocked_events(org)] == ["203.0.113.50"]  # coalesced: same org, IP, subject


def test_other_orgs_are_unaffected(org, make_org):
    other = make_org("globex")
    set_list(org, ["198.51.100.0/24"])
    assert not allowed(org, "203.0.113.7")
    assert allowed(other, "203.0.113.7")
    assert allowed(other, "198.51.100.1")
    assert [e.org_id for e in blocked_events()] == [org.pk]


def test_the_key_list_narrows_the_org_list(org):
    set_list(org, ["198.51.100.0/24"])
    key_list = ("198.51.100.7/32",)
    assert allowed(org, "198.51.100.7", credential="api_key", key_allowlist=key_list, key_id="k1")
    assert not allowed(org, "198.51.100.8", credential="api_key", key_allowlist=key_list, key_id="k1")
    assert not allowed(org, "203.0.113.7", credential="api_key", key_allowlist=("0.0.0.0/0",), key_id="k2")
    by = {e.details["key_id"]: e.details["blocked_by"] for e in blocked_events(org)}
    assert by == {"k1": "api_key", "k2": "org"}


def test_a_key_list_alone_applies_without_an_org_list(org):
    key_list = ["2001:db8::/32"]
    assert allowed(org, "2001:db8:ffff::1", credential="api_key", key_allowlist=key_list, key_id="k1")
    assert not allowed(org, "198.51.100.1", credential="api_key", key_allowlist=key_list, key_id="k1")
    [event] = blocked_events(org)
    assert event.details["blocked_by"] == "api_key"


def test_a_block_is_audited_once_per_org_ip_and_credential_with_the_request_facts(org, owner, caplog):
    set_list(org, ["198.51.100.0/24"])
    caplog.set_level(logging.WARNING, logger="twig_auth.netaccess")
    for _ in range(5):
        assert not allowed(org, "203.0.113.7", credential="api_key", user_id=owner.user_id, key_id="AbCdEf123456")
    [event] = blocked_events(org)
    assert (event.user_id, event.email, event.ip_address, event.user_agent) == (
        owner.user_id, "owner@acme.test", "203.0.113.7", "curl/8.5")
    assert event.details == {"credential": "api_key", "blocked_by": "org", "path": "/api/agents", "method": "GET",
                             "key_id": "AbCdEf123456"}
    # another address, another credential or another key of the same org: each its own event
    assert not allowed(org, "203.0.113.8", credential="api_key", user_id=owner.user_id, key_id="AbCdEf123456")
    assert not allowed(org, "203.0.113.7", credential="session", user_id=owner.user_id)
    assert not allowed(org, "203.0.113.7", credential="api_key", user_id=owner.user_id, key_id="Other0000000")
    assert len(blocked_events(org)) == 4
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 8  # every refusal is logged, coalesced or not
    assert "203.0.113.7" in warnings[0].getMessage() and "twigsk_" not in caplog.text


def test_coalescing_survives_a_failing_cache(org, settings):
    set_list(org, ["198.51.100.0/24"])
    with socket.socket() as s:  # a port nobody listens on: a Redis that is down
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings.CACHES = {**settings.CACHES, "default": {
        "BACKEND": "django_redis.cache.RedisCache", "LOCATION": f"redis://127.0.0.1:{port}/0",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2}}}
    for _ in range(3):
        assert not allowed(org, "203.0.113.7")  # still refused, never a 500
    assert len(blocked_events(org)) == 1  # coalesced per process while the cache is down


def test_a_change_on_this_worker_applies_at_once(org):
    set_list(org, ["198.51.100.0/24"])
    assert not allowed(org, "203.0.113.7")
    set_list(org, ["198.51.100.0/24", "203.0.113.0/24"])
    assert allowed(org, "203.0.113.7")
    set_list(org, [])
    assert allowed(org, "192.0.2.1")


def test_a_stored_list_with_no_usable_range_refuses_everything(org):
    Organization.objects.filter(pk=org.pk).update(settings={"ipAllowlist": ["not-a-range"]})
    from twig_auth.orgs.policy import forget_cached

    forget_cached()
    assert not allowed(org, "203.0.113.7")


@pytest.mark.parametrize("cidrs", [[], ["198.51.100.0/24", "2001:db8::/32"]])
def test_the_warm_allowed_path_costs_no_query_and_no_cache_trip(org, cidrs, django_assert_num_queries, monkeypatch):
    set_list(org, cidrs)
    assert allowed(org, "198.51.100.1", key_allowlist=["198.51.100.0/25"] if cidrs else None)  # warm up

    class NoCache:
        def __getitem__(self, alias: str) -> Any:
            raise AssertionError("the allowed path must not touch the cache")

    monkeypatch.setattr(django_cache, "caches", NoCache())
    with django_assert_num_queries(0):
        for _ in range(50):
            assert allowed(org, "198.51.100.1", key_allowlist=["198.51.100.0/25"] if cidrs else None)
