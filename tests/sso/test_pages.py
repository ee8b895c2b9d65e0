"""Settings → Authentication: admins only, enterprise only, step-up before any change, SAML by uploaded XML,
bad metadata as a field error, the OIDC secret write-only, domains added and verified against dnsmasq,
Enforce SSO refused without an enabled connection, audited connection changes."""

from __future__ import annotations

import html
import re

from django.core.files.uploadedfile import SimpleUploadedFile

from tests.pages.conftest import field_errors, text
from tests.support.clients import signed_in
from twig_auth.audit.models import AuditEvent
from twig_auth.orgs.models import Organization
from twig_auth.sso.models import SsoConnection, SsoDomain

PAGE = "/settings/authentication/"


def saml_post(xml: str, **extra):
    return {"protocol": "saml", "name": "Okta", "idp_metadata_file": SimpleUploadedFile(
        "idp.xml", xml.encode(), content_type="application/xml"), "email_attribute": "mail",
        "group_attribute": "groups", "group_roles": "Engineering = manager\nIT = admin", **extra}


def test_members_who_are_not_admins_are_refused(org, owner, make_member):
    client = signed_in(make_member(org, "manager"))
    assert client.get(PAGE).status_code == 403
    assert client.post(PAGE + "enforce/", {"enforce": "1"}).status_code == 403


def test_free_orgs_see_an_explanation_and_cannot_post(make_org, make_member):
    free = make_org("free", plan="free")
    client = signed_in(make_member(free, "super_admin"))
    page = client.get(PAGE)
    assert page.status_code == 200 and "Single sign-on is part of the Enterprise plan" in text(page)
    assert 'name="protocol"' not in text(page)
    assert client.post(PAGE + "domains/", {"domain": "free.test"}).status_code == 403
    assert not SsoDomain.objects.exists()


def test_the_page_shows_the_sp_details_and_is_linked_from_the_security_tabs(owner, sp_keys):
    client = signed_in(owner)
    body = text(client.get(PAGE))
    assert "https://auth.example.test/sso/saml/acme/metadata/" in body
    assert "https://auth.example.test/sso/saml/acme/acs/" in body
    assert f'href="{PAGE}"' in text(client.get("/settings/security/"))


def test_saving_saml_by_xml_upload_after_the_step_up(owner, idp_metadata, totp_device):
    from tests.conftest import oathtool

    _, secret = totp_device(owner.user)
    client = signed_in(owner, step_up=False)
    prompt = client.post(PAGE, saml_post(idp_metadata()))
    assert prompt.status_code == 200 and "twig_step_up_code" in text(prompt)
    assert not SsoConnection.objects.exists()
    # the prompt re-posts the fields; the uploaded XML travels as a field, since files cannot be re-posted
    replay = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', text(prompt)))
    assert "idp_metadata_xml" in replay
    replay = {k: html.unescape(v) for k, v in replay.items() if k != "csrfmiddlewaretoken"}
    done = client.post(PAGE, {**replay, "twig_step_up_code": oathtool(secret)})
    assert done.status_code == 302, text(done)
    connection = SsoConnection.objects.get()
    assert (connection.protocol, connection.name, connection.enabled) == ("saml", "Okta", False)
    assert connection.idp_entity_id == "https://idp.example.test/idp/metadata" and connection.idp_certificates
    assert connection.attribute_mapping == {"email": "mail"} and connection.group_attribute == "groups"
    assert connection.group_role_mapping == {"Engineering": "manager", "IT": "admin"}
    [event] = AuditEvent.objects.filter(event="SSO_CONNECTION_CREATED")
    assert event.org_id == owner.org_id and event.details["protocol"] == "saml"
    assert "idp_metadata_xml" in event.details["changed"] and event.details["enabled"] is False
    # enable it, then the status says so and offers the test link
    assert client.post(PAGE + "enabled/", {"enabled": "1"}).status_code == 302
    page = text(client.get(PAGE))
    assert 'data-testid="connection-state">Enabled' in page
    assert 'href="/sso/saml/acme/login/?next=%2Fsettings%2Fauthentication%2F&amp;test=1"' in page
    assert AuditEvent.objects.filter(event="SSO_CONNECTION_UPDATED", details__changed=["enabled"]).count() == 1


def test_bad_metadata_is_a_field_error_before_any_prompt(owner):
    client = signed_in(owner, step_up=False)
    response = client.post(PAGE, saml_post("<not-xml"))
    assert response.status_code == 200 and "twig_step_up_code" not in text(response)
    assert field_errors(response, "idp_metadata_file") == ["This is not XML (the metadata could not be parsed)."]
    bad_roles = client.post(PAGE, saml_post("", group_roles="Engineering = boss"))
    assert html.unescape(field_errors(bad_roles, "group_roles")[0]).startswith("Line 1: 'boss' is not a role")
    assert field_errors(bad_roles, "idp_metadata_url") == ["Give the IdP metadata URL or upload its metadata XML."]
    assert not SsoConnection.objects.exists()


