"""ExternalApiKey at rest: the column holds an AES-256-GCM token bound to its row, the mask is stored beside it,
lists never decrypt, the credential handed to provider clients does not print its key."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.providerkeys.conftest import ANTHROPIC_KEY, OPENAI_KEY
from twig_auth.exceptions import DecryptionFailed
from twig_auth.providerkeys import services
from twig_auth.providerkeys.models import ExternalApiKey
from twig_auth.vault import rotation
from twig_auth.vault.ciphers import format_key, new_key
from twig_auth.vault.masking import mask_secret

TABLE = ExternalApiKey._meta.db_table


def raw(key_id: str) -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT secret, masked FROM {TABLE} WHERE id = %s", [key_id])  # noqa: S608
        return cursor.fetchone()


def test_the_key_is_encrypted_at_rest_and_reads_back(org, add_key):
    key = add_key(org, "openai", OPENAI_KEY)
    token, masked = raw(key.pk)
    assert token.startswith("tv1.") and OPENAI_KEY not in token and OPENAI_KEY[3:] not in token
    assert masked == "sk-…wxyz" == mask_secret(OPENAI_KEY)
    assert key.pk.startswith("xak_") and len(key.pk) == 20
    assert ExternalApiKey.objects.get(pk=key.pk).secret == OPENAI_KEY


def test_two_saves_of_one_key_give_different_ciphertexts(org, add_key):
    first = raw(add_key(org, "openai", OPENAI_KEY).pk)[0]
    second = raw(add_key(org, "openai", OPENAI_KEY).pk)[0]
    assert first != second  # a fresh nonce each time: equal keys cannot be spotted in the table


def test_a_ciphertext_copied_to_another_org_does_not_decrypt(org, make_org, add_key):
    mine = add_key(org, "openai", OPENAI_KEY)
    theirs = add_key(make_org("globex"), "openai", "sk-globex-0000000000000000abcd")
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET secret = %s WHERE id = %s", [raw(mine.pk)[0], theirs.pk])  # noqa: S608
    with pytest.raises(DecryptionFailed):
        _ = ExternalApiKey.objects.get(pk=theirs.pk).secret
    with pytest.raises(DecryptionFailed):
        services.credential_for(theirs.org_id, "openai")
    assert services.credential_for(org, "openai").secret == OPENAI_KEY


def test_a_ciphertext_copied_to_another_provider_row_of_the_same_org_does_not_decrypt(org, add_key):
    openai = add_key(org, "openai", OPENAI_KEY)
    anthropic = add_key(org, "anthropic", ANTHROPIC_KEY)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET secret = %s WHERE id = %s", [raw(openai.pk)[0], anthropic.pk])  # noqa: S608
    with pytest.raises(DecryptionFailed):
        services.credential_for(org, "anthropic")


def test_listing_keys_never_reads_the_ciphertext(org, add_key):
    add_key(org, "openai")
    add_key(org, "anthropic")
    with CaptureQueriesContext(connection) as queries:
        keys = services.keys_by_provider(org)
        shown = sorted((k.provider, k.masked, str(k)) for k in keys.values())
    assert len(queries) == 1 and '"secret"' not in queries[0]["sql"] and " secret" not in queries[0]["sql"]
    anthropic = f"sk-…{ANTHROPIC_KEY[-4:]}"
    assert shown == [("anthropic", anthropic, f"Anthropic key {anthropic}"),
                     ("openai", "sk-…wxyz", "OpenAI key sk-…wxyz")]


def test_the_credential_carries_the_key_but_never_prints_it(org, add_key):
    key = add_key(org, "custom", endpoint_url="https://llm.example.test/v1/")
    credential = services.credential_for(org, "custom")
    assert (credential.key_id, credential.provider, credential.endpoint_url, credential.masked) == (
        key.pk, "custom", "https://llm.example.test/v1", key.masked)
    assert credential.secret == key.secret
    for text in (repr(credential), str(credential), f"{credential}"):
        assert credential.secret not in text and "secret" not in text and key.masked in text
    with pytest.raises(AttributeError):
        credential.secret = "sk-other"  # frozen


def test_no_credential_without_a_key_or_for_unknown_providers(org, add_key):
    add_key(org, "openai")
    assert services.credential_for(org, "anthropic") is None
    assert services.credential_for(org, "builtin") is None
    assert services.credential_for(org, None) is None
    assert services.credential_for(org.pk, "openai") is not None  # an org id works too


def test_keys_survive_a_vault_key_rotation(settings, org, add_key):
    old, new = format_key(new_key(1)), format_key(new_key(2))
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "VAULT_KEYS": [old]}
    key = add_key(org, "openai", OPENAI_KEY)
    assert raw(key.pk)[0].startswith("tv1.1.")
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "VAULT_KEYS": [new, old]}
    assert services.credential_for(org, "openai").secret == OPENAI_KEY  # the old key still decrypts
    rotation.rotate()
    assert raw(key.pk)[0].startswith("tv1.2.")
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "VAULT_KEYS": [new]}
    assert services.credential_for(org, "openai").secret == OPENAI_KEY
    assert raw(key.pk)[1] == "sk-…wxyz"


def test_one_key_per_provider_per_org_is_enforced_by_the_database(org, add_key):
    from django.db import IntegrityError, transaction

    add_key(org, "openai")
    duplicate = ExternalApiKey(org=org, provider="openai")
    duplicate.set_secret(OPENAI_KEY)
    with pytest.raises(IntegrityError), transaction.atomic():
        duplicate.save(force_insert=True)
