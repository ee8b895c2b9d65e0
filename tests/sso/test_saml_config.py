"""The per-org SP configuration, its metadata endpoint, and check twig_auth.W003."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ImproperlyConfigured

from twig_auth.checks import check_settings
from twig_auth.sso import metadata, saml_config
from twig_auth.sso.models import SsoConnection

from .conftest import IDP_ENTITY_ID, SSO_BASE_URL, write_pair


@pytest.fixture
def saml_connection(org, idp_metadata):
    connection = SsoConnection(org=org, name="Okta", protocol="saml")
    xml = idp_metadata()
    metadata.apply_to_connection(connection, metadata.parse_idp_metadata(xml), xml)
    connection.save()
    return connection


def test_sp_config_is_sha256_signed_solicited_and_per_org(saml_connection, sp_keys):
    from saml2.saml import NAMEID_FORMAT_EMAILADDRESS
    from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

    conf = saml_config.sp_config_dict(saml_connection)
    sp = conf["service"]["sp"]
    assert conf["entityid"] == f"{SSO_BASE_URL}/sso/saml/acme/metadata/"
    assert sp["endpoints"]["assertion_consumer_service"] == [
        (f"{SSO_BASE_URL}/sso/saml/acme/acs/", "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST")]
    assert sp["signing_algorithm"] == SIG_RSA_SHA256 and sp["digest_algorithm"] == DIGEST_SHA256
    assert sp["authn_requests_signed"] is True and sp["want_assertions_signed"] is True
    assert sp["allow_unsolicited"] is False and sp["name_id_format"] == NAMEID_FORMAT_EMAILADDRESS
    assert conf["key_file"] == sp_keys["key_file"] and conf["cert_file"] == sp_keys["cert_file"]
    # pysaml2 loads it, with the IdP known from the inline metadata
    loaded = saml_config.sp_config(saml_connection)
    assert IDP_ENTITY_ID in loaded.metadata.identity_providers()
    assert loaded.metadata.single_sign_on_service(IDP_ENTITY_ID,
                                                  "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect")


def test_sp_config_needs_the_settings(saml_connection, settings):
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "SSO_BASE_URL": None}
    with pytest.raises(ImproperlyConfigured, match="SSO_BASE_URL"):
        saml_config.sp_config_dict(saml_connection)
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "SSO_BASE_URL": SSO_BASE_URL}
    with pytest.raises(ImproperlyConfigured, match="SSO_SP_PRIVATE_KEY_FILE"):
        saml_config.sp_config_dict(saml_connection)


def test_sp_metadata_endpoint(client, saml_connection, sp_keys):
    from cryptography import x509
    from saml2 import md
    from saml2.saml import NAMEID_FORMAT_EMAILADDRESS

    response = client.get("/sso/saml/acme/metadata/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/samlmetadata+xml"
    entity = md.entity_descriptor_from_string(response.content.decode())
    assert entity.entity_id == f"{SSO_BASE_URL}/sso/saml/acme/metadata/"
    sp = entity.spsso_descriptor[0]
    assert sp.authn_requests_signed == "true" and sp.want_assertions_signed == "true"
    assert [(a.location, a.binding) for a in sp.assertion_consumer_service] == [
        (f"{SSO_BASE_URL}/sso/saml/acme/acs/", "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST")]
    assert [n.text.strip() for n in sp.name_id_format] == [NAMEID_FORMAT_EMAILADDRESS]
    published = {kd.use: "".join(kd.key_info.x509_data[0].x509_certificate.text.split()) for kd in sp.key_descriptor}
    with open(sp_keys["cert_file"], "rb") as fh:
        ours = x509.load_pem_x509_certificate(fh.read())
    import base64

    from cryptography.hazmat.primitives.serialization import Encoding

    assert published["signing"] == base64.b64encode(ours.public_bytes(Encoding.DER)).decode()
    assert "encryption" in published


def test_sp_metadata_is_404_without_a_saml_connection(client, org, make_org, sp_keys):
    assert client.get("/sso/saml/acme/metadata/").status_code == 404
    SsoConnection.objects.create(org=org, name="Google", protocol="oidc", oidc_provider="google")
    assert client.get("/sso/saml/acme/metadata/").status_code == 404
    assert client.get("/sso/saml/nobody/metadata/").status_code == 404
    free = make_org("freebie", plan="free")
    SsoConnection.objects.create(org=free, name="Okta", protocol="saml")
    assert client.get("/sso/saml/freebie/metadata/").status_code == 404
    assert client.post("/sso/saml/acme/metadata/").status_code in (404, 405)


def test_sp_metadata_says_unavailable_when_the_server_is_not_configured(client, saml_connection):
    response = client.get("/sso/saml/acme/metadata/")
    assert response.status_code == 503 and b"not configured" in response.content


def test_the_acs_of_a_disabled_connection_accepts_nothing(client, saml_connection, sp_keys):
    response = client.post("/sso/saml/acme/acs/", {"SAMLResponse": "x"})
    assert response.status_code == 403 and b"Authentication failed" in response.content


def test_one_saml_connection_per_org(saml_connection, org):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        SsoConnection.objects.create(org=org, name="Second", protocol="saml")
    SsoConnection.objects.create(org=org, name="Google", protocol="oidc")  # another protocol is fine


def w003(messages) -> list[str]:
    return [m.msg for m in messages if m.id == "twig_auth.W003"]


def test_w003_silent_when_unset_or_valid(settings, sp_keys):
    settings.DEBUG = True
    assert w003(check_settings()) == []
    settings.TWIG_AUTH = {k: v for k, v in settings.TWIG_AUTH.items() if not k.startswith("SSO_")}
    assert w003(check_settings()) == []


def test_w003_reports_unusable_sp_key_settings(settings, sp_keys, tmp_path):
    def problems(**overrides) -> list[str]:
        settings.TWIG_AUTH = {**settings.TWIG_AUTH, **overrides}
        found = w003(check_settings())
        settings.TWIG_AUTH = {**settings.TWIG_AUTH, **sp_keys_settings}
        return found

    sp_keys_settings = {"SSO_SP_PRIVATE_KEY_FILE": sp_keys["key_file"], "SSO_SP_CERTIFICATE_FILE": sp_keys["cert_file"],
                        "SSO_BASE_URL": SSO_BASE_URL}
    assert "must be set together" in problems(SSO_SP_CERTIFICATE_FILE=None)[0]
    assert "cannot be read" in problems(SSO_SP_PRIVATE_KEY_FILE=str(tmp_path / "missing.key"))[0]
    (tmp_path / "junk.pem").write_text("junk")
    assert "not an unencrypted PEM private key" in problems(SSO_SP_PRIVATE_KEY_FILE=str(tmp_path / "junk.pem"))[0]
    assert "not a PEM certificate" in problems(SSO_SP_CERTIFICATE_FILE=str(tmp_path / "junk.pem"))[0]
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    _, other_cert = write_pair(other_dir, "other")
    assert "is not the certificate of" in problems(SSO_SP_CERTIFICATE_FILE=other_cert)[0]
    now = dt.datetime.now(dt.UTC)
    old_key, old_cert = write_pair(other_dir, "old", not_before=now - dt.timedelta(days=30),
                                   not_after=now - dt.timedelta(days=1))
    assert "expired on" in problems(SSO_SP_PRIVATE_KEY_FILE=old_key, SSO_SP_CERTIFICATE_FILE=old_cert)[0]
    assert "SSO_BASE_URL is not set" in problems(SSO_BASE_URL=None)[0]


def test_sso_settings_are_validated(settings):
    settings.DEBUG = True
    settings.TWIG_AUTH = {"SSO_BASE_URL": "http://auth.example.com", "SSO_DNS_NAMESERVERS": ["dns.google"],
                          "SSO_SP_PRIVATE_KEY_FILE": 5}
    text = " ".join(m.msg for m in check_settings() if m.id == "twig_auth.E001")
    for name in ("SSO_BASE_URL", "SSO_DNS_NAMESERVERS", "SSO_SP_PRIVATE_KEY_FILE"):
        assert name in text
    for good in ("https://auth.example.com", "http://127.0.0.1:8000", "http://localhost"):
        settings.TWIG_AUTH = {"SSO_BASE_URL": good, "SSO_DNS_NAMESERVERS": ["127.0.0.1:5353", "[::1]:53"]}
        assert [m for m in check_settings() if m.id == "twig_auth.E001"] == []
    for bad in ("https://auth.example.com/sub", "https://auth.example.com?x=1", "auth.example.com"):
        settings.TWIG_AUTH = {"SSO_BASE_URL": bad}
        assert [m.id for m in check_settings()].count("twig_auth.E001") == 1
