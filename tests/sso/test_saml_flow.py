"""SAML login end to end against a real in-process pysaml2 IdP (saml2.server.Server, signing through xmlsec1):
the SP's signed AuthnRequest is verified at the IdP, the IdP's signed response is posted to the ACS."""

from __future__ import annotations

import html
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from twig_auth.audit.models import AuditEvent
from twig_auth.core import clock
from twig_auth.orgs.models import Membership
from twig_auth.sso import metadata
from twig_auth.sso.models import SsoConnection, SsoDomain

from .conftest import IDP_ENTITY_ID, IDP_SSO_POST, IDP_SSO_REDIRECT, write_pair

pytestmark = pytest.mark.django_db
MFA = "http://schemas.microsoft.com/claims/multipleauthn"
PASSWORD = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"


class Idp:
    """A pysaml2 IdP that trusts the org's SP metadata (fetched from the real metadata endpoint)."""

    def __init__(self, key_file: str, cert_file: str, xmlsec1: str, sp_metadata: list[str], *,
                 sha1: bool = False, lifetime_seconds: int = 900) -> None:
        from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
        from saml2.config import IdPConfig
        from saml2.metadata import create_metadata_string
        from saml2.saml import NAMEID_FORMAT_EMAILADDRESS
        from saml2.server import Server
        from saml2.xmldsig import DIGEST_SHA1, DIGEST_SHA256, SIG_RSA_SHA1, SIG_RSA_SHA256

        def conf(with_sp: bool) -> Any:
            config = IdPConfig()
            config.load({
                "entityid": IDP_ENTITY_ID, "xmlsec_binary": xmlsec1, "key_file": key_file, "cert_file": cert_file,
                "service": {"idp": {
                    "name": "test idp", "signing_algorithm": SIG_RSA_SHA1 if sha1 else SIG_RSA_SHA256,
                    "digest_algorithm": DIGEST_SHA1 if sha1 else DIGEST_SHA256,
                    "endpoints": {"single_sign_on_service": [(IDP_SSO_REDIRECT, BINDING_HTTP_REDIRECT),
                                                             (IDP_SSO_POST, BINDING_HTTP_POST)]},
                    "name_id_format": [NAMEID_FORMAT_EMAILADDRESS], "want_authn_requests_signed": True,
                    "policy": {"default": {"lifetime": {"seconds": lifetime_seconds},
                                           "attribute_restrictions": None,
                                           "name_form": "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"}}}},
                **({"metadata": {"inline": sp_metadata}} if with_sp else {})})
            return config

        self.metadata = create_metadata_string(None, config=conf(False), valid=24).decode()
        self.server = Server(config=conf(True))

    def answer(self, login_response: Any, email: str, *, attributes: dict[str, list[str]] | None = None,
               authn_class: str = PASSWORD, sign_response: bool = True, sign_assertion: bool = True,
               audience: str | None = None) -> tuple[str, str]:
        """Verify the SP's AuthnRequest, return ``(SAMLResponse, RelayState)`` for ``email``."""
        from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
        from saml2.saml import NAMEID_FORMAT_EMAILADDRESS, NameID

        if login_response.status_code == 200:
            body = login_response.content.decode()
            saml_req = html.unescape(re.search(r'name="SAMLRequest" value="([^"]+)"', body).group(1))
            relay = html.unescape(re.search(r'name="RelayState" value="([^"]*)"', body).group(1))
            req = self.server.parse_authn_request(saml_req, BINDING_HTTP_POST)
        else:
            q = parse_qs(urlparse(login_response["Location"]).query)
            relay = q["RelayState"][0]
            req = self.server.parse_authn_request(q["SAMLRequest"][0], BINDING_HTTP_REDIRECT, relay_state=relay,
                                                  sigalg=q["SigAlg"][0], signature=q["Signature"][0])
        args = self.server.response_args(req.message)
        if audience:
            args["sp_entity_id"] = audience
        resp = self.server.create_authn_response(
            {"mail": [email], **(attributes or {})}, userid=email,
            name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=email),
            authn={"class_ref": authn_class, "authn_auth": IDP_ENTITY_ID},
            sign_response=sign_response, sign_assertion=sign_assertion, **args)
        form = self.server.apply_binding(BINDING_HTTP_POST, str(resp), args["destination"], relay,
                                         response=True)["data"]
        return html.unescape(re.search(r'name="SAMLResponse" value="([^"]+)"', form).group(1)), relay


