"""SAML login through djangosaml2, one SP per org: ``/sso/saml/<slug>/login/`` sends the signed AuthnRequest,
``/sso/saml/<slug>/acs/`` validates the IdP's response and hands the identity to :mod:`twig_auth.sso.login`.

djangosaml2's views are subclassed only for the parts that are protocol: its AuthnRequest and outstanding-request
bookkeeping (kept in its own SameSite=None ``saml_session``, which survives the IdP's cross-site POST). Users are
never created by its backend: the validated assertion becomes an :class:`SsoIdentity` and the shared login
service decides. On top of pysaml2's checks this module refuses SHA-1 signatures and digests (pysaml2 accepts
them) and replayed assertions (an assertion id is accepted once while it is valid), and turns every refusal
into the "Authentication failed" page with an audited reason, never a 500.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from typing import Any

from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from djangosaml2 import views as saml_views
from djangosaml2.cache import IdentityCache, OutstandingQueriesCache
from djangosaml2.overrides import Saml2Client

from twig_auth.mfa.middleware import mfa_exempt
from twig_auth.sso import saml_config
from twig_auth.sso.login import SsoIdentity, complete_sso_login, sso_failed, unavailable
from twig_auth.sso.models import Protocol, SsoConnection

logger = logging.getLogger("twig_auth.sso")

# AuthnContextClassRef values that say the IdP did multi-factor authentication.
MFA_AUTHN_CONTEXTS = frozenset({
    "http://schemas.microsoft.com/claims/multipleauthn",           # Microsoft Entra ID / ADFS
    "https://refeds.org/profile/mfa",                               # REFEDS MFA profile
    "urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract",
    "urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorUnregistered",
    "urn:oasis:names:tc:SAML:2.0:ac:classes:TimeSyncToken",         # OTP token + PIN/password
    "urn:oasis:names:tc:SAML:2.0:ac:classes:SmartcardPKI",          # card + PIN
})

# XML-DSig algorithms refused: SHA-1 is collision-broken; pysaml2 still accepts it.
WEAK_ALGORITHMS = frozenset({
    "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
    "http://www.w3.org/2000/09/xmldsig#dsa-sha1",
    "http://www.w3.org/2000/09/xmldsig#hmac-sha1",
    "http://www.w3.org/2000/09/xmldsig#sha1",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-md5",
    "http://www.w3.org/2001/04/xmldsig-more#md5",
})
DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
SAML_NS = "urn:oasis:names:tc:SAML:2.0:assertion"
REPLAY_KEY = "twig:sso:saml:used:{connection}:{assertion}"
MAX_RESPONSE_BYTES = 512 * 1024


class Refused(Exception):
    """A response refused with an audited ``reason`` (short code) and ``detail`` (secret-free)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason, self.detail = reason, detail


def saml_connection(org_slug: str) -> SsoConnection:
    """The org's SAML connection (404 when the org has none, or is not on the enterprise plan: nothing to say)."""
    connection = (SsoConnection.objects.select_related("org")
                  .filter(org__slug=org_slug, protocol=Protocol.SAML).first())
    if connection is None:
        raise Http404("No SAML connection for this organization.")
    return connection


def _unavailable(request: HttpRequest, connection: SsoConnection) -> HttpResponse | None:
    """The refusal page when the connection cannot be used now, else None."""
    return unavailable(request, connection, configured=bool(connection.idp_metadata_xml), missing="No IdP metadata.")


class _ConnectionConfig:
    """djangosaml2 asks for its SP configuration per request: the org's, from the URL slug."""

    connection: SsoConnection

    def get_sp_config(self, request: HttpRequest) -> Any:
        return saml_config.sp_config(self.connection)


