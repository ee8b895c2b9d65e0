"""SsoConnection.oidc_client_secret moves into the vault: existing plaintext values are sealed in place
(AES-256-GCM under the first VAULT_KEYS key, bound to their row and org); going back opens them again."""

from django.db import migrations

import twig_auth.vault.fields

TABLE = "twig_sso_connections"
LABEL, FIELD = "twig_auth.ssoconnection", "oidc_client_secret"


def _rows(schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"SELECT id, org_id, {FIELD} FROM {TABLE} WHERE {FIELD} <> ''")  # noqa: S608 (constants)
        return cursor.fetchall()


def _write(schema_editor, pk, value):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET {FIELD} = %s WHERE id = %s", [value, pk])  # noqa: S608 (constants)


def seal_existing(apps, schema_editor):
    from twig_auth.vault import ciphers
    from twig_auth.vault.fields import binding
    from twig_auth.vault.keys import keyring

    rows = _rows(schema_editor)
    if not rows:
        return
    ring = keyring()
    for pk, org_id, value in rows:
        if not ciphers.is_token(value):
            _write(schema_editor, pk, ciphers.seal(value.encode(), aad=binding(LABEL, FIELD, pk=pk, org_id=org_id),
                                                   key=ring.current))


def open_existing(apps, schema_editor):
    from twig_auth.vault import ciphers
    from twig_auth.vault.fields import binding
    from twig_auth.vault.keys import keyring

    rows = _rows(schema_editor)
    if not rows:
        return
    ring = keyring()
    for pk, org_id, value in rows:
        if ciphers.is_token(value):
            plain = ciphers.unseal(value, aad=binding(LABEL, FIELD, pk=pk, org_id=org_id), keys=ring.ciphers)
            _write(schema_editor, pk, plain.decode())


class Migration(migrations.Migration):
    dependencies = [
        ("twig_auth", "0010_sso_connection_events"),
    ]

    operations = [
        migrations.AlterField(
            model_name="ssoconnection",
            name="oidc_client_secret",
            field=twig_auth.vault.fields.EncryptedTextField(blank=True),
        ),
        migrations.RunPython(seal_existing, open_existing),
    ]
