"""Settings → External API keys: admins only (any plan), the table of providers with masks, add / replace / delete
with a second factor, the key never rendered back (errors, step-up prompt), bad and hostile input answered
clearly, the home link."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.admin.utils import quote
from django.test import Client

from tests.conftest import oathtool
from tests.pages.conftest import HOSTILE, alert_text, field_errors, text
from tests.providerkeys.conftest import ANTHROPIC_KEY, CUSTOM_KEY, OPENAI_KEY
from tests.support.clients import signed_in
from twig_auth.audit.models import AuditEvent
from twig_auth.mfa.guard import CODE_FIELD
from twig_auth.providerkeys.models import ExternalApiKey
from twig_auth.providerkeys.views import RESUME_FIELD

PAGE = "/settings/external-api-keys/"
ADD = PAGE + "add/"
NEW_KEY = "sk-proj-Replacement0000000000000000009876"


def replace_url(key: ExternalApiKey) -> str:
    return f"{PAGE}{key.pk}/replace/"


def delete_url(key: ExternalApiKey) -> str:
    return f"{PAGE}{key.pk}/delete/"


def row(body: str, provider: str) -> str:
    match = re.search(rf'<tr class="key-row" data-provider="{provider}".*?</tr>', body, re.S)
    assert match, f"no row for {provider}"
    return match.group(0)


def hidden_inputs(body: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', body))


def assert_no_secret(response: Any, *secrets: str) -> None:
    body = text(response)
    for secret in secrets:
        assert secret not in body and secret[8:-4] not in body


@pytest.fixture
def admin(org: Any, make_member: Any) -> Any:
    return make_member(org, "admin", email="ada@acme.test")


# --- who may see the page --------------------------------------------------------------------------------------

def test_an_admin_sees_every_provider_not_set(org, admin):
    response = signed_in(admin).get(PAGE)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    body = text(response)
    for provider in ("openai", "anthropic", "custom"):
        assert 'data-testid="not-set">Not set<' in row(body, provider)
    assert f'action="{ADD}"' in body
    for name, label in (("provider", "Provider"), ("secret", "API key"), ("endpoint_url", "Endpoint URL")):
        assert f'<label for="id_{name}">{label}' in body and f'id="id_{name}"' in body
    assert re.search(r'<input type="password" name="secret"[^>]*autocomplete="off"', body)
    assert "data-endpoint-field" in body and 'select.value === "custom"' in body


@pytest.mark.parametrize("role", ["manager", "user"])
def test_members_below_admin_are_refused_everywhere(org, make_member, add_key, role):
    key = add_key(org, "openai")
    client = signed_in(make_member(org, role))
    for method, url in (("get", PAGE), ("post", ADD), ("get", replace_url(key)), ("post", replace_url(key)),
                        ("get", delete_url(key)), ("post", delete_url(key))):
        response = getattr(client, method)(url, {"provider": "openai", "secret": NEW_KEY} if method == "post" else {})
        assert response.status_code == 403, (method, url)
        assert "Only admins of the organization can manage its external API keys." in text(response)
        assert_no_secret(response, OPENAI_KEY)
    assert ExternalApiKey.objects.get().secret == OPENAI_KEY
    assert not AuditEvent.objects.filter(event__in=["EXTERNAL_KEY_REPLACED", "EXTERNAL_KEY_DELETED"]).exists()


def test_a_user_without_an_organization_is_refused(make_user):
    client = Client()
    client.force_login(make_user(), backend="twig_auth.passwords.backends.EmailBackend")
    assert client.get(PAGE).status_code == 403


def test_anonymous_visitors_are_sent_to_sign_in(db):
    response = Client().get(PAGE)
    assert response.status_code == 302 and response["Location"].startswith("/login/")


@pytest.mark.parametrize("plan", ["free", "team"])
def test_every_plan_may_hold_keys(make_org, make_member, plan):
    member = make_member(make_org(f"small-{plan}", plan=plan), "super_admin")
    response = signed_in(member).post(ADD, {"provider": "openai", "secret": OPENAI_KEY})
    assert response.status_code == 302
    assert ExternalApiKey.objects.get().org_id == member.org_id


def test_the_home_page_links_the_page_for_admins_only(org, admin, make_member):
    assert f'href="{PAGE}"' in text(signed_in(admin).get("/"))
    assert f'href="{PAGE}"' not in text(signed_in(make_member(org, "manager")).get("/"))


# --- adding ----------------------------------------------------------------------------------------------------

def test_adding_a_key_shows_it_masked_and_never_in_clear(org, admin):
    client = signed_in(admin)
    response = client.post(ADD, {"provider": "openai", "secret": OPENAI_KEY, "endpoint_url": ""})
    assert response.status_code == 302 and response["Location"] == PAGE
    key = ExternalApiKey.objects.get()
    assert (key.org_id, key.provider, key.secret, key.created_by) == (org.pk, "openai", OPENAI_KEY, admin.user)
    page = client.get(PAGE)
    body = text(page)
    assert '<code class="key-prefix" data-testid="masked-key">sk-…wxyz</code>' in row(body, "openai")
    assert "by ada@acme.test" in row(body, "openai") and "Never" in row(body, "openai")
    assert f'href="{replace_url(key)}"' in body and f'href="{delete_url(key)}"' in body
    assert "The OpenAI key sk-…wxyz is saved." in body
    assert_no_secret(page, OPENAI_KEY)
    event = AuditEvent.objects.get(event="EXTERNAL_KEY_ADDED")
    assert event.user == admin.user and event.details["masked"] == "sk-…wxyz"


def test_the_custom_provider_needs_an_endpoint_and_shows_it(org, admin):
    client = signed_in(admin)
    missing = client.post(ADD, {"provider": "custom", "secret": CUSTOM_KEY, "endpoint_url": ""})
    assert missing.status_code == 200
    assert field_errors(missing, "endpoint_url") == ["Enter the endpoint&#x27;s base URL, e.g. https://llm.example.com/v1."]
    assert not ExternalApiKey.objects.exists()
    saved = client.post(ADD, {"provider": "custom", "secret": CUSTOM_KEY, "endpoint_url": "http://localhost:11434/v1/"})
    assert saved.status_code == 302
    assert ExternalApiKey.objects.get().endpoint_url == "http://localhost:11434/v1"
    assert "<code class=\"break-anywhere\">http://localhost:11434/v1</code>" in row(text(client.get(PAGE)), "custom")


def test_after_an_error_the_key_is_not_rendered_back(org, admin):
    client = signed_in(admin)
    response = client.post(ADD, {"provider": "anthropic", "secret": OPENAI_KEY})
    assert response.status_code == 200
    assert field_errors(response, "secret") == ["Anthropic keys start with “sk-ant-”: copy the whole key from the "
                                                "Anthropic dashboard."]
    assert alert_text(response) == "Please fix the problems highlighted below."
    assert_no_secret(response, OPENAI_KEY)
    assert re.search(r'<input type="password" name="secret"[^>]*autofocus', text(response))
    assert '<option value="anthropic" selected>' in text(response)
    assert not ExternalApiKey.objects.exists() and not AuditEvent.objects.filter(event__startswith="EXTERNAL").exists()


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_input_is_refused_without_a_500(org, admin, name):
    value = HOSTILE[name]
    client = signed_in(admin)
    for data in ({"provider": value, "secret": OPENAI_KEY}, {"provider": "openai", "secret": value},
                 {"provider": "custom", "secret": CUSTOM_KEY, "endpoint_url": value}):
        response = client.post(ADD, data)
        assert response.status_code == 200, data
        assert "<script>alert(1)</script>" not in text(response)
    assert not ExternalApiKey.objects.exists()


def test_a_get_on_the_add_url_goes_to_the_form(org, admin):
    response = signed_in(admin).get(ADD + "?provider=anthropic")
    assert response.status_code == 302 and response["Location"] == PAGE + "?provider=anthropic#add"
    page = signed_in(admin).get(PAGE + "?provider=anthropic")
    assert '<option value="anthropic" selected>' in text(page)


def test_the_form_preselects_the_first_provider_without_a_key(org, admin, add_key):
    add_key(org, "openai")
    assert '<option value="anthropic" selected>' in text(signed_in(admin).get(PAGE))


def test_adding_for_a_provider_that_has_a_key_replaces_it(org, admin, add_key):
    first = add_key(org, "openai")
    assert signed_in(admin).post(ADD, {"provider": "openai", "secret": NEW_KEY}).status_code == 302
    [key] = ExternalApiKey.objects.all()
    assert key.pk == first.pk and key.secret == NEW_KEY and key.masked == "sk-…9876"
    assert AuditEvent.objects.filter(event="EXTERNAL_KEY_REPLACED").count() == 1


# --- the second factor -----------------------------------------------------------------------------------------

def test_without_a_recent_second_factor_the_prompt_never_carries_the_key(org, admin, totp_device):
    _, secret_b32 = totp_device(admin.user)
    client = signed_in(admin, step_up=False)
    prompt = client.post(ADD, {"provider": "custom", "secret": CUSTOM_KEY, "endpoint_url": "https://llm.example.test"})
    assert prompt.status_code == 200
    body = text(prompt)
    assert "To save an external API key, enter a code from your second factor." in body
    assert_no_secret(prompt, CUSTOM_KEY)
    replay = hidden_inputs(body)
    assert replay.pop("csrfmiddlewaretoken")
    assert replay == {"provider": "custom", "endpoint_url": "https://llm.example.test", RESUME_FIELD: "1"}
    assert not ExternalApiKey.objects.exists()
    # The prompt posts the other fields with the code: the code is accepted, the key is asked for again.
    back = client.post(ADD, {**replay, CODE_FIELD: oathtool(secret_b32)})
    assert back.status_code == 200
    assert "Paste the API key again and save" in text(back) and field_errors(back, "secret") == []
    assert '<option value="custom" selected>' in text(back)
    assert 'value="https://llm.example.test"' in text(back)
    assert not ExternalApiKey.objects.exists()
    # Now the second factor is recent: one more post saves.
    saved = client.post(ADD, {"provider": "custom", "secret": CUSTOM_KEY, "endpoint_url": "https://llm.example.test"})
    assert saved.status_code == 302 and ExternalApiKey.objects.get().secret == CUSTOM_KEY


def test_the_code_can_come_with_the_key_in_one_post(org, admin, totp_device):
    _, secret_b32 = totp_device(admin.user)
    client = signed_in(admin, step_up=False)
    page = text(client.get(PAGE))
    assert f'name="{CODE_FIELD}"' in page and '<label for="id_step_up_code">Verification code</label>' in page
    response = client.post(ADD, {"provider": "anthropic", "secret": ANTHROPIC_KEY, CODE_FIELD: oathtool(secret_b32)})
    assert response.status_code == 302
    assert ExternalApiKey.objects.get().secret == ANTHROPIC_KEY
    assert f'name="{CODE_FIELD}"' not in text(client.get(PAGE))  # fresh now: no code field


def test_a_wrong_inline_code_saves_nothing_and_drops_the_key(org, admin, totp_device):
    _, secret_b32 = totp_device(admin.user)
    wrong = f"{(int(oathtool(secret_b32)) + 7) % 1_000_000:06d}"
    client = signed_in(admin, step_up=False)
    response = client.post(ADD, {"provider": "openai", "secret": OPENAI_KEY, CODE_FIELD: wrong})
    assert response.status_code == 400
    assert 'id="id_step_up_code_error"' in text(response)
    assert_no_secret(response, OPENAI_KEY)
    assert not ExternalApiKey.objects.exists()


def test_invalid_input_is_reported_before_any_code_is_asked(org, admin, totp_device):
    totp_device(admin.user)
    response = signed_in(admin, step_up=False).post(ADD, {"provider": "openai", "secret": "nope"})
    assert response.status_code == 200 and field_errors(response, "secret")
    assert "Confirm it" not in text(response)


def test_an_admin_without_a_second_factor_is_told_to_set_one_up(org, admin):
    client = signed_in(admin, step_up=False)
    assert 'data-testid="mfa-needed"' in text(client.get(PAGE))
    response = client.post(ADD, {"provider": "openai", "secret": OPENAI_KEY})
    assert response.status_code == 403
    assert "you need two-factor authentication" in text(response)
    assert_no_secret(response, OPENAI_KEY)
    assert not ExternalApiKey.objects.exists()


def test_deleting_needs_a_recent_second_factor(org, admin, totp_device, add_key):
    _, secret_b32 = totp_device(admin.user)
    key = add_key(org, "openai")
    client = signed_in(admin, step_up=False)
    prompt = client.post(delete_url(key))
    assert prompt.status_code == 200 and "To delete an external API key" in text(prompt)
    assert ExternalApiKey.objects.exists()
    done = client.post(delete_url(key), {CODE_FIELD: oathtool(secret_b32)})
    assert done.status_code == 302 and not ExternalApiKey.objects.exists()


# --- replace and delete ----------------------------------------------------------------------------------------

def test_replace_page_keeps_the_row_and_asks_only_for_the_key(org, admin, add_key):
    key = add_key(org, "openai")
    client = signed_in(admin)
    page = client.get(replace_url(key))
    assert page.status_code == 200
    body = text(page)
    assert "Replace the OpenAI key" in body and "sk-…wxyz" in body
    assert 'name="provider"' not in body and 'name="endpoint_url"' not in body
    assert_no_secret(page, OPENAI_KEY)
    bad = client.post(replace_url(key), {"secret": ANTHROPIC_KEY})
    assert bad.status_code == 200 and "looks like an Anthropic key" in field_errors(bad, "secret")[0]
    assert_no_secret(bad, ANTHROPIC_KEY)
    done = client.post(replace_url(key), {"secret": NEW_KEY, "provider": "anthropic"})  # provider is fixed
    assert done.status_code == 302
    [stored] = ExternalApiKey.objects.all()
    assert (stored.pk, stored.provider, stored.secret) == (key.pk, "openai", NEW_KEY)


def test_replacing_a_custom_key_can_move_its_endpoint_only_with_the_key(org, admin, add_key):
    key = add_key(org, "custom", endpoint_url="https://old.example.test/v1")
    client = signed_in(admin)
    page = text(client.get(replace_url(key)))
    assert 'value="https://old.example.test/v1"' in page and '<label for="id_endpoint_url">Endpoint URL</label>' in page
    refused = client.post(replace_url(key), {"secret": "", "endpoint_url": "https://evil.example.test/v1"})
    assert refused.status_code == 200 and field_errors(refused, "secret") == ["Enter the API key."]
    assert ExternalApiKey.objects.get().endpoint_url == "https://old.example.test/v1"
    moved = client.post(replace_url(key), {"secret": CUSTOM_KEY, "endpoint_url": "https://new.example.test/v1"})
    assert moved.status_code == 302 and ExternalApiKey.objects.get().endpoint_url == "https://new.example.test/v1"


def test_delete_asks_for_confirmation_then_deletes(org, admin, add_key):
    key = add_key(org, "anthropic")
    client = signed_in(admin)
    confirm = client.get(delete_url(key))
    assert confirm.status_code == 200
    assert "Delete the Anthropic key?" in text(confirm) and key.masked in text(confirm)
    assert f'action="{delete_url(key)}"' in text(confirm)
    assert ExternalApiKey.objects.exists()
    done = client.post(delete_url(key))
    assert done.status_code == 302 and done["Location"] == PAGE
    assert not ExternalApiKey.objects.exists()
    assert f"The Anthropic key {key.masked} was deleted." in text(client.get(PAGE))
    assert AuditEvent.objects.filter(event="EXTERNAL_KEY_DELETED", user=admin.user).count() == 1
    assert client.post(delete_url(key)).status_code == 404


@pytest.mark.parametrize("key_pk", ["xak_unknown000000000", "nope", "xak_%00", quote("xak_a\x00b")])
def test_unknown_and_malformed_ids_are_404(org, admin, key_pk):
    client = signed_in(admin)
    for url in (f"{PAGE}{key_pk}/replace/", f"{PAGE}{key_pk}/delete/"):
        assert client.get(url).status_code == 404
        assert client.post(url, {"secret": OPENAI_KEY}).status_code == 404


def test_another_orgs_key_is_404(org, admin, make_org, add_key):
    theirs = add_key(make_org("globex"), "openai")
    client = signed_in(admin)
    assert client.get(replace_url(theirs)).status_code == 404
    assert client.post(replace_url(theirs), {"secret": NEW_KEY}).status_code == 404
    assert client.post(delete_url(theirs)).status_code == 404
    assert ExternalApiKey.objects.get().secret == OPENAI_KEY


def test_last_used_shows_on_the_page(org, admin, add_key):
    from twig_auth.providerkeys.services import mark_used

    key = add_key(org, "openai")
    mark_used(key.pk)
    assert "just now" in row(text(signed_in(admin).get(PAGE)), "openai")
