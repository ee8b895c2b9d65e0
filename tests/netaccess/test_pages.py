"""Pages: the 403 "network not allowed" page (sign-out and org switch stay reachable, the admin is covered),
Settings → Security → IP Allowlist (line-numbered errors, self-lockout, enterprise only, admins only, step-up,
audited save), Access Logs (newest first, filter, 50 per page), per-key lists on the API keys page, E007."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from django.contrib.admin.utils import quote
from django.core import checks
from django.urls import reverse

from tests.pages.conftest import field_errors, text
from tests.support.clients import signed_in
from twig_auth.apikeys.models import ApiKey
from twig_auth.audit.models import AuditEvent
from twig_auth.checks import IP_MIDDLEWARE, MFA_MIDDLEWARE, check_settings
from twig_auth.exceptions import IpNotAllowed
from twig_auth.netaccess import enforce
from twig_auth.orgs import services as org_services
from twig_auth.orgs.models import Organization

PAGE = "/settings/sessions/"
IP_PAGE = "/settings/security/ip-allowlist/"
LOGS = "/settings/security/access-logs/"
HOME_IP = "127.0.0.1"  # the Django test client's REMOTE_ADDR


@pytest.fixture(autouse=True)
def _setup(settings: Any) -> None:
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "API_KEY_BCRYPT_ROUNDS": 4}
    enforce.forget()


def set_list(org: Organization, cidrs: list[str]) -> None:
    org_services.update_org_settings(org=org, patch={"ipAllowlist": cidrs})


def stored(org: Organization) -> list[str]:
    return (Organization.objects.get(pk=org.pk).settings or {}).get("ipAllowlist", [])


# --- the blocked page ------------------------------------------------------------------------------------------

def test_a_member_outside_the_list_gets_the_blocked_page_and_one_event(org, owner):
    set_list(org, ["198.51.100.0/24"])
    client = signed_in(owner)
    response = client.get(PAGE, REMOTE_ADDR="203.0.113.9", HTTP_USER_AGENT="Firefox")
    assert response.status_code == 403
    body = text(response)
    assert "Your network is not allowed for Acme" in body
    assert '<code data-testid="blocked-ip">203.0.113.9</code>' in body
    assert 'action="/logout/"' in body
    assert client.get("/", REMOTE_ADDR="203.0.113.9").status_code == 403
    [event] = AuditEvent.objects.filter(event="IP_BLOCKED")
    assert (event.org_id, event.user_id, event.ip_address, event.user_agent) == (org.pk, owner.user_id,
                                                                               "203.0.113.9", "Firefox")
    assert event.details == {"credential": "session", "blocked_by": "org", "path": PAGE, "method": "GET"}
    assert client.get(PAGE, REMOTE_ADDR="198.51.100.4").status_code == 200


def test_sign_out_and_org_switch_stay_reachable(org, owner, make_org):
    other = make_org("globex")
    org_services.add_member(org=other, user=owner.user, role="user")
    set_list(org, ["198.51.100.0/24"])
    client = signed_in(owner)
    client.post("/organizations/choose/", {"org": org.pk}, REMOTE_ADDR="198.51.100.4")
    blocked = client.get(PAGE)
    assert blocked.status_code == 403 and 'href="/organizations/choose/"' in text(blocked)
    assert client.get("/organizations/choose/").status_code == 200
    switched = client.post("/organizations/choose/", {"org": other.pk, "next": PAGE})
    assert switched.status_code == 302
    assert client.get(PAGE).status_code == 200  # the other org has no list
    assert client.post("/logout/").status_code == 302


def test_the_django_admin_is_covered(org, owner):
    owner.user.is_staff = owner.user.is_superuser = True
    owner.user.save(update_fields=["is_staff", "is_superuser"])
    set_list(org, ["198.51.100.0/24"])
    client = signed_in(owner)
    assert client.get("/admin/").status_code == 403
    assert client.get("/admin/", REMOTE_ADDR="198.51.100.4").status_code == 200


def test_pages_of_members_without_a_list_are_untouched(org, owner):
    client = signed_in(owner)
    assert client.get(PAGE).status_code == 200
    assert not AuditEvent.objects.filter(event="IP_BLOCKED").exists()


# --- IP allowlist page --------------------------------------------------------------------------------------

def test_the_page_shows_the_current_ip_and_list(org, owner):
    set_list(org, ["127.0.0.0/8", "2001:db8::/32"])
    response = signed_in(owner).get(IP_PAGE)
    assert response.status_code == 200
    body = text(response)
    assert '<code data-testid="client-ip">127.0.0.1</code>' in body
    assert "127.0.0.0/8\n2001:db8::/32</textarea>" in body


def test_security_page_links_both_pages(org, owner):
    body = text(signed_in(owner).get("/settings/security/"))
    assert f'href="{IP_PAGE}"' in body and f'href="{LOGS}"' in body


def test_saving_with_comments_and_blank_lines_stores_the_ranges_and_is_audited(org, owner):
    client = signed_in(owner)
    response = client.post(IP_PAGE, {"ranges": "# office\n127.0.0.1/32  # me\n\n2001:db8::/32\n10.0.0.5\n"})
    assert response.status_code == 302, field_errors(response, "ranges")
    assert stored(org) == ["127.0.0.1/32", "2001:db8::/32", "10.0.0.5"]
    event = AuditEvent.objects.filter(event="ORG_SETTINGS_CHANGED").first()
    assert event.user_id == owner.user_id and event.details == {"changed": ["ipAllowlist"]}
    assert client.get(PAGE).status_code == 200  # the saver is inside
    assert client.get(PAGE, REMOTE_ADDR="203.0.113.9").status_code == 403  # applies at once on this worker


def test_each_bad_line_is_reported_with_its_number(org, owner):
    response = signed_in(owner).post(IP_PAGE, {"ranges": "127.0.0.1/32\nfoo\n# fine\n10.0.0.0/33\n::1/129"})
    assert response.status_code == 200
    errors = field_errors(response, "ranges")
    assert [e.split(":")[0] for e in errors] == ["Line 2", "Line 4", "Line 5"], errors
    assert "&#x27;foo&#x27;" in errors[0] or "'foo'" in errors[0]
    assert stored(org) == []


def test_a_list_that_excludes_the_saver_is_refused(org, owner):
    response = signed_in(owner).post(IP_PAGE, {"ranges": "198.51.100.0/24"})
    assert response.status_code == 200
    [error] = field_errors(response, "ranges")
    assert "127.0.0.1" in error and "lock you out" in error
    assert stored(org) == []


def test_saving_needs_a_recent_second_factor(org, owner, totp_device):
    totp_device(owner.user)
    response = signed_in(owner, step_up=False).post(IP_PAGE, {"ranges": "127.0.0.0/8"})
    assert response.status_code in (200, 401, 403)
    assert "twig_step_up_code" in text(response)
    assert stored(org) == []


def test_clearing_the_list(org, owner):
    set_list(org, ["127.0.0.0/8"])
    assert signed_in(owner).post(IP_PAGE, {"ranges": "  \n# nothing\n"}).status_code == 302
    assert stored(org) == []


def test_non_enterprise_orgs_see_an_explanation_and_cannot_save(make_org, make_member):
    free = make_org("free-co", plan="free")
    admin = make_member(free, "super_admin")
    client = signed_in(admin)
    page = client.get(IP_PAGE)
    assert page.status_code == 200 and 'data-testid="enterprise-only"' in text(page)
    assert "<textarea" not in text(page)
    assert client.post(IP_PAGE, {"ranges": "127.0.0.1/32"}).status_code == 403
    assert stored(free) == []


@pytest.mark.parametrize("role", ["user", "manager"])
def test_non_admins_get_403(org, owner, make_member, role):
    client = signed_in(make_member(org, role))
    assert client.get(IP_PAGE).status_code == 403
    assert client.post(IP_PAGE, {"ranges": "127.0.0.1/32"}).status_code == 403
    assert client.get(LOGS).status_code == 403
    assert stored(org) == []


# --- access logs ------------------------------------------------------------------------------------------

def blocks(org: Organization, ips: list[str], user: Any = None) -> None:
    from django.test import RequestFactory

    for ip in ips:
        with pytest.raises(IpNotAllowed):
            enforce.check(RequestFactory().get("/api/agents", REMOTE_ADDR=ip), org_id=org.pk,
                          credential="access_token", user_id=getattr(user, "pk", None))


def test_access_logs_list_the_orgs_blocked_requests_newest_first(org, owner, make_org):
    set_list(org, ["127.0.0.0/8"])
    blocks(org, ["203.0.113.1", "203.0.113.2"], user=owner.user)
    other = make_org("globex")
    set_list(other, ["10.0.0.0/8"])
    blocks(other, ["192.0.2.99"])
    response = signed_in(owner).get(LOGS)
    assert response.status_code == 200
    body = text(response)
    assert body.index("203.0.113.2") < body.index("203.0.113.1")
    assert "192.0.2.99" not in body
    assert "owner@acme.test" in body and "Access token" in body and "GET /api/agents" in body


def test_access_logs_filter_by_ip_and_paginate(org, owner):
    set_list(org, ["127.0.0.0/8"])
    blocks(org, [f"203.0.113.{i}" for i in range(1, 56)])
    client = signed_in(owner)
    first = text(client.get(LOGS, {"event": "IP_BLOCKED"}))  # the "blocked requests" preset
    assert len(re.findall(r'class="access-log-row"', first)) == 50 and "Blocked requests" in first
    older = re.search(r'href="(\?[^"]*cursor=[^"]+)" rel="next"', first).group(1)
    second = text(client.get(LOGS + html.unescape(older)))
    assert len(re.findall(r'class="access-log-row"', second)) == 5 and 'rel="next"' not in second
    assert 'rel="prev"' in second and "203.0.113.1<" in second
    only = text(client.get(LOGS, {"ip": "203.0.113.7"}))
    assert len(re.findall(r'class="access-log-row"', only)) == 1 and "203.0.113.7<" in only
    bad = client.get(LOGS, {"ip": "not-an-ip"})
    assert bad.status_code == 200 and "Enter a single IPv4 or IPv6 address." in text(bad)
    assert 'class="access-log-row"' not in text(bad)


# --- API keys page ---------------------------------------------------------------------------------------

KEY_FORM = {"name": "ci", "scopes": ["read"], "environment": "live"}


def test_a_key_created_on_the_page_can_carry_an_allowlist(org, owner):
    client = signed_in(owner)
    response = client.post("/settings/api-keys/", {**KEY_FORM, "allowed_ips": "198.51.100.0/24 # office\n"})
    assert response.status_code == 200
    assert ApiKey.objects.get().allowed_ips == ["198.51.100.0/24"]
    assert "Only from 198.51.100.0/24" in text(client.get("/settings/api-keys/"))


def test_a_bad_key_allowlist_line_is_a_field_error(org, owner):
    response = signed_in(owner).post("/settings/api-keys/", {**KEY_FORM, "allowed_ips": "10.0.0.0/8\nbad"})
    assert field_errors(response, "allowed_ips")[0].startswith("Line 2:")
    assert not ApiKey.objects.exists()


def test_the_key_allowlist_field_is_enterprise_only(make_org, make_member):
    free = make_org("free-co", plan="free")
    client = signed_in(make_member(free, "super_admin"))
    assert 'name="allowed_ips"' not in text(client.get("/settings/api-keys/"))
    client.post("/settings/api-keys/", {**KEY_FORM, "allowed_ips": "198.51.100.0/24"})
    assert ApiKey.objects.get().allowed_ips == []


def test_the_admin_shows_and_lifts_a_key_list(org, owner, admin_client):
    from twig_auth.apikeys.services import issue_api_key

    key, _ = issue_api_key(creator=owner, name="ci", scopes=["read"], environment="live",
                           allowed_ips=["198.51.100.0/24"])
    # The admin escapes "_" in ids (``key_…``): a raw id whose "_" is followed by two hex digits is not found.
    page = admin_client.get(reverse("admin:twig_auth_apikey_change", args=[quote(key.pk)]))
    assert "198.51.100.0/24" in text(page)
    admin_client.post("/admin/twig_auth/apikey/", {"action": "clear_allowed_ips", "_selected_action": [key.pk]})
    assert ApiKey.objects.get(pk=key.pk).allowed_ips == []
    assert AuditEvent.objects.filter(event="API_KEY_UPDATED").exists()


# --- system check -----------------------------------------------------------------------------------------

def test_the_middleware_is_shipped_after_authentication_and_mfa(settings):
    settings.DEBUG = True
    assert settings.MIDDLEWARE.index(IP_MIDDLEWARE) > settings.MIDDLEWARE.index(MFA_MIDDLEWARE)
    assert not [m for m in check_settings() if m.id == "twig_auth.E007"]


@pytest.mark.parametrize("where", ["missing", "first", "before_mfa"])
def test_a_missing_or_misplaced_middleware_is_e007(settings, where):
    settings.DEBUG = True
    rest = [m for m in settings.MIDDLEWARE if m != IP_MIDDLEWARE]
    if where == "first":
        settings.MIDDLEWARE = [IP_MIDDLEWARE, *rest]
    elif where == "before_mfa":
        i = rest.index(MFA_MIDDLEWARE)
        settings.MIDDLEWARE = [*rest[:i], IP_MIDDLEWARE, *rest[i:]]
    else:
        settings.MIDDLEWARE = rest
    [message] = [m for m in check_settings() if m.id == "twig_auth.E007"]
    assert message.level == checks.ERROR and IP_MIDDLEWARE in message.hint