@method_decorator([mfa_exempt, never_cache], name="dispatch")
class SamlLoginView(_ConnectionConfig, saml_views.LoginView):
    """Send the user to the org's IdP with a signed AuthnRequest (``?next=`` comes back as the RelayState)."""

    def should_prevent_auth(self, request: HttpRequest) -> bool:
        return False  # signing in again (another account, another org) is a legitimate request

    def get(self, request: HttpRequest, *args: Any, org_slug: str = "", **kwargs: Any) -> HttpResponse:
        self.connection = saml_connection(org_slug)
        refused = _unavailable(request, self.connection)
        if refused is not None:
            return refused
        try:
            return super().get(request, *args, **kwargs)
        except ImproperlyConfigured as exc:
            logger.error("SAML login unavailable: %s", exc)
            return sso_failed(request, org=self.connection.org, connection=self.connection,
                              reason="not_configured", detail=str(exc)[:200], status=503)
        except Exception as exc:  # noqa: BLE001  (broken IdP metadata and the like: refuse, never a 500)
            logger.exception("SAML AuthnRequest failed")
            return sso_failed(request, org=self.connection.org, connection=self.connection,
                              reason="invalid_configuration", detail=type(exc).__name__)


@method_decorator([mfa_exempt, never_cache], name="dispatch")
class SamlAcsView(_ConnectionConfig, saml_views.AssertionConsumerServiceView):
    """Validate the IdP's response (signed, SHA-256, solicited, for us, in time, first use) and sign in."""

    def post(self, request: HttpRequest, *args: Any, org_slug: str = "", **kwargs: Any) -> HttpResponse:
        self.connection = connection = saml_connection(org_slug)
        refused = _unavailable(request, connection)
        if refused is not None:
            return refused
        try:
            identity, next_url = self._validate(request)
        except Refused as exc:
            return sso_failed(request, org=connection.org, connection=connection, reason=exc.reason,
                              detail=exc.detail, status=400 if exc.reason == "invalid_response" else 403)
        return complete_sso_login(request, connection, identity, next_url)

    def _validate(self, request: HttpRequest) -> tuple[SsoIdentity, str]:
        raw = request.POST.get("SAMLResponse", "")
        if not raw or len(raw) > MAX_RESPONSE_BYTES:
            raise Refused("invalid_response", "No SAMLResponse in the POST.")
        assertion_id = _refuse_weak_algorithms(_decode(raw))
        if assertion_id and cache.get(_replay_key(self.connection, assertion_id)):
            # Also caught below (its request is no longer outstanding), but said for what it is.
            raise Refused("replayed", "This assertion was already used.")
        client = Saml2Client(self.get_sp_config(request), identity_cache=IdentityCache(request.saml_session))
        outstanding_cache = OutstandingQueriesCache(request.saml_session)
        outstanding = outstanding_cache.outstanding_queries()
        try:
            response = client.parse_authn_request_response(raw, _binding_post(), outstanding)
        except Exception as exc:  # noqa: BLE001  (pysaml2 raises many types, some bare Exception)
            raise _classify(exc) from exc
        if response is None:
            raise Refused("invalid_response", "pysaml2 returned no response.")
        xml = getattr(response, "xmlstr", b"")
        if xml:  # after decryption too: an encrypted assertion's own signature is only visible now
            _refuse_weak_algorithms(xml if isinstance(xml, bytes) else str(xml).encode())
        if not _assertion_signed(response):
            raise Refused("invalid_signature", "The assertion is not signed.")
        came_from = outstanding.get(response.in_response_to, "") if response.in_response_to else ""
        outstanding_cache.delete(response.session_id())
        _consume_once(self.connection, response)
        return _identity(self.connection, response), str(came_from or "")


def _binding_post() -> str:
    import saml2

    return saml2.BINDING_HTTP_POST


def _decode(raw: str) -> bytes:
    try:
        return base64.b64decode(raw, validate=False)
    except (binascii.Error, ValueError):
        raise Refused("invalid_response", "SAMLResponse is not base64.") from None


def _replay_key(connection: SsoConnection, assertion_id: str) -> str:
    return REPLAY_KEY.format(connection=connection.pk, assertion=str(assertion_id)[:100])