@pytest.fixture
def idp_keys(tmp_path: Path) -> tuple[str, str]:
    directory = tmp_path / "idp"
    directory.mkdir()
    return write_pair(directory, "idp")


@pytest.fixture
def make_idp(client: Any, org: Any, sp_keys: dict[str, str], idp_keys: tuple[str, str], xmlsec1: str) -> Any:
    """Return ``make(**idp_kw) -> Idp`` with the org's enabled SAML connection trusting that IdP."""
    SsoDomain.objects.get_or_create(org=org, domain="acme.test", defaults={"verified_at": clock.now()})

    def make(other_sp: str = "", **kw: Any) -> Idp:
        connection = SsoConnection.objects.filter(org=org, protocol="saml").first() or SsoConnection(
            org=org, name="Test IdP", protocol="saml")
        connection.enabled = False
        connection.save()
        sp_md = client.get("/sso/saml/acme/metadata/").content.decode()
        # ``other_sp``: the IdP also knows another SP (same keys), to answer for the wrong audience.
        ours = "https://auth.example.test/sso/saml/acme/metadata/"
        idp = Idp(*idp_keys, xmlsec1, [sp_md, *([sp_md.replace(ours, other_sp)] if other_sp else [])], **kw)
        metadata.apply_to_connection(connection, metadata.parse_idp_metadata(idp.metadata), idp.metadata)
        connection.enabled = True
        connection.group_attribute = "groups"
        connection.group_role_mapping = {"Engineering": "manager"}
        connection.save()
        return idp

    return make


def _reason() -> str:
    return AuditEvent.objects.filter(event="SSO_FAILURE").latest("timestamp").details["reason"]


def _login(client: Any, next_url: str = "/account/") -> Any:
    response = client.get(f"/sso/saml/acme/login/?next={next_url}")
    assert response.status_code in (200, 302), response.content[:300]
    return response


def test_jit_login_signs_in_and_creates_the_membership(client: Any, make_idp: Any, org: Any) -> None:
    idp = make_idp()
    saml_response, relay = idp.answer(_login(client), "Carol@acme.test",
                                      attributes={"givenName": ["Carol"], "sn": ["Danvers"]})
    response = client.post("/sso/saml/acme/acs/", {"SAMLResponse": saml_response, "RelayState": relay})
    assert response.status_code == 302 and response["Location"] == "/account/"
    membership = Membership.objects.select_related("user").get(org=org, user__email="carol@acme.test")
    assert membership.role == "user" and membership.user.name == "Carol Danvers"
    assert client.session["_auth_user_id"] == str(membership.user.pk)
    event = AuditEvent.objects.get(event="LOGIN_SUCCESS")
    assert event.details["method"] == "sso" and event.details["protocol"] == "saml"
    assert event.details["idpMfa"] is False


def test_existing_user_and_group_mapping_and_idp_mfa(client: Any, make_idp: Any, org: Any,
                                                     make_user: Any) -> None:
    user = make_user(email="dave@acme.test")
    idp = make_idp()
    org.sso_connections.update(trust_idp_mfa=True)
    saml_response, relay = idp.answer(_login(client), "DAVE@acme.test", attributes={"groups": ["Engineering"]},
                                      authn_class=MFA)
    response = client.post("/sso/saml/acme/acs/", {"SAMLResponse": saml_response, "RelayState": relay})
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)
    assert Membership.objects.get(org=org, user=user).role == "manager"
    event = AuditEvent.objects.get(event="LOGIN_SUCCESS")
    assert event.details["idpMfa"] is True and event.mfa_used is True


