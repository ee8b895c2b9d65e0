"""The pysaml2 service-provider configuration of one org's SAML connection, and its SP metadata.

Each org is its own SP: entity id ``<SSO_BASE_URL>/sso/saml/<slug>/metadata/`` and ACS
``<SSO_BASE_URL>/sso/saml/<slug>/acs/``, built from the configured public origin, never from the request's
Host header (a spoofed Host would otherwise change the audience we accept). The shape is the ``SAML_CONFIG``
dict djangosaml2 reads, so next session's login views can hand it to djangosaml2 per request.

pysaml2 signs and digests with SHA-1 unless told otherwise, so SHA-256 is set explicitly. Signed assertions
are required (every mainstream IdP signs the assertion by default; a signature on the response alone is not
asked for, so IdPs that sign only the assertion work).
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse

from twig_auth.conf import app_settings
from twig_auth.sso.models import Protocol, SsoConnection

XMLSEC_DIRS = ["/usr/bin", "/usr/local/bin", "/opt/homebrew/bin"]


def xmlsec_binary() -> str:
    """Path of the ``xmlsec1`` binary pysaml2 signs and verifies with; a clear error when it is missing."""
    found = shutil.which("xmlsec1") or next(
        (os.path.join(d, "xmlsec1") for d in XMLSEC_DIRS if os.access(os.path.join(d, "xmlsec1"), os.X_OK)), None)
    if found is None:
        raise ImproperlyConfigured("SAML needs the xmlsec1 binary: apt-get install xmlsec1 (Debian/Ubuntu) or "
                                   "brew install libxmlsec1 (macOS).")
    return found


def base_url() -> str:
    base = app_settings.SSO_BASE_URL
    if not base:
        raise ImproperlyConfigured('Set TWIG_AUTH["SSO_BASE_URL"] to the public https origin of this deployment '
                                   "before using SAML.")
    return str(base).rstrip("/")


def sp_urls(org_slug: str) -> dict[str, str]:
    """Return the SP's ``entity_id`` and ``acs_url`` for the org with slug ``org_slug``."""
    base = base_url()
    return {"entity_id": base + reverse("twig_auth:sso_saml_metadata", args=[org_slug]),
            "acs_url": base + reverse("twig_auth:sso_saml_acs", args=[org_slug])}


def sp_key_files() -> tuple[str, str]:
    key, cert = app_settings.SSO_SP_PRIVATE_KEY_FILE, app_settings.SSO_SP_CERTIFICATE_FILE
    if not key or not cert:
        raise ImproperlyConfigured('Set TWIG_AUTH["SSO_SP_PRIVATE_KEY_FILE"] and ["SSO_SP_CERTIFICATE_FILE"] '
                                   "(a PEM key and certificate) before using SAML.")
    return str(key), str(cert)


def sp_config_dict(connection: SsoConnection, *, with_idp: bool = True) -> dict[str, Any]:
    """Return the pysaml2 SP configuration for ``connection``'s org; ``with_idp=False`` leaves the IdP
    metadata out (the SP metadata does not depend on it, and can be shown before the IdP is known)."""
    if connection.protocol != Protocol.SAML:
        raise ValueError("sp_config_dict needs a SAML connection")
    import saml2
    import saml2.saml
    from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

    urls = sp_urls(connection.org.slug)
    key_file, cert_file = sp_key_files()
    config: dict[str, Any] = {
        "entityid": urls["entity_id"],
        "xmlsec_binary": xmlsec_binary(),
        "key_file": key_file,
        "cert_file": cert_file,
        "encryption_keypairs": [{"key_file": key_file, "cert_file": cert_file}],
        "attribute_map_dir": os.path.join(os.path.dirname(saml2.__file__), "attributemaps"),
        "allow_unknown_attributes": True,
        "service": {"sp": {
            "name": f"{connection.org.name} (Twig)",
            "signing_algorithm": SIG_RSA_SHA256,
            "digest_algorithm": DIGEST_SHA256,
            "endpoints": {"assertion_consumer_service": [(urls["acs_url"], saml2.BINDING_HTTP_POST)]},
            "authn_requests_signed": True,
            "want_assertions_signed": True,
            "want_response_signed": False,
            "allow_unsolicited": False,
            "name_id_format": saml2.saml.NAMEID_FORMAT_EMAILADDRESS,
        }},
    }
    if with_idp and connection.idp_metadata_xml:
        config["metadata"] = {"inline": [connection.idp_metadata_xml]}
    return config


def sp_config(connection: SsoConnection, *, with_idp: bool = True) -> Any:
    """Return a loaded ``saml2.config.SPConfig`` for ``connection``."""
    from saml2.config import SPConfig

    config = SPConfig()
    config.load(sp_config_dict(connection, with_idp=with_idp))
    return config


def sp_metadata_xml(connection: SsoConnection) -> str:
    """Return the SP metadata XML to paste into (or let the IdP fetch from) the identity provider."""
    from saml2.metadata import create_metadata_string

    return create_metadata_string(None, config=sp_config(connection, with_idp=False), valid=None).decode("utf-8")


def sp_settings_problems() -> list[str]:
    """Return what is wrong with the SP key settings (empty when unset: SAML is then simply unavailable)."""
    key_path, cert_path = app_settings.SSO_SP_PRIVATE_KEY_FILE, app_settings.SSO_SP_CERTIFICATE_FILE
    if not key_path and not cert_path:
        return []
    if not key_path or not cert_path:
        return ["SSO_SP_PRIVATE_KEY_FILE and SSO_SP_CERTIFICATE_FILE must be set together."]
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    problems: list[str] = []
    try:
        with open(key_path, "rb") as fh:
            key = load_pem_private_key(fh.read(), password=None)
    except OSError as exc:
        return [f"SSO_SP_PRIVATE_KEY_FILE cannot be read ({exc.strerror or exc})."]
    except (ValueError, TypeError):
        return ["SSO_SP_PRIVATE_KEY_FILE is not an unencrypted PEM private key."]
    try:
        with open(cert_path, "rb") as fh:
            cert = x509.load_pem_x509_certificate(fh.read())
    except OSError as exc:
        return [f"SSO_SP_CERTIFICATE_FILE cannot be read ({exc.strerror or exc})."]
    except ValueError:
        return ["SSO_SP_CERTIFICATE_FILE is not a PEM certificate."]
    if cert.public_key().public_numbers() != key.public_key().public_numbers():  # type: ignore[union-attr]
        problems.append("SSO_SP_CERTIFICATE_FILE is not the certificate of SSO_SP_PRIVATE_KEY_FILE.")
    from twig_auth.core import clock

    if cert.not_valid_after_utc <= clock.now():
        problems.append(f"SSO_SP_CERTIFICATE_FILE expired on {cert.not_valid_after_utc:%Y-%m-%d}.")
    if not app_settings.SSO_BASE_URL:
        problems.append("SSO_BASE_URL is not set; SAML entity ids and ACS URLs are built from it.")
    return problems
