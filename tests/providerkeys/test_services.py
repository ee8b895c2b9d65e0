"""Services: add, replace (same row), delete, each one audit event whose details hold the mask and never the key;
bad input writes nothing; credential_for / mark_used for the provider clients."""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.providerkeys.conftest import ANTHROPIC_KEY, CUSTOM_KEY, OPENAI_KEY
from twig_auth import signals
from twig_auth.audit.models import AuditEvent
from twig_auth.core import clock
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import InvalidInput, NotFound
from twig_auth.providerkeys import services
from twig_auth.providerkeys.models import ExternalApiKey

NEW_OPENAI_KEY = "sk-proj-Replacement0000000000000000009876"


def stored_rows() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, secret, masked, endpoint_url FROM {ExternalApiKey._meta.db_table} ORDER BY id")  # noqa: S608
        return list(cursor.fetchall())


def events(name: str | None = None) -> list[AuditEvent]:
    rows = AuditEvent.objects.filter(event__startswith="EXTERNAL_KEY_").order_by("id")
    return list(rows.filter(event=name) if name else rows)


def no_secret_in_audit(*secrets: str) -> None:
    dump = json.dumps([[e.details, e.target_repr, e.target_id] for e in AuditEvent.objects.all()], ensure_ascii=False)
    for secret in secrets:
        assert secret not in dump and secret[6:-4] not in dump


def test_adding_a_key_stores_it_and_records_who_and_what(org, owner):
    context = RequestContext(actor=owner.user, ip="203.0.113.7", user_agent="pytest")
    start = clock.now().replace(microsecond=0)
    with clock.frozen(start):
        key = services.save_external_key(org=org, provider="openai", secret=f" {OPENAI_KEY} ", context=context)
    stored = ExternalApiKey.objects.get()
    assert (stored.pk, stored.provider, stored.masked, stored.endpoint_url) == (key.pk, "openai", "sk-…wxyz", "")
    assert stored.secret == OPENAI_KEY
    assert (stored.created_by, stored.updated_by, stored.created_at, stored.updated_at, stored.last_used_at) == (
        owner.user, owner.user, start, start, None)
    [event] = events()
    assert (event.event, event.org_id, event.user_id, event.ip_address) == ("EXTERNAL_KEY_ADDED", org.pk,
                                                                           owner.user_id, "203.0.113.7")
    assert (event.target_type, event.target_id) == ("twig_auth.externalapikey", key.pk)
    assert event.target_repr == "OpenAI key sk-…wxyz"
    assert event.details == {"provider": "openai", "masked": "sk-…wxyz", "endpoint_url": ""}
    no_secret_in_audit(OPENAI_KEY)


def test_replacing_keeps_one_row_and_its_id_and_starts_last_used_over(org, owner, make_member, add_key):
    first = add_key(org, "openai", OPENAI_KEY, context=RequestContext(actor=owner.user))
    services.mark_used(first.pk)
    other_admin = make_member(org, "admin", email="ada@acme.test").user
    later = clock.now() + dt.timedelta(days=3)
    with clock.frozen(later):
        second = services.save_external_key(org=org, provider="openai", secret=NEW_OPENAI_KEY,
                                            context=RequestContext(actor=other_admin))
    assert second.pk == first.pk
    [stored] = ExternalApiKey.objects.all()
    assert stored.secret == NEW_OPENAI_KEY and stored.masked == "sk-…9876"
    assert (stored.created_by, stored.updated_by, stored.updated_at, stored.last_used_at) == (
        owner.user, other_admin, later, None)
    assert stored.created_at < later
    added, replaced = events()
    assert (added.event, replaced.event) == ("EXTERNAL_KEY_ADDED", "EXTERNAL_KEY_REPLACED")
    assert replaced.user == other_admin
    assert replaced.details == {"provider": "openai", "masked": "sk-…9876", "endpoint_url": "",
                                "previous_masked": "sk-…wxyz"}
    no_secret_in_audit(OPENAI_KEY, NEW_OPENAI_KEY)


def test_replacing_a_custom_key_records_the_endpoint_change(org, add_key):
    add_key(org, "custom", CUSTOM_KEY, endpoint_url="https://old.example.test/v1")
    key = add_key(org, "custom", CUSTOM_KEY, endpoint_url="http://localhost:11434/v1/")
    assert key.endpoint_url == "http://localhost:11434/v1"
    assert events("EXTERNAL_KEY_REPLACED")[0].details == {
        "provider": "custom", "masked": key.masked, "endpoint_url": "http://localhost:11434/v1",
        "previous_masked": key.masked, "previous_endpoint_url": "https://old.example.test/v1"}


def test_each_provider_has_its_own_key(org, make_org, add_key):
    add_key(org, "openai")
    add_key(org, "anthropic")
    add_key(org, "custom")
    add_key(make_org("globex"), "openai")
    assert sorted(ExternalApiKey.objects.filter(org=org).values_list("provider", flat=True)) == [
        "anthropic", "custom", "openai"]
    assert ExternalApiKey.objects.count() == 4
    assert services.credential_for(org, "anthropic").secret == ANTHROPIC_KEY


