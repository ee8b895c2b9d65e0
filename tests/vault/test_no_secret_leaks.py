"""One full run through every secret the vault holds, then a scan of everything a person or a log collector can
see: the log records (every logger, DEBUG), every column of every audit event, every page and API answer of the
run, and the admin's lists and change pages. None may hold a secret, or a recognisable middle part of one.

The run: an admin adds an OpenAI key on Settings → External API keys; an agent set to "use my key" answers a
query through the local OpenAI wire-format server, which checks the key it receives; the key is replaced by a
wrong one and the provider's 401 (whose body echoes part of the key) becomes a clean 502; an OIDC SSO
connection holds a client secret; a Google Drive data source is connected against oidc-provider, its token
refreshed, synced and disconnected.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from django.contrib.admin.utils import quote

from tests.connectors.conftest import connect, make_source, rotating_op, signed_in, use_op  # noqa: F401  (fixtures)
from tests.workspace.conftest import ORG_OPENAI_KEY, llm_peer  # noqa: F401  (fixtures)
from tests.workspace.helpers import JsonClient
from twig_auth.audit.models import AuditEvent
from twig_auth.connectors.models import OAuthToken
from twig_auth.connectors.tokens import access_token_for
from twig_auth.core import clock
from twig_auth.providerkeys.models import ExternalApiKey
from twig_auth.sso.models import SsoConnection
from twig_project.workspace import services as workspace
from twig_project.workspace.models import Interaction

pytestmark = pytest.mark.django_db(transaction=True)

WRONG_KEY = "sk-proj-wrong-but-secret-key-4242zz"
OIDC_SECRET = "oidc-client-secret-of-acme-9bq2x"


def fragments(secret: str) -> set[str]:
    """The secret and its middle: a leak of ``sk-proj-abc…`` minus the mask's visible ends still counts."""
    return {secret, secret[6:-4]} if len(secret) > 16 else {secret}


def test_a_full_run_leaves_no_secret_in_logs_audit_pages_api_or_admin(
        org, owner, make_member, rotating_op, use_op, llm_peer, make_source, caplog):  # noqa: F811
    caplog.set_level(logging.DEBUG)
    use_op(rotating_op)  # the refresh token rotates too: four tokens to look for
    admin = make_member(org, "admin", email="ada@acme.test")
    web = signed_in(admin)
    api = JsonClient(web, admin)
    seen: list[Any] = []  # every answer of the run

    def keep(response: Any) -> Any:
        seen.append(response)
        return response

    # external key, "use my key", a provider refusal
    assert keep(web.post("/settings/external-api-keys/add/", {"provider": "openai", "secret": ORG_OPENAI_KEY,
                                                             "endpoint_url": ""})).status_code == 302
    keep(web.get("/settings/external-api-keys/"))
    agent = workspace.create_agent(org=org, name="Support", context=_ctx(admin))
    patched = keep(api.patch(f"/api/agents/{agent.pk}",
                             {"model": {"provider": "openai", "name": "gpt-4o-mini", "key": "org"}}))
    assert patched.status_code == 200, patched.content
    answered = keep(api.post("/api/query", {"agent": agent.pk, "question": "What is the refund policy?"}))
    assert answered.status_code == 200, answered.content
    assert llm_peer.requests[-1].key == ORG_OPENAI_KEY
    key = ExternalApiKey.objects.get()
    assert keep(web.post(f"/settings/external-api-keys/{key.pk}/replace/",
                         {"provider": "openai", "secret": WRONG_KEY, "endpoint_url": ""})).status_code == 302
    refused = keep(api.post("/api/query", {"agent": agent.pk, "question": "And shipping?"}))
    assert refused.status_code == 502 and refused.json()["code"] == "provider_error"
    assert llm_peer.requests[-1].key == WRONG_KEY
    keep(api.get("/api/interactions"))
    keep(web.get("/agents/"))

    # an OIDC SSO connection's client secret
    sso = SsoConnection.objects.create(org=org, name="Okta", protocol="oidc", oidc_client_secret=OIDC_SECRET)
    keep(web.get("/settings/authentication/"))

    # a connector: connect, refresh, sync, disconnect
    source = make_source(org)
    tokens: set[str] = set()
    with clock.frozen() as frozen:
        row = connect(web, source)
        tokens |= {row.access_token, row.refresh_token}
        frozen.advance(hours=2)
        access_token_for(org=org, provider="google_drive", subject=source.pk)
        row.refresh_from_db()
        tokens |= {row.access_token, row.refresh_token}
        keep(web.get("/data-sources/"))
        assert keep(api.post(f"/api/data-sources/{source.pk}/sync")).status_code == 200
        keep(api.get("/api/data-sources"))
        connected_pk = row.pk
        # the admin while everything is stored
        web.user = admin.user
        admin.user.is_staff = admin.user.is_superuser = True
        admin.user.save(update_fields=["is_staff", "is_superuser"])
        for model, pk in ((ExternalApiKey, key.pk), (OAuthToken, connected_pk), (SsoConnection, sso.pk),
                          (Interaction, Interaction.objects.first().pk)):
            base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
            assert keep(web.get(base)).status_code == 200
            assert keep(web.get(f"{base}{quote(pk)}/change/")).status_code == 200
        assert keep(web.post(f"/data-sources/{source.pk}/disconnect/")).status_code == 302

    secrets = {ORG_OPENAI_KEY, WRONG_KEY, OIDC_SECRET, *tokens}
    assert len(tokens) == 4 and all(len(t) > 20 for t in tokens)
    events = set(AuditEvent.objects.values_list("event", flat=True))
    assert {"EXTERNAL_KEY_ADDED", "EXTERNAL_KEY_REPLACED", "CONNECTOR_CONNECTED", "CONNECTOR_REFRESHED",
            "CONNECTOR_DISCONNECTED", "AGENT_UPDATED"} <= events
    audit = json.dumps(list(AuditEvent.objects.values()), default=str)
    answers = "\n".join(r.content.decode(errors="replace") + str(dict(r.items())) for r in seen)
    logs = caplog.text + "\n".join(str(r.__dict__) for r in caplog.records)
    assert "tv1." not in answers  # not even a ciphertext is shown
    for secret in secrets:
        for part in fragments(secret):
            assert part not in logs, f"a log record holds {part[:6]}…"
            assert part not in audit, f"an audit event holds {part[:6]}…"
            assert part not in answers, f"a page or answer holds {part[:6]}…"


def _ctx(membership: Any) -> Any:
    from twig_auth.core.context import RequestContext

    return RequestContext(actor=membership.user)
