"""SSO pages: the SP metadata each org's IdP needs (public: IdPs fetch it unauthenticated). The SAML login and
ACS are in :mod:`twig_auth.sso.saml_flow`."""

from __future__ import annotations

import logging

from django.core.exceptions import ImproperlyConfigured
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from twig_auth.sso import saml_config
from twig_auth.sso.models import Protocol, SsoConnection

logger = logging.getLogger("twig_auth.sso")


def _saml_connection(org_slug: str) -> SsoConnection:
    connection = (SsoConnection.objects.select_related("org")
                  .filter(org__slug=org_slug, protocol=Protocol.SAML).first())
    if connection is None or not connection.org.is_enterprise:
        raise Http404("No SAML connection for this organization.")
    return connection


@require_GET
def sp_metadata(request: HttpRequest, org_slug: str) -> HttpResponse:
    """Return the org's SP metadata XML (also before the connection is enabled: the IdP needs it first)."""
    connection = _saml_connection(org_slug)
    try:
        xml = saml_config.sp_metadata_xml(connection)
    except ImproperlyConfigured as exc:
        logger.error("SAML SP metadata unavailable: %s", exc)
        return HttpResponse("SAML is not configured on this server.", status=503, content_type="text/plain")
    response = HttpResponse(xml, content_type="application/samlmetadata+xml")
    response["Content-Disposition"] = f'inline; filename="{connection.org.slug}-sp-metadata.xml"'
    return response
