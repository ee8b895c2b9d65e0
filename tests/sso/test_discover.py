""""Sign in with SSO": email → verified domain → the org's enabled connection; one answer for every "no"."""

from __future__ import annotations

import pytest

from tests.pages.conftest import field_errors, text
from tests.sso.connections import verified_domain

URL = "/login/sso/"
NO_SSO = "No single sign-on is set up for this email domain."


def test_the_login_page_links_to_it(client):
    body = text(client.get("/login/?next=/settings/sessions/"))
    assert 'href="/login/sso/?next=/settings/sessions/"' in body and "Sign in with SSO" in body


def test_a_verified_domain_with_an_enabled_connection_redirects_to_its_start(client, org, make_connection):
    make_connection(org)
    verified_domain(org, "acme.test")
    response = client.post(URL, {"email": "Ann@ACME.test", "next": "/settings/sessions/"})
    assert response.status_code == 302
    assert response["Location"] == "/sso/saml/acme/login/?next=%2Fsettings%2Fsessions%2F"
    assert "X-RateLimit-Limit" in response


def test_an_unsafe_next_is_dropped(client, org, make_connection):
    make_connection(org)
    verified_domain(org, "acme.test")
    response = client.post(URL, {"email": "ann@acme.test", "next": "https://evil.test/"})
    assert response["Location"] == "/sso/saml/acme/login/?next=%2F"  # the default landing page


@pytest.mark.parametrize("case", ["unknown", "unverified", "disabled", "no_connection", "free_plan", "subdomain"])
def test_every_no_gets_the_same_answer(client, org, make_org, make_connection, case):
    from twig_auth.sso.models import SsoDomain

    email = "ann@acme.test"
    if case == "unverified":
        make_connection(org)
        SsoDomain.objects.create(org=org, domain="acme.test")
    elif case == "disabled":
        make_connection(org, enabled=False)
        verified_domain(org, "acme.test")
    elif case == "no_connection":
        verified_domain(org, "acme.test")
    elif case == "free_plan":
        free = make_org("free", plan="free")
        make_connection(free)
        verified_domain(free, "acme.test")
    elif case == "subdomain":
        make_connection(org)
        verified_domain(org, "acme.test")
        email = "ann@eu.acme.test"
    response = client.post(URL, {"email": email})
    assert response.status_code == 200
    assert field_errors(response, "email") == [NO_SSO]


def test_a_malformed_email_is_a_field_error(client, db):
    response = client.post(URL, {"email": "not an email"})
    assert field_errors(response, "email") == ["Enter a valid email address."]


def test_it_is_throttled_like_the_login_page(client, settings, db):
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "LOGIN_ACCOUNT_RATE": "2/m"}
    statuses = [client.post(URL, {"email": "ann@acme.test"}).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    refused = client.post(URL, {"email": "ann@acme.test"})
    assert refused.status_code == 429 and "Retry-After" in refused
    # the login page shares the bucket: the same email is refused there too
    assert client.post("/login/", {"email": "ann@acme.test", "password": "x"}).status_code == 429
