"""OIDC SSO in a real Chromium (Playwright): twig's start URL → oidc-provider's own sign-in and consent pages
(AUTO_LOGIN off) → allauth's callback → signed in to the org. Here, not in tests/sso, to share the session's
one Playwright browser (a second sync_playwright in the same worker fails)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.sso.connections import verified_domain
from tests.sso.oidc_peer import CUSTOM_ID, run_op
from twig_auth.orgs.models import Membership
from twig_auth.sso.models import SsoConnection

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def interactive_op(live_server: Any, tmp_path: Any) -> Iterator[str]:
    with run_op(tmp_path / "op.log", live_server.url, auto_login=False) as issuer:
        yield issuer


def test_sign_in_through_the_providers_pages(live_server: Any, interactive_op: str, new_page: Any,
                                              make_org: Any) -> None:
    org = make_org("acme", plan="enterprise")
    verified_domain(org, "example.org")
    SsoConnection.objects.create(id=CUSTOM_ID, org=org, name="Okta", protocol="oidc", enabled=True,
                                 oidc_provider="okta", oidc_issuer=interactive_op, oidc_client_id="test-client",
                                 oidc_client_secret="test-secret")
    page = new_page()
    page.goto(f"{live_server.url}/sso/oidc/acme/login/?next=/account/")
    page.wait_for_url(f"{interactive_op}/interaction/**")
    page.fill("input[name=login]", "alice")
    page.fill("input[name=password]", "anything")
    page.click("button[type=submit]")
    page.wait_for_url(f"{interactive_op}/interaction/**")  # consent
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/account/**")
    assert Membership.objects.filter(org=org, user__email="alice@example.org").exists()
