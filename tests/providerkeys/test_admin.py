"""External API keys in the Django admin: the mask, never the key or its ciphertext; no add or change; delete goes
through the service (audited). Objects are addressed through admin ``quote()``."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.admin.utils import quote
from django.db import connection

from tests.providerkeys.conftest import ANTHROPIC_KEY, CUSTOM_KEY, OPENAI_KEY
from twig_auth.audit.models import AuditEvent
from twig_auth.providerkeys.models import ExternalApiKey

CHANGELIST = "/admin/twig_auth/externalapikey/"


@pytest.fixture
def admin_client(client: Any, make_user: Any, logged_in: Any) -> Any:
    return logged_in(make_user(email="root@example.test", is_staff=True, is_superuser=True))


@pytest.fixture
def keys(org: Any, make_org: Any, add_key: Any) -> list[ExternalApiKey]:
    return [add_key(org, "openai", OPENAI_KEY), add_key(org, "anthropic", ANTHROPIC_KEY),
            add_key(make_org("globex", name="Globex"), "custom", CUSTOM_KEY)]


def ciphertexts() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT secret FROM {ExternalApiKey._meta.db_table}")  # noqa: S608
        return [row[0] for row in cursor.fetchall()]


def assert_nothing_secret(body: str) -> None:
    for secret in (OPENAI_KEY, ANTHROPIC_KEY, CUSTOM_KEY, *ciphertexts()):
        assert secret not in body


def test_changelist_shows_masks_only(admin_client, keys):
    response = admin_client.get(CHANGELIST)
    assert response.status_code == 200
    body = response.content.decode()
    for key in keys:
        assert key.masked in body
    assert "https://llm.example.test/v1" in body and "Globex" in body
    assert_nothing_secret(body)
    assert f"{CHANGELIST}add/" not in body


def test_change_page_is_read_only_without_the_key(admin_client, keys):
    key = keys[0]
    response = admin_client.get(f"{CHANGELIST}{quote(key.pk)}/change/")
    assert response.status_code == 200
    body = response.content.decode()
    assert key.masked in body
    for field in ("secret", "masked", "provider", "endpoint_url"):
        assert f'name="{field}"' not in body  # every field is shown read-only, the key not at all
    assert "Secret" not in body
    assert_nothing_secret(body)
    assert admin_client.post(f"{CHANGELIST}{quote(key.pk)}/change/", {"masked": "hacked"}).status_code == 403
    assert ExternalApiKey.objects.get(pk=key.pk).masked == key.masked


def test_no_adding_in_the_admin(admin_client, keys):
    assert admin_client.get(f"{CHANGELIST}add/").status_code == 403


def test_search_by_org_works_without_decrypting(admin_client, keys):
    response = admin_client.get(CHANGELIST, {"q": "globex"})
    body = response.content.decode()
    assert response.status_code == 200 and keys[2].masked in body and keys[0].masked not in body


def test_deleting_in_the_admin_is_audited(admin_client, keys):
    key = keys[1]
    url = f"{CHANGELIST}{quote(key.pk)}/delete/"
    confirm = admin_client.get(url)
    assert confirm.status_code == 200
    assert_nothing_secret(confirm.content.decode())
    response = admin_client.post(url, {"post": "yes"})
    assert response.status_code == 302
    assert not ExternalApiKey.objects.filter(pk=key.pk).exists()
    [event] = AuditEvent.objects.filter(event="EXTERNAL_KEY_DELETED")
    assert event.target_id == key.pk and event.details["masked"] == key.masked
    assert event.user.email == "root@example.test"


def test_bulk_delete_action_is_audited_per_key(admin_client, keys):
    response = admin_client.post(CHANGELIST, {"action": "delete_selected", "_selected_action": [k.pk for k in keys[:2]],
                                              "post": "yes"})
    assert response.status_code == 302
    assert list(ExternalApiKey.objects.values_list("provider", flat=True)) == ["custom"]
    assert AuditEvent.objects.filter(event="EXTERNAL_KEY_DELETED").count() == 2