def _refuse_weak_algorithms(xml: bytes) -> str:
    """Refuse a response with any SHA-1 (or MD5) signature or digest, wherever the signature sits; return the
    (unverified) id of its plain assertion, if any."""
    from defusedxml import ElementTree

    try:
        root = ElementTree.fromstring(xml)
    except Exception:  # noqa: BLE001  (malformed XML, entity tricks)
        raise Refused("invalid_response", "SAMLResponse is not well-formed XML.") from None
    for tag in ("SignatureMethod", "DigestMethod"):
        for element in root.iter(f"{{{DSIG_NS}}}{tag}"):
            if element.get("Algorithm", "").strip() in WEAK_ALGORITHMS:
                raise Refused("weak_signature", f"{tag} {element.get('Algorithm', '')[:100]} is not accepted.")
    assertion = root.find(f".//{{{SAML_NS}}}Assertion")
    return assertion.get("ID", "") if assertion is not None else ""


def _classify(exc: Exception) -> Refused:
    from saml2.response import IncorrectlySigned, StatusError, UnsolicitedResponse
    from saml2.sigver import SignatureError, SigverError
    from saml2.validate import ResponseLifetimeExceed, ToEarly

    name = type(exc).__name__
    if isinstance(exc, (SignatureError, IncorrectlySigned, SigverError)):
        return Refused("invalid_signature", name)
    if isinstance(exc, ResponseLifetimeExceed):
        return Refused("expired", name)
    if isinstance(exc, ToEarly):
        return Refused("not_yet_valid", name)
    if isinstance(exc, UnsolicitedResponse):
        return Refused("unsolicited", name)
    if isinstance(exc, StatusError):
        return Refused("idp_error", f"{name}: {str(exc)[:150]}")
    if "AudienceRestrictions" in str(exc):
        return Refused("wrong_audience", name)
    logger.info("SAML response refused: %s", name, exc_info=True)
    return Refused("invalid_response", name)


def _assertion_signed(response: Any) -> bool:
    """pysaml2 verified every signature present; require that the assertion or the whole response carried one."""
    assertion = getattr(response, "assertion", None)
    return bool(getattr(assertion, "signature", None) or getattr(response.response, "signature", None))


def _consume_once(connection: SsoConnection, response: Any) -> None:
    """Accept an assertion id once, for as long as the assertion is valid (atomic ``add`` on the shared cache)."""
    assertion_id = getattr(response.assertion, "id", "") or response.id()
    not_on_or_after = getattr(response, "not_on_or_after", 0) or 0
    ttl = max(60, int(not_on_or_after - time.time()) + 300) if not_on_or_after else 3600
    if not cache.add(_replay_key(connection, assertion_id), 1, timeout=min(ttl, 86400)):
        raise Refused("replayed", "This assertion was already used.")


def _attributes(response: Any) -> dict[str, list[str]]:
    """Attribute values by friendly name (pysaml2's maps) and by their raw Name, so a mapping may use either."""
    out: dict[str, list[str]] = {k: [str(v) for v in vs] for k, vs in (response.ava or {}).items()}
    for statement in getattr(response.assertion, "attribute_statement", []) or []:
        for attribute in statement.attribute or []:
            values = [str(v.text).strip() for v in attribute.attribute_value or [] if v.text]
            for name in filter(None, (attribute.name, attribute.friendly_name)):
                out.setdefault(name, values)
    return out


def _first(values: list[str] | None) -> str:
    return values[0] if values else ""


def _identity(connection: SsoConnection, response: Any) -> SsoIdentity:
    attributes = _attributes(response)
    mapping = connection.attribute_mapping or {}
    name_id = str(getattr(response.name_id, "text", "") or "").strip()

    def mapped(field: str, *defaults: str) -> str:
        source = mapping.get(field)
        if source == "NameID":
            return name_id
        for name in ([source] if source else list(defaults)):
            if attributes.get(name):
                return _first(attributes[name])
        return ""

    email = mapped("email") if mapping.get("email", "NameID") != "NameID" else name_id
    groups = tuple(attributes.get(connection.group_attribute, [])) if connection.group_attribute else ()
    classes = {str(c) for c, _authorities, _instant in response.authn_info()}
    return SsoIdentity(email=email, subject=name_id, first_name=mapped("first_name", "givenName"),
                       last_name=mapped("last_name", "sn", "surname"), groups=groups,
                       idp_mfa=bool(classes & MFA_AUTHN_CONTEXTS))
