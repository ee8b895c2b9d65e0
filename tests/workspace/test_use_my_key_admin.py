"""The admin's view of "use my key": interactions show who paid with the masked key, never the key; an agent's
model setting cannot be saved inconsistent from the admin either."""

from __future__ import annotations

import pytest
from django.contrib.admin.utils import quote

from twig_project.workspace.models import Agent, Interaction

from .conftest import ORG_OPENAI_KEY

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, make_user):
    staff = make_user("ops@example.test", is_staff=True, is_superuser=True)
    client.force_login(staff, backend="twig_auth.passwords.backends.EmailBackend")
    return client


def test_interactions_show_the_masked_key_that_paid(admin_client, org, owner, make_agent, org_key, llm_peer):
    from twig_auth.core.context import RequestContext
    from twig_project.workspace import services

    org_key(org, "openai")
    agent = make_agent(org, model_provider="openai", model_name="gpt-4o-mini", key_source="org")
    interaction = services.ask(org=org, agent=agent, question="hi", context=RequestContext.system(owner.user))
    listing = admin_client.get("/admin/workspace/interaction/", {"paid_by__exact": "org"})
    assert listing.status_code == 200
    html = listing.content.decode()
    assert interaction.pk in html and "sk-…abcd" in html and ORG_OPENAI_KEY not in html
    detail = admin_client.get(f"/admin/workspace/interaction/{quote(interaction.pk)}/change/")
    assert detail.status_code == 200
    html = detail.content.decode()
    assert "gpt-4o-mini" in html and "sk-…abcd" in html and ORG_OPENAI_KEY not in html


def test_an_inconsistent_model_setting_is_a_form_error(admin_client, org, make_agent):
    agent = make_agent(org)
    url = f"/admin/workspace/agent/{quote(agent.pk)}/change/"
    form = {"org": org.pk, "name": agent.name, "description": "", "instructions": "", "config": "{}",
            "status": "draft", "model_provider": "custom", "model_name": "llama3", "key_source": "platform"}
    response = admin_client.post(url, form)
    assert response.status_code == 200
    assert "a custom endpoint needs the organization&#x27;s key" in response.content.decode()
    assert Agent.objects.get(pk=agent.pk).model_provider == "builtin"
    response = admin_client.post(url, {**form, "key_source": "org"})
    assert response.status_code == 302
    assert Agent.objects.get(pk=agent.pk).model_provider == "custom"
    assert Interaction.objects.count() == 0
