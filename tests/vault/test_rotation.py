"""Key rotation: the newest key encrypts, older keys still decrypt, and twig_vault_rotate moves every stored value
to the newest key without losing one, resumably."""

from __future__ import annotations

import importlib
from io import StringIO
from types import SimpleNamespace

import pytest
from django.core.checks import run_checks
from django.core.management import CommandError, call_command
from django.db import connection

from twig_auth.sso.models import SsoConnection
from twig_auth.vault import ciphers, rotation
from twig_auth.vault.ciphers import format_key, new_key
from twig_auth.vault.keys import keyring

TABLE = SsoConnection._meta.db_table
OLD, NEW = format_key(new_key(1)), format_key(new_key(2))


def use_keys(settings, *lines):
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "VAULT_KEYS": list(lines)}


def raw_tokens():
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, oidc_client_secret FROM {TABLE} ORDER BY id")  # noqa: S608
        return dict(cursor.fetchall())


def secrets():
    return {c.pk: c.oidc_client_secret for c in SsoConnection.objects.order_by("pk")}


@pytest.fixture
def on_old_key(settings, make_org):
    use_keys(settings, OLD)
    orgs = [make_org(), make_org()]
    for i in range(7):
        SsoConnection.objects.create(org=orgs[i % 2], name=f"C{i}", protocol="oidc",
                                     oidc_client_secret=f"client-secret-number-{i:03d}" if i != 3 else "")
    return secrets()


def run(*args):
    out, err = StringIO(), StringIO()
    call_command("twig_vault_rotate", *args, stdout=out, stderr=err)
    return out.getvalue() + err.getvalue()


def test_new_key_first_encrypts_new_values_and_old_ones_stay_readable(settings, on_old_key, make_org):
    use_keys(settings, NEW, OLD)
    assert secrets() == on_old_key
    fresh = SsoConnection.objects.create(org=make_org(), name="New", protocol="oidc", oidc_client_secret="s-new-0001x")
    assert raw_tokens()[fresh.pk].startswith("tv1.2.")


def test_rotate_moves_everything_to_the_newest_key_and_old_key_can_go(settings, on_old_key):
    use_keys(settings, NEW, OLD)
    with pytest.raises(CommandError, match="6 value"):
        run("--check")
    output = run("--batch-size", "2")
    assert "6 re-encrypted under key 2" in output
    assert {t[:6] for t in raw_tokens().values() if t} == {"tv1.2."}
    assert "Every stored value is on key 2" in run("--check")
    use_keys(settings, NEW)  # the old key is retired
    assert secrets() == on_old_key
    assert "0 re-encrypted" in run()  # nothing left to do


def test_rotation_is_resumable_after_a_crash(settings, on_old_key):
    use_keys(settings, NEW, OLD)
    calls = []

    def crash(message):
        calls.append(message)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        rotation.rotate(batch_size=2, progress=crash)
    assert sum(t.startswith("tv1.2.") for t in raw_tokens().values()) == 2  # the first batch committed
    reports = rotation.rotate(batch_size=2)
    assert sum(r.rotated for r in reports) == 4
    use_keys(settings, NEW)
    assert secrets() == on_old_key


def test_a_value_changed_while_rotating_is_left_to_the_writer(settings, on_old_key, monkeypatch):
    use_keys(settings, NEW, OLD)
    target = next(pk for pk, s in on_old_key.items() if s)
    real_seal = ciphers.seal

    def seal_then_race(plaintext, **kw):  # a request saves a new value between our read and our write
        if plaintext == on_old_key[target].encode():
            row = SsoConnection.objects.get(pk=target)
            row.oidc_client_secret = "written-meanwhile-123"
            row.save()
        return real_seal(plaintext, **kw)

    monkeypatch.setattr(rotation.ciphers, "seal", seal_then_race)
    reports = rotation.rotate()
    assert sum(r.changed_meanwhile for r in reports) == 1
    assert SsoConnection.objects.get(pk=target).oidc_client_secret == "written-meanwhile-123"


def test_undecryptable_values_are_reported_and_left_alone(settings, on_old_key):
    pk = next(pk for pk, s in on_old_key.items() if s)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET oidc_client_secret = %s WHERE id = %s",  # noqa: S608
                       ["tv1.1." + "A" * 60, pk])
    use_keys(settings, NEW, OLD)
    with pytest.raises(CommandError, match="1 value"):
        run()
    assert raw_tokens()[pk] == "tv1.1." + "A" * 60


def test_keygen_prints_the_next_version(settings):
    use_keys(settings, NEW, OLD)
    out = StringIO()
    call_command("twig_vault_keygen", stdout=out)
    key = ciphers.parse_key(out.getvalue().strip())
    assert key.version == 3 and len(key.secret) == 32


def test_missing_or_malformed_keys_fail_the_system_checks(settings):
    use_keys(settings)
    assert "twig_auth.E009" in {m.id for m in run_checks()}
    use_keys(settings, "1:tooshort")
    assert "twig_auth.E001" in {m.id for m in run_checks()}
    use_keys(settings, NEW)
    assert not {"twig_auth.E009", "twig_auth.E001"} & {m.id for m in run_checks()}
    assert keyring().current.version == 2


@pytest.mark.django_db
def test_the_migration_seals_plaintext_secrets_in_place_and_back(settings, make_org):
    use_keys(settings, OLD)
    migration = importlib.import_module("twig_auth.migrations.0011_vault")
    row = SsoConnection.objects.create(org=make_org(), name="Legacy", protocol="oidc")
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET oidc_client_secret = %s WHERE id = %s",  # noqa: S608
                       ["legacy-plaintext-secret", row.pk])
    editor = SimpleNamespace(connection=connection)
    migration.seal_existing(None, editor)
    assert raw_tokens()[row.pk].startswith("tv1.1.")
    assert SsoConnection.objects.get(pk=row.pk).oidc_client_secret == "legacy-plaintext-secret"
    migration.seal_existing(None, editor)  # idempotent
    assert SsoConnection.objects.get(pk=row.pk).oidc_client_secret == "legacy-plaintext-secret"
    migration.open_existing(None, editor)
    assert raw_tokens()[row.pk] == "legacy-plaintext-secret"
