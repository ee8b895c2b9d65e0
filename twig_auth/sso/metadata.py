"""Read an identity provider's SAML metadata: entity id, sign-in URLs and signing certificates.

Metadata comes from org admins (pasted, uploaded or fetched from a URL they typed), so it is hostile input:
it is parsed with defusedxml with DTDs forbidden outright (no external entities, no entity expansion bombs,
nothing read from disk or the network while parsing) and capped at :data:`MAX_BYTES`. Errors say what is
wrong in words an admin can act on.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import ipaddress
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit
from xml.etree.ElementTree import Element  # noqa: S405  (type only; parsing goes through defusedxml)

from twig_auth.core import clock
from twig_auth.exceptions import InvalidInput

MAX_BYTES = 1_000_000
FETCH_TIMEOUT_SECONDS = 5.0
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
BINDING_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
BINDING_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
SAML2_PROTOCOL = "urn:oasis:names:tc:SAML:2.0:protocol"
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class Certificate:
    pem: str
    not_after: dt.datetime
    fingerprint_sha256: str
    subject: str = ""

    def as_json(self) -> dict[str, str]:
        """The form stored in ``SsoConnection.idp_certificates``."""
        return {"pem": self.pem, "not_after": self.not_after.isoformat(), "fingerprint_sha256": self.fingerprint_sha256}


@dataclass(frozen=True)
class IdpMetadata:
    entity_id: str
    sso_urls: dict[str, str]  # binding URI -> URL
    certificates: list[Certificate] = field(default_factory=list)
    valid_until: dt.datetime | None = None

    @property
    def sso_url(self) -> str:
        """The HTTP-Redirect endpoint when there is one (what most IdPs expect), else HTTP-POST."""
        return self.sso_urls.get(BINDING_REDIRECT) or self.sso_urls[BINDING_POST]


def _invalid(message: str, field_name: str = "idp_metadata_xml") -> InvalidInput:
    return InvalidInput({field_name: [message]}, message)


def _parse_xml(data: bytes) -> Element:
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import ParseError, fromstring

    try:
        return fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise _invalid("The metadata declares a DTD or entities; SAML metadata never needs them, so it is "
                       "refused.") from None
    except (ParseError, ValueError):
        raise _invalid("This is not XML (the metadata could not be parsed).") from None


def _certificate(text: str) -> Certificate:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    try:
        der = base64.b64decode("".join(text.split()), validate=True)
        cert = x509.load_der_x509_certificate(der)
    except (binascii.Error, ValueError):
        raise _invalid("A signing certificate in the metadata is not a valid X.509 certificate.") from None
    b64 = base64.b64encode(der).decode("ascii")
    pem = "-----BEGIN CERTIFICATE-----\n" + "\n".join(b64[i:i + 64] for i in range(0, len(b64), 64)) \
        + "\n-----END CERTIFICATE-----\n"
    return Certificate(pem=pem, not_after=cert.not_valid_after_utc, fingerprint_sha256=cert.fingerprint(
        hashes.SHA256()).hex(":").upper(), subject=cert.subject.rfc4514_string())


def _parse_instant(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _invalid(f"The metadata's validUntil {value[:40]!r} is not a date.") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _idp_entity(root: Element) -> Element:
    if root.tag == f"{{{MD}}}EntityDescriptor":
        return root
    if root.tag == f"{{{MD}}}EntitiesDescriptor":
        idps = [e for e in root.iter(f"{{{MD}}}EntityDescriptor") if e.find(f"{{{MD}}}IDPSSODescriptor") is not None]
        if len(idps) != 1:
            raise _invalid(f"The metadata lists {len(idps)} identity providers; use the metadata of yours alone.")
        return idps[0]
    raise _invalid("This is not SAML metadata: expected an EntityDescriptor element.")


def parse_idp_metadata(data: str | bytes, *, now: dt.datetime | None = None) -> IdpMetadata:
    """Return the identity provider described by ``data``; raise :class:`InvalidInput` (field
    ``idp_metadata_xml``) when it is not usable SAML 2.0 IdP metadata or every signing certificate expired."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if len(raw) > MAX_BYTES:
        raise _invalid(f"The metadata is larger than {MAX_BYTES // 1_000_000} MB.")
    now = now or clock.now()
    entity = _idp_entity(_parse_xml(raw))
    entity_id = (entity.get("entityID") or "").strip()
    if not entity_id:
        raise _invalid("The EntityDescriptor has no entityID.")
    valid_until = _parse_instant(entity.get("validUntil"))
    if valid_until is not None and valid_until <= now:
        raise _invalid(f"The metadata expired on {valid_until:%Y-%m-%d %H:%M} UTC (validUntil); fetch a fresh copy.")
    idp = entity.find(f"{{{MD}}}IDPSSODescriptor")
    if idp is None:
        raise _invalid("The metadata has no IDPSSODescriptor: it does not describe an identity provider.")
    if SAML2_PROTOCOL not in (idp.get("protocolSupportEnumeration") or "").split():
        raise _invalid("The identity provider does not support SAML 2.0 (protocolSupportEnumeration).")
    sso_urls: dict[str, str] = {}
    for service in idp.findall(f"{{{MD}}}SingleSignOnService"):
        binding, location = service.get("Binding"), (service.get("Location") or "").strip()
        if binding in (BINDING_REDIRECT, BINDING_POST) and location and binding not in sso_urls:
            if urlsplit(location).scheme not in ("https", "http"):
                raise _invalid(f"The SingleSignOnService location {location[:100]!r} is not a web address.")
            sso_urls[binding] = location
    if not sso_urls:
        raise _invalid("The metadata has no SingleSignOnService for the HTTP-Redirect or HTTP-POST binding.")
    certificates = [
        _certificate(cert.text or "")
        for key in idp.findall(f"{{{MD}}}KeyDescriptor") if key.get("use") in (None, "signing")
        for cert in key.iter(f"{{{DS}}}X509Certificate")
    ]
    if not certificates:
        raise _invalid("The metadata has no signing certificate (KeyDescriptor use=\"signing\" with an "
                       "X509Certificate): assertions could not be verified.")
    current = [c for c in certificates if c.not_after > now]
    if not current:
        latest = max(c.not_after for c in certificates)
        raise _invalid(f"The IdP's signing certificate expired on {latest:%Y-%m-%d} ({latest:%H:%M} UTC); "
                       "ask the IdP for its new certificate or metadata.")
    return IdpMetadata(entity_id=entity_id, sso_urls=sso_urls, certificates=certificates, valid_until=valid_until)


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return
    if parts.scheme == "http" and host in LOCAL_HOSTS:
        return
    raise _invalid("The metadata URL must start with https:// (plain http only for localhost).", "idp_metadata_url")


