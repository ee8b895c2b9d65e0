"""Domain verification against a real DNS server (dnsmasq) on loopback."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from django.db import IntegrityError, transaction

from twig_auth.audit.models import AuditEvent
from twig_auth.exceptions import Conflict, InvalidInput, PermissionDenied
from twig_auth.sso import domains
from twig_auth.sso.dns import parse_nameserver
from twig_auth.sso.models import SsoDomain


def published(domain: SsoDomain) -> dict[str, list[str]]:
    return {domains.record_name(domain): [domains.record_value(domain)]}


def test_add_domain_normalizes_gives_a_token_and_is_audited(org, owner):
    claimed = domains.add_domain(org=org, domain=" Acme.TEST. ")
    assert claimed.domain == "acme.test" and claimed.verified_at is None
    assert len(claimed.verification_token) == 32 and claimed.verification_token.isalnum()
    assert domains.instructions(claimed) == {"type": "TXT", "name": "_twig-verification.acme.test",
                                             "value": f"twig-verification={claimed.verification_token}"}
    event = AuditEvent.objects.get(event="SSO_DOMAIN_ADDED")
    assert event.org == org and event.details == {"domain": "acme.test"}
    assert claimed.verification_token not in str(event.details)  # the token is not needed in the log


def test_add_domain_refuses_bad_names_duplicates_and_non_enterprise(org, make_org):
    for bad in ("", "not a domain", "acme", "-acme.test", "a" * 64 + ".test", "acme.test/evil", None, 42):
        with pytest.raises(InvalidInput) as exc:
            domains.add_domain(org=org, domain=bad)
        assert "domain" in exc.value.errors
    domains.add_domain(org=org, domain="acme.test")
    with pytest.raises(Conflict):
        domains.add_domain(org=org, domain="ACME.test")
    with pytest.raises(PermissionDenied):
        domains.add_domain(org=make_org("freebie", plan="free"), domain="freebie.test")
    assert SsoDomain.objects.count() == 1


def test_verified_when_the_txt_record_matches(org, dns_server):
    claimed = domains.add_domain(org=org, domain="acme.test")
    dns_server(txt=published(claimed))
    result = domains.verify_domain(domain=claimed)
    assert result.verified_at is not None
    claimed.refresh_from_db()
    assert claimed.is_verified
    event = AuditEvent.objects.get(event="SSO_DOMAIN_VERIFIED")
    assert event.org == org and event.details == {"domain": "acme.test"}
    assert domains.org_for_email("Jane@ACME.test") == org


def test_one_matching_record_among_several_is_enough(org, dns_server):
    claimed = domains.add_domain(org=org, domain="acme.test")
    name = domains.record_name(claimed)
    dns_server(txt={name: ["v=spf1 -all", domains.record_value(claimed), "google-site-verification=xyz"]})
    assert domains.verify_domain(domain=claimed).is_verified


def test_a_value_split_in_character_strings_is_joined(org, dns_server):
    claimed = domains.add_domain(org=org, domain="acme.test")
    # dnsmasq turns commas into separate character-strings of one record, as DNS hosts do with long values
    dns_server(txt={domains.record_name(claimed): [f'twig-verification=,{claimed.verification_token}']})
    assert domains.verify_domain(domain=claimed).is_verified


def test_wrong_token_is_refused_and_says_so(org, dns_server):
    claimed = domains.add_domain(org=org, domain="acme.test")
    dns_server(txt={domains.record_name(claimed): ["twig-verification=somebodyelsestoken"]})
    with pytest.raises(InvalidInput) as exc:
        domains.verify_domain(domain=claimed)
    assert "another token" in exc.value.detail and claimed.verification_token in exc.value.detail
    claimed.refresh_from_db()
    assert not claimed.is_verified
    assert not AuditEvent.objects.filter(event="SSO_DOMAIN_VERIFIED").exists()
    assert domains.org_for_email("jane@acme.test") is None


def test_no_record_nxdomain(org, dns_server):
    claimed = domains.add_domain(org=org, domain="acme.test")
    dns_server()
    with pytest.raises(InvalidInput) as exc:
        domains.verify_domain(domain=claimed)
    assert "does not exist in DNS" in exc.value.detail and "_twig-verification.acme.test" in exc.value.detail
    assert not SsoDomain.objects.verified().exists()


def test_name_without_txt_record(org, dns_server):
    claimed = domains.add_domain(org=org, domain="acme.test")
    dns_server(hosts=[domains.record_name(claimed)])  # the name exists (an A record) but has no TXT
    with pytest.raises(InvalidInput) as exc:
        domains.verify_domain(domain=claimed)
    assert "has no TXT record" in exc.value.detail


def test_other_txt_records_only(org, dns_server):
    claimed = domains.add_domain(org=org, domain="acme.test")
    dns_server(txt={domains.record_name(claimed): ["v=spf1 -all"]})
    with pytest.raises(InvalidInput) as exc:
        domains.verify_domain(domain=claimed)
    assert "No TXT record" in exc.value.detail


def test_a_silent_nameserver_times_out_with_a_clear_error(org, settings):
    claimed = domains.add_domain(org=org, domain="acme.test")
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a real socket that never answers
    silent.bind(("127.0.0.1", 0))
    try:
        settings.TWIG_AUTH = {**settings.TWIG_AUTH, "SSO_DNS_NAMESERVERS": [f"127.0.0.1:{silent.getsockname()[1]}"]}
        started = time.monotonic()
        with pytest.raises(InvalidInput) as exc:
            domains.verify_domain(domain=claimed)
        elapsed = time.monotonic() - started
    finally:
        silent.close()
    assert "did not answer" in exc.value.detail and "3 seconds" in exc.value.detail
    assert 2.5 < elapsed < 6


def test_a_domain_verified_by_another_org_is_a_conflict(org, make_org, dns_server):
    other = make_org("globex")
    theirs = domains.add_domain(org=other, domain="acme.test")
    ours = domains.add_domain(org=org, domain="acme.test")  # claiming is allowed; proving decides
    dns_server(txt={domains.record_name(ours): [domains.record_value(theirs), domains.record_value(ours)]})
    domains.verify_domain(domain=theirs)
    with pytest.raises(Conflict) as exc:
        domains.verify_domain(domain=ours)
    assert "another organization" in exc.value.detail
    ours.refresh_from_db()
    assert not ours.is_verified
    assert domains.org_for_email("jane@acme.test") == other


def test_the_database_refuses_a_second_verified_owner(org, make_org):
    """The partial unique constraint holds even if a service check were raced past."""
    from twig_auth.core import clock

    SsoDomain.objects.create(org=make_org("globex"), domain="acme.test", verified_at=clock.now())
    mine = SsoDomain.objects.create(org=org, domain="acme.test")
    with pytest.raises(IntegrityError), transaction.atomic():
        SsoDomain.objects.filter(pk=mine.pk).update(verified_at=clock.now())
    with pytest.raises(IntegrityError), transaction.atomic():
        SsoDomain.objects.create(org=org, domain="acme.test")


@pytest.mark.django_db(transaction=True)
def test_concurrent_verifications_by_two_orgs_leave_one_owner(make_org, dns_server):
    from django.db import connection

    first, second = make_org("one"), make_org("two")
    a = domains.add_domain(org=first, domain="acme.test")
    b = domains.add_domain(org=second, domain="acme.test")
    dns_server(txt={domains.record_name(a): [domains.record_value(a), domains.record_value(b)]})
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def run(item: SsoDomain) -> None:
        try:
            barrier.wait()
            domains.verify_domain(domain=item)
            outcomes.append("verified")
        except Conflict:
            outcomes.append("conflict")
        except Exception as exc:  # noqa: BLE001 - reported below
            outcomes.append(f"error {type(exc).__name__}: {exc}")
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(item,)) for item in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict", "verified"]
    assert SsoDomain.objects.verified().count() == 1


def test_org_for_email_matches_exactly_and_only_verified(org, make_org):
    from twig_auth.core import clock

    SsoDomain.objects.create(org=org, domain="acme.test", verified_at=clock.now())
    SsoDomain.objects.create(org=make_org("pending"), domain="pending.test")
    assert domains.org_for_email("a@acme.test") == org
    assert domains.org_for_email("a@ACME.TEST") == org
    assert domains.org_for_email("a@eu.acme.test") is None  # subdomains are not covered
    assert domains.org_for_email("a@acme.test.evil.test") is None
    assert domains.org_for_email("a@pending.test") is None
    assert domains.org_for_email("not-an-email") is None
    assert domains.org_for_email("") is None


def test_nameserver_setting_grammar():
    assert parse_nameserver("127.0.0.1") == parse_nameserver("127.0.0.1:53")
    assert parse_nameserver("127.0.0.1:5353").port == 5353
    assert parse_nameserver("[::1]:5353").ip == "::1" and parse_nameserver("::1").port == 53
    for bad in ("dns.google", "127.0.0.1:0", "127.0.0.1:99999", "[::1", "", None):
        with pytest.raises(ValueError):
            parse_nameserver(bad)