def test_replayed_response_is_refused(client: Any, make_idp: Any) -> None:
    idp = make_idp()
    saml_response, relay = idp.answer(_login(client), "erin@acme.test")
    assert client.post("/sso/saml/acme/acs/", {"SAMLResponse": saml_response, "RelayState": relay}).status_code == 302
    client.post("/logout/")
    response = client.post("/sso/saml/acme/acs/", {"SAMLResponse": saml_response, "RelayState": relay})
    assert response.status_code == 403 and b"Authentication failed" in response.content
    assert _reason() == "replayed"


def test_unsolicited_response_is_refused(client: Any, make_idp: Any) -> None:
    idp = make_idp()
    saml_response, relay = idp.answer(_login(client), "frank@acme.test")
    from django.test import Client

    response = Client().post("/sso/saml/acme/acs/", {"SAMLResponse": saml_response, "RelayState": relay})
    assert response.status_code == 403
    assert _reason() == "unsolicited"
    assert not Membership.objects.filter(user__email="frank@acme.test").exists()


def test_tampered_response_is_refused(client: Any, make_idp: Any) -> None:
    import base64

    idp = make_idp()
    saml_response, relay = idp.answer(_login(client), "grace@acme.test")
    xml = base64.b64decode(saml_response).replace(b"grace@acme.test", b"admin@acme.test")
    response = client.post("/sso/saml/acme/acs/", {"SAMLResponse": base64.b64encode(xml).decode(),
                                                   "RelayState": relay})
    assert response.status_code == 403
    assert _reason() == "invalid_signature"
    assert "_auth_user_id" not in client.session


def test_unsigned_response_is_refused(client: Any, make_idp: Any) -> None:
    idp = make_idp()
    saml_response, relay = idp.answer(_login(client), "heidi@acme.test", sign_response=False, sign_assertion=False)
    response = client.post("/sso/saml/acme/acs/", {"SAMLResponse": saml_response, "RelayState": relay})
    assert response.status_code == 403
    assert _reason() == "invalid_signature"


def test_sha1_signed_response_is_refused(client: Any, make_idp: Any) -> None:
    idp = make_idp(sha1=True)
    saml_response, relay = idp.answer(_login(client), "ivan@acme.test")
    response = client.post("/sso/saml/acme/acs/", {"SAMLResponse": saml_response, "RelayState": relay})
    assert response.status_code == 403
    assert _reason() == "weak_signature"


def test_expired_response_is_refused(client: Any, make_idp: Any) -> None:
    idp = make_idp(lifetime_seconds=1)
    saml_response, relay = idp.answer(_login(client), "judy@acme.test")
    time.sleep(2.2)
    response = client.post("/sso/saml/acme/acs/", {"SAMLResponse": saml_response, "RelayState": relay})
    assert response.status_code == 403
    assert _reason() == "expired"


def test_wrong_audience_is_refused(client: Any, make_idp: Any) -> None:
    idp = make_idp(other_sp="https://other.example.test/sp")
    saml_response, relay = idp.answer(_login(client), "ken@acme.test", audience="https://other.example.test/sp")
    response = client.post("/sso/saml/acme/acs/", {"SAMLResponse": saml_response, "RelayState": relay})
    assert response.status_code == 403
    assert _reason() == "wrong_audience"


@pytest.mark.parametrize("body", [{}, {"SAMLResponse": "%%%"}, {"SAMLResponse": "PG5vdC14bWw="}])
def test_garbage_is_refused_without_a_500(client: Any, make_idp: Any, body: dict[str, str]) -> None:
    make_idp()
    response = client.post("/sso/saml/acme/acs/", body)
    assert response.status_code in (400, 403)
    assert b"Authentication failed" in response.content


def test_unknown_org_is_404(client: Any) -> None:
    assert client.get("/sso/saml/nope/login/").status_code == 404


def test_check_e008_djangosaml2_without_its_middleware(settings: Any) -> None:
    from twig_auth.checks import check_settings

    assert "twig_auth.E008" not in [m.id for m in check_settings()]
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if "SamlSession" not in m]
    assert "twig_auth.E008" in [m.id for m in check_settings()]
