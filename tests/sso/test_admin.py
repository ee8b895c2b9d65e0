"""The admin screens: metadata parsed on save, the client secret never shown, domains verified on demand."""

from __future__ import annotations

import pytest
from django.contrib.admin.utils import quote

from twig_auth.audit.models import AuditEvent
from twig_auth.sso import domains
from twig_auth.sso.models import SsoConnection, SsoDomain

from .conftest import IDP_ENTITY_ID, IDP_SSO_REDIRECT

SECRET = "oidc-client-secret-Xq7-do-not-show"


@pytest.fixture
def admin_client(client, make_user):
    user = make_user(email="root@example.test", is_staff=True, is_superuser=True)
    client.force_login(user, backend="twig_auth.passwords.backends.EmailBackend")
    return client


def form(org, **kw):
    data = {"org": org.pk, "name": "IdP", "protocol": "saml", "idp_metadata_url": "", "idp_metadata_xml": "",
            "attribute_mapping": '{"email": "NameID"}', "group_attribute": "", "group_role_mapping": "{}",
            "oidc_provider": "", "oidc_issuer": "", "oidc_client_id": "", "new_client_secret": ""}
    data.update(kw)
    return data


def test_saml_metadata_is_parsed_on_save_and_the_expiry_shown(admin_client, org, idp_metadata):
    response = admin_client.post("/admin/twig_auth/ssoconnection/add/",
                                 form(org, name="Okta", idp_metadata_xml=idp_metadata(), enabled="on"))
    assert response.status_code == 302, response.content.decode()[:2000]
    connection = SsoConnection.objects.get()
    assert connection.id.startswith("sso_") and connection.enabled
    assert connection.idp_entity_id == IDP_ENTITY_ID and connection.idp_sso_url == IDP_SSO_REDIRECT
    assert len(connection.idp_certificates) == 1
    page = admin_client.get("/admin/twig_auth/ssoconnection/").content.decode()
    assert f"{connection.certificate_expiry:%Y-%m-%d}" in page


def test_bad_metadata_and_bad_role_mapping_are_form_errors(admin_client, org):
    response = admin_client.post("/admin/twig_auth/ssoconnection/add/",
                                 form(org, idp_metadata_xml="<html/>", group_role_mapping='{"Eng": "boss"}'))
    assert response.status_code == 200
    page = response.content.decode()
    assert "not SAML metadata" in page and "is not a role" in page
    assert not SsoConnection.objects.exists()


def test_enabling_needs_a_complete_connection(admin_client, org):
    response = admin_client.post("/admin/twig_auth/ssoconnection/add/", form(org, enabled="on"))
    assert response.status_code == 200 and b"Upload the IdP metadata" in response.content
    assert not SsoConnection.objects.exists()


def test_the_client_secret_is_written_but_never_shown(admin_client, org):
    response = admin_client.post("/admin/twig_auth/ssoconnection/add/",
                                 form(org, name="Google", protocol="oidc", oidc_provider="google",
                                      oidc_client_id="client-1", new_client_secret=SECRET))
    assert response.status_code == 302
    connection = SsoConnection.objects.get()
    assert connection.oidc_client_secret == SECRET and connection.client_secret_status == "set"
    change = admin_client.get(f"/admin/twig_auth/ssoconnection/{quote(connection.pk)}/change/").content.decode()
    listing = admin_client.get("/admin/twig_auth/ssoconnection/").content.decode()
    assert SECRET not in change and SECRET not in listing
    assert ">set<" in change.replace("\n", "").replace(" ", "") or "set</div>" in change
    # saving again without a new secret keeps it; the clear box removes it
    admin_client.post(f"/admin/twig_auth/ssoconnection/{quote(connection.pk)}/change/",
                      form(org, name="Google 2", protocol="oidc", oidc_provider="google", oidc_client_id="client-1"))
    connection.refresh_from_db()
    assert connection.name == "Google 2" and connection.oidc_client_secret == SECRET
    admin_client.post(f"/admin/twig_auth/ssoconnection/{quote(connection.pk)}/change/",
                      form(org, name="Google", protocol="oidc", oidc_provider="google", oidc_client_id="client-1",
                           clear_client_secret="on"))
    connection.refresh_from_db()
    assert connection.oidc_client_secret == "" and connection.client_secret_status == "not set"


def test_domains_are_added_through_the_service_and_verified_now(admin_client, org, dns_server):
    response = admin_client.post("/admin/twig_auth/ssodomain/add/", {"org": org.pk, "domain": "Acme.Test"})
    assert response.status_code == 302
    claimed = SsoDomain.objects.get()
    assert claimed.domain == "acme.test" and AuditEvent.objects.filter(event="SSO_DOMAIN_ADDED").count() == 1
    page = admin_client.get(f"/admin/twig_auth/ssodomain/{claimed.pk}/change/").content.decode()
    assert "_twig-verification.acme.test" in page and claimed.verification_token in page
    dns_server()  # nothing published yet
    response = admin_client.post("/admin/twig_auth/ssodomain/", {"action": "verify_now",
                                                                  "_selected_action": [claimed.pk]}, follow=True)
    assert "does not exist in DNS" in response.content.decode()
    dns_server(txt={domains.record_name(claimed): [domains.record_value(claimed)]})
    response = admin_client.post("/admin/twig_auth/ssodomain/", {"action": "verify_now",
                                                                  "_selected_action": [claimed.pk]}, follow=True)
    assert "acme.test is verified" in response.content.decode().lower()
    claimed.refresh_from_db()
    assert claimed.is_verified


def test_admin_domain_add_refuses_what_the_service_refuses(admin_client, org):
    domains.add_domain(org=org, domain="acme.test")
    response = admin_client.post("/admin/twig_auth/ssodomain/add/", {"org": org.pk, "domain": "ACME.test"})
    assert response.status_code == 200 and b"already in this organization" in response.content
    response = admin_client.post("/admin/twig_auth/ssodomain/add/", {"org": org.pk, "domain": "not a domain"})
    assert response.status_code == 200 and b"Enter a domain name" in response.content
    assert SsoDomain.objects.count() == 1
