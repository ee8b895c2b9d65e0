"""Helpers of the SSO page tests: a complete SAML connection from real pysaml2 IdP metadata."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from twig_auth.orgs import services as org_services
from twig_auth.orgs.models import Organization
from twig_auth.sso import metadata
from twig_auth.sso.models import Protocol, SsoConnection, SsoDomain


@pytest.fixture
def make_connection(idp_metadata: Callable[..., str]) -> Callable[..., SsoConnection]:
    """Return ``make(org, enabled=True) -> SsoConnection``: a SAML connection with real IdP metadata."""

    def make(org: Organization, *, enabled: bool = True, **kw: Any) -> SsoConnection:
        xml = idp_metadata()
        connection = SsoConnection(org=org, name="Test IdP", protocol=Protocol.SAML, enabled=enabled, **kw)
        metadata.apply_to_connection(connection, metadata.parse_idp_metadata(xml), xml)
        connection.save()
        return connection

    return make


def verified_domain(org: Organization, domain: str) -> SsoDomain:
    from twig_auth.core import clock

    return SsoDomain.objects.create(org=org, domain=domain, verified_at=clock.now())


def enforce(org: Organization, on: bool = True) -> None:
    org_services.update_org_settings(org=org, patch={"sso": {"enforce": on}})