@pytest.mark.parametrize(("kw", "field"), [
    ({"provider": "openai", "secret": "not-a-key-at-all"}, "secret"),
    ({"provider": "anthropic", "secret": OPENAI_KEY}, "secret"),
    ({"provider": "gemini", "secret": OPENAI_KEY}, "provider"),
    ({"provider": "custom", "secret": CUSTOM_KEY, "endpoint_url": "http://llm.example.test/v1"}, "endpoint_url"),
    ({"provider": "custom", "secret": CUSTOM_KEY}, "endpoint_url"),
    ({"provider": "openai", "secret": OPENAI_KEY, "endpoint_url": "https://llm.example.test"}, "endpoint_url"),
])
def test_bad_input_writes_nothing(org, add_key, kw, field):
    add_key(org, "openai", OPENAI_KEY)
    before = stored_rows()
    with pytest.raises(InvalidInput) as info:
        services.save_external_key(org=org, **kw)
    assert field in info.value.errors
    assert stored_rows() == before
    assert len(events()) == 1


def test_deleting_removes_the_row_and_is_audited(org, owner, add_key):
    key = add_key(org, "anthropic")
    services.delete_external_key(key=key, context=RequestContext(actor=owner.user))
    assert not ExternalApiKey.objects.exists()
    assert services.credential_for(org, "anthropic") is None
    [event] = events("EXTERNAL_KEY_DELETED")
    assert event.user == owner.user and event.target_id == key.pk
    assert event.details == {"provider": "anthropic", "masked": key.masked, "endpoint_url": ""}
    with pytest.raises(NotFound):
        services.delete_external_key(key=key)
    assert len(events("EXTERNAL_KEY_DELETED")) == 1
    no_secret_in_audit(ANTHROPIC_KEY)


def test_signals_say_what_happened_without_the_key(org, add_key):
    seen: list[tuple[str, str]] = []

    def receiver(sender, key, action, context, **kw):
        assert sender is ExternalApiKey and isinstance(context, RequestContext)
        seen.append((action, key.masked))

    signals.external_key_changed.connect(receiver)
    try:
        key = add_key(org, "openai", OPENAI_KEY)
        add_key(org, "openai", NEW_OPENAI_KEY)
        services.delete_external_key(key=key)
    finally:
        signals.external_key_changed.disconnect(receiver)
    assert seen == [("added", "sk-…wxyz"), ("replaced", "sk-…9876"), ("deleted", "sk-…9876")]


def test_mark_used_is_one_update_with_the_clock(org, add_key):
    key = add_key(org, "openai")
    moment = clock.now().replace(microsecond=0) + dt.timedelta(hours=5)
    with clock.frozen(moment), CaptureQueriesContext(connection) as queries:
        services.mark_used(key.pk)
    assert len(queries) == 1 and queries[0]["sql"].startswith("UPDATE")
    assert ExternalApiKey.objects.get().last_used_at == moment
    assert ExternalApiKey.objects.get().secret == OPENAI_KEY  # the update did not touch the ciphertext


def test_credential_for_is_one_query(org, add_key):
    add_key(org, "openai")
    with CaptureQueriesContext(connection) as queries:
        credential = services.credential_for(org, "openai")
        assert credential.secret == OPENAI_KEY
    assert len(queries) == 1


@pytest.mark.parametrize("key_pk", ["", "xak_", "xak_nope", "key_abc", "xak_abc\x00", "xak_" + "a" * 40, None, 7])
def test_get_key_refuses_unknown_and_malformed_ids(org, key_pk):
    with pytest.raises(NotFound):
        services.get_key(org=org, key_pk=key_pk)


def test_get_key_does_not_cross_orgs(org, make_org, add_key):
    theirs = add_key(make_org("globex"), "openai")
    with pytest.raises(NotFound):
        services.get_key(org=org, key_pk=theirs.pk)
    assert services.get_key(org=theirs.org, key_pk=theirs.pk).pk == theirs.pk


@pytest.mark.django_db(transaction=True)
def test_two_first_adds_at_once_leave_one_row(make_org):
    org = make_org("race")
    barrier = threading.Barrier(2)
    failures: list[BaseException] = []

    def add(secret: str) -> None:
        try:
            barrier.wait(timeout=10)
            services.save_external_key(org=org, provider="openai", secret=secret)
        except BaseException as exc:  # noqa: BLE001  (reported by the assertion below)
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=add, args=(s,)) for s in (OPENAI_KEY, NEW_OPENAI_KEY)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert failures == []
    [stored] = ExternalApiKey.objects.filter(org=org)
    assert stored.secret in (OPENAI_KEY, NEW_OPENAI_KEY)
    assert sorted(e.event for e in events()) == ["EXTERNAL_KEY_ADDED", "EXTERNAL_KEY_REPLACED"]