class _SafeRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to a URL :func:`_check_url` accepts (never https → http, never file:)."""

    max_redirections = 3

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        _check_url(newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _is_local(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def fetch_metadata(url: str, *, timeout: float = FETCH_TIMEOUT_SECONDS) -> bytes:
    """Download metadata from ``url`` (https; http for localhost) and return its bytes, at most
    :data:`MAX_BYTES`; raise :class:`InvalidInput` (field ``idp_metadata_url``) with the reason otherwise."""
    if not isinstance(url, str) or len(url) > 2000:
        raise _invalid("Enter the metadata URL.", "idp_metadata_url")
    _check_url(url)
    handlers: list[Any] = [_SafeRedirects()]
    if _is_local(urlsplit(url).hostname or ""):
        handlers.append(urllib.request.ProxyHandler({}))  # a proxy from the environment cannot reach our loopback
    opener = urllib.request.build_opener(*handlers)
    # the scheme is https (or http on loopback), checked above and on every redirect
    request = urllib.request.Request(url, headers={"Accept": "application/samlmetadata+xml, application/xml"})  # noqa: S310
    try:
        with opener.open(request, timeout=timeout) as response:
            body = response.read(MAX_BYTES + 1)
    except urllib.error.HTTPError as exc:
        if 300 <= exc.code < 400:  # urllib refuses redirects to schemes other than http(s) itself
            raise _invalid("The metadata URL redirected elsewhere than an https:// address.",
                           "idp_metadata_url") from None
        raise _invalid(f"The metadata URL answered HTTP {exc.code}.", "idp_metadata_url") from None
    except InvalidInput:
        raise
    except TimeoutError:
        raise _invalid(f"The metadata URL did not answer within {timeout:g} seconds.", "idp_metadata_url") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError):
            raise _invalid(f"The metadata URL did not answer within {timeout:g} seconds.",
                           "idp_metadata_url") from None
        raise _invalid(f"The metadata could not be fetched ({str(reason)[:120]}).", "idp_metadata_url") from None
    if len(body) > MAX_BYTES:
        raise _invalid(f"The metadata at that URL is larger than {MAX_BYTES // 1_000_000} MB.", "idp_metadata_url")
    return body


def apply_to_connection(connection: Any, parsed: IdpMetadata, xml: str) -> None:
    """Copy what the SP configuration needs from ``parsed`` onto ``connection`` (not saved)."""
    connection.idp_metadata_xml = xml
    connection.idp_entity_id = parsed.entity_id
    connection.idp_sso_url = parsed.sso_url
    connection.idp_certificates = [c.as_json() for c in parsed.certificates]
