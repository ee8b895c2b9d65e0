""""Use my key" in a real browser: an admin adds the org's OpenAI key (masked from then on), sets an agent to use
it, asks a question and gets the model's answer, paid by that key; the local OpenAI-format server saw exactly that
key. Screenshots: artifacts/screens/vault-*.png."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD, oathtool
from tests.e2e.conftest import PHONE, sign_in
from tests.peers.llm_server import run_llm_peer

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

OPENAI_KEY = "sk-proj-browser-test-key-Zx81abcd"
PLATFORM_KEY = "sk-twig-platform-browser-0001"


@pytest.fixture
def llm_peer(settings: Any) -> Any:
    with run_llm_peer(OPENAI_KEY, PLATFORM_KEY) as peer:
        settings.TWIG_LLM = {"openai": {"base_url": peer.openai_url, "api_key": PLATFORM_KEY},
                             "anthropic": {"base_url": peer.anthropic_url, "api_key": ""},
                             "timeout": 10, "connect_timeout": 5}
        yield peer


def no_sideways_scroll(page: Any) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_add_a_key_see_it_masked_and_ask_with_use_my_key(new_page: Any, screenshot: Any, owner: Any, org: Any,
                                                         totp_device: Any, llm_peer: Any) -> None:
    from twig_auth.core.context import RequestContext
    from twig_project.workspace import services
    from twig_project.workspace.models import Agent, Interaction

    support = services.create_agent(org=org, name="Support", description="Answers customers of Acme.",
                                    instructions="You are Acme's support agent.",
                                    config={"faq": {"refund": "Refunds take 5 business days."}},
                                    context=RequestContext.system(owner.user))
    services.create_agent(org=org, name="Sales", model_provider="anthropic", model_name="claude-3-5-haiku-latest",
                          context=RequestContext.system(owner.user))
    page = new_page()
    sign_in(page, "owner@acme.test", PASSWORD)
    phone = new_page(PHONE)
    sign_in(phone, "owner@acme.test", PASSWORD)
    _, secret = totp_device(owner.user)  # saving a key asks for a second factor (added after signing in)

    # Settings → External API keys: add the org's OpenAI key.
    page.goto("/")
    page.get_by_role("link", name="External API keys").click()
    page.wait_for_url("**/settings/external-api-keys/")
    expect(page.get_by_role("heading", name="External API keys", level=1)).to_be_visible()
    page.get_by_label("Provider", exact=True).select_option("openai")
    page.get_by_label("API key", exact=True).fill(OPENAI_KEY)
    page.get_by_label("Verification code").fill(oathtool(secret))
    screenshot(page, "vault-external-keys-add")
    page.get_by_role("button", name="Save key").click()
    page.wait_for_url("**/settings/external-api-keys/")
    expect(page.locator(".messages")).to_contain_text("sk-…abcd")
    expect(page.get_by_test_id("masked-key").first).to_have_text("sk-…abcd")
    assert OPENAI_KEY not in page.content()
    screenshot(page, "vault-external-keys-masked")

    # Agents: set Support to "Use my OpenAI key".
    page.goto("/")
    page.get_by_role("link", name="Agents", exact=True).click()
    page.wait_for_url("**/agents/")
    card = page.get_by_role("region", name="Support")
    expect(card.get_by_test_id("agent-model")).to_have_text("Built-in answers")
    key_select = card.get_by_label("API key", exact=True)
    expect(key_select.locator("option[value='anthropic']")).to_be_disabled()
    screenshot(page, "vault-agents-before")
    card.get_by_label("Model provider").select_option("openai")
    card.get_by_label("Model name").fill("gpt-4o-mini")
    key_select.select_option(label="Use my OpenAI key (sk-…abcd)")
    card.get_by_role("button", name="Save model of Support").click()
    page.wait_for_url(f"**/agents/#agent-{support.pk}")
    expect(page.locator(".messages")).to_contain_text("Support now answers with OpenAI · gpt-4o-mini.")
    card = page.get_by_role("region", name="Support")
    expect(card.get_by_test_id("agent-pays")).to_have_text("Your OpenAI key sk-…abcd")
    assert Agent.objects.filter(pk=support.pk, model_provider="openai", model_name="gpt-4o-mini",
                                key_source="org").exists()

    # Ask: the model answers, paid by the org's key.
    card.get_by_label("Question").fill("Where is my order #1042?")
    card.get_by_role("button", name="Ask Support").click()
    page.wait_for_url("**/agents/?answer=*")
    card = page.get_by_role("region", name="Support")
    expect(card.get_by_test_id("answer-text")).to_have_text("[gpt-4o-mini] You asked: Where is my order #1042?")
    expect(card.get_by_test_id("answer-paid-by")).to_have_text(
        "Answered by OpenAI · gpt-4o-mini. Paid by: your OpenAI key sk-…abcd")
    assert OPENAI_KEY not in page.content()
    screenshot(page, "vault-agents-answer")

    [request] = llm_peer.requests
    assert request.key == OPENAI_KEY
    assert request.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert request.body["model"] == "gpt-4o-mini"
    assert request.body["messages"][-1] == {"role": "user", "content": "Where is my order #1042?"}
    interaction = Interaction.objects.get()
    assert (interaction.paid_by, interaction.key_masked, interaction.user_id) == ("org", "sk-…abcd", owner.user_id)

    # The provider refuses the key: the page says so, in Twig's words.
    llm_peer.keys.discard(OPENAI_KEY)
    card.get_by_label("Question").fill("And now?")
    card.get_by_role("button", name="Ask Support").click()
    page.wait_for_load_state()
    error = page.get_by_role("region", name="Support").get_by_test_id("ask-error")
    expect(error).to_contain_text("OpenAI refused your organization's API key sk-…abcd (HTTP 401")
    assert "Incorrect API key" not in page.content()
    screenshot(page, "vault-agents-provider-error")
    assert Interaction.objects.count() == 1

    phone.goto("/agents/")
    no_sideways_scroll(phone)
    screenshot(phone, "vault-agents-phone")
    phone.goto("/settings/external-api-keys/")
    no_sideways_scroll(phone)
    screenshot(phone, "vault-external-keys-phone")