def test_the_oidc_secret_is_write_only(owner):
    client = signed_in(owner)
    data = {"protocol": "oidc", "name": "Okta OIDC", "oidc_provider": "okta",
            "oidc_issuer": "https://acme.okta.test", "oidc_client_id": "client-1",
            "oidc_client_secret": "s3cret-value-xyz"}
    assert client.post(PAGE, data).status_code == 302
    connection = SsoConnection.objects.get()
    assert connection.oidc_client_secret == "s3cret-value-xyz"
    page = text(client.get(PAGE))
    assert "s3cret-value-xyz" not in page and 'data-testid="secret-status">set' in page
    assert client.post(PAGE, {**data, "oidc_client_secret": "", "oidc_client_id": "client-2"}).status_code == 302
    connection.refresh_from_db()
    assert (connection.oidc_client_id, connection.oidc_client_secret) == ("client-2", "s3cret-value-xyz")
    for event in AuditEvent.objects.filter(event__startswith="SSO_CONNECTION"):
        assert "s3cret" not in str(event.details)
    assert client.post(PAGE + "enabled/", {"enabled": "1"}).status_code == 302
    connection.refresh_from_db()
    assert connection.enabled


def test_enabling_an_incomplete_connection_is_refused(owner):
    client = signed_in(owner)
    client.post(PAGE, {"protocol": "oidc", "oidc_provider": "okta", "oidc_client_id": "c"})
    response = client.post(PAGE + "enabled/", {"enabled": "1"})
    assert response.status_code == 400 and "Enter the issuer URL of your tenant." in text(response)
    assert not SsoConnection.objects.get().enabled


def test_domain_add_and_verify_against_dnsmasq(owner, dns_server):
    client = signed_in(owner)
    assert client.post(PAGE + "domains/", {"domain": "Acme.TEST"}).status_code == 302
    claimed = SsoDomain.objects.get()
    page = text(client.get(PAGE))
    assert f"_twig-verification.acme.test</code> TXT <code>twig-verification={claimed.verification_token}" in page
    dns_server(txt={})
    missing = client.post(f"{PAGE}domains/{claimed.pk}/verify/")
    assert missing.status_code == 400 and "_twig-verification.acme.test" in text(missing)
    dns_server(txt={"_twig-verification.acme.test": [f"twig-verification={claimed.verification_token}"]})
    assert client.post(f"{PAGE}domains/{claimed.pk}/verify/").status_code == 302
    claimed.refresh_from_db()
    assert claimed.is_verified
    assert client.post(PAGE + "domains/", {"domain": "not a domain"}).status_code == 200
    duplicate = field_errors(client.post(PAGE + "domains/", {"domain": "acme.test"}), "domain")
    assert [html.unescape(e) for e in duplicate] == ["acme.test is already in this organization's domains."]


def test_enforce_is_refused_without_an_enabled_connection_then_allowed(owner, make_connection):
    client = signed_in(owner)
    refused = client.post(PAGE + "enforce/", {"enforce": "1"})
    assert refused.status_code == 400 and "Enable a single sign-on connection" in text(refused)
    assert not (Organization.objects.get(pk=owner.org_id).settings or {}).get("sso", {}).get("enforce")
    make_connection(owner.org)
    assert client.post(PAGE + "enforce/", {"enforce": "1"}).status_code == 302
    assert Organization.objects.get(pk=owner.org_id).settings["sso"]["enforce"] is True
    assert 'data-testid="enforce-state">Enforce SSO is <strong>on' in text(client.get(PAGE))
    # the last enabled connection cannot be disabled while enforcing
    disable = client.post(PAGE + "enabled/", {"enabled": "0"})
    assert disable.status_code == 409 and "Turn off Enforce SSO" in text(disable)


def test_every_change_asks_for_the_second_factor(owner, make_connection):
    make_connection(owner.org)
    client = signed_in(owner, step_up=False)
    for path, data in [("enforce/", {"enforce": "1"}), ("enabled/", {"enabled": "0"}),
                       ("domains/", {"domain": "acme.test"})]:
        response = client.post(PAGE + path, data)
        assert "twig_step_up_code" in text(response) or response.status_code == 403, path
    assert not SsoDomain.objects.exists() and SsoConnection.objects.get().enabled


def test_an_oidc_connection_shows_its_redirect_uri_and_keeps_its_group_claim(owner):
    client = signed_in(owner)
    data = {"protocol": "oidc", "name": "Okta OIDC", "oidc_provider": "okta", "oidc_issuer": "https://acme.okta.test",
            "oidc_client_id": "client-1", "oidc_client_secret": "s3cret-value-xyz", "group_attribute": "groups",
            "group_roles": "Engineering = manager"}
    assert client.post(PAGE, data).status_code == 302
    connection = SsoConnection.objects.get()
    assert (connection.group_attribute, connection.group_role_mapping) == ("groups", {"Engineering": "manager"})
    page = text(client.get(PAGE))
    expected = f"http://testserver/sso/oidc/accounts/oidc/{connection.pk}/login/callback/"
    assert 'data-testid="oidc-redirect-uri"' in page and expected in page
