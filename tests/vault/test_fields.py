"""Encrypted model fields, on a real model of the app (the SSO connection's OIDC client secret)."""

from __future__ import annotations

import copy
import pickle

import pytest
from django.core import serializers
from django.db import connection, models, transaction
from django.test.utils import isolate_apps

from twig_auth.exceptions import DecryptionFailed
from twig_auth.sso.models import SsoConnection
from twig_auth.vault.fields import EncryptedJSONField, EncryptedTextField, Sealed

SECRET = "oidc-client-secret-0123456789"
TABLE = SsoConnection._meta.db_table


def make(org, secret=SECRET, **kw):
    return SsoConnection.objects.create(org=org, name=kw.pop("name", "Okta"), protocol="oidc",
                                        oidc_client_secret=secret, **kw)


def raw(pk):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT oidc_client_secret FROM {TABLE} WHERE id = %s", [pk])  # noqa: S608
        return cursor.fetchone()[0]


def write_raw(pk, value):
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET oidc_client_secret = %s WHERE id = %s", [value, pk])  # noqa: S608


def test_value_is_encrypted_at_rest_and_reads_back_in_clear(make_org):
    saved = make(make_org())
    stored = raw(saved.pk)
    assert stored.startswith("tv1.1.") and SECRET not in stored
    assert SsoConnection.objects.get(pk=saved.pk).oidc_client_secret == SECRET


def test_ciphertext_copied_to_another_row_of_the_same_org_fails(make_org):
    org = make_org()
    first, second = make(org, name="A"), make(org, secret="another-secret-value-42", name="B")
    write_raw(second.pk, raw(first.pk))
    with pytest.raises(DecryptionFailed, match="does not belong to this record"):
        SsoConnection.objects.get(pk=second.pk).oidc_client_secret  # noqa: B018
    assert SsoConnection.objects.get(pk=first.pk).oidc_client_secret == SECRET


def test_ciphertext_of_another_org_fails_even_after_moving_the_row(make_org):
    mine, theirs = make_org(), make_org()
    victim = make(theirs)
    SsoConnection.objects.filter(pk=victim.pk).update(org=mine)  # the row moved, the ciphertext names its org
    with pytest.raises(DecryptionFailed):
        SsoConnection.objects.get(pk=victim.pk).oidc_client_secret  # noqa: B018


def test_unrelated_save_keeps_the_stored_token(make_org):
    saved = make(make_org())
    token = raw(saved.pk)
    loaded = SsoConnection.objects.get(pk=saved.pk)
    loaded.name = "Renamed"
    loaded.save()
    assert raw(saved.pk) == token
    loaded.oidc_client_secret = "a-new-secret-value-99"
    loaded.save()
    assert raw(saved.pk) != token
    assert SsoConnection.objects.get(pk=saved.pk).oidc_client_secret == "a-new-secret-value-99"


def test_empty_values_are_stored_as_they_are(make_org):
    saved = make(make_org(), secret="")
    assert raw(saved.pk) == "" and SsoConnection.objects.get(pk=saved.pk).oidc_client_secret == ""
    assert SsoConnection.objects.get(pk=saved.pk).client_secret_status == "not set"
    assert SsoConnection.objects.filter(oidc_client_secret="").count() == 1


def test_plaintext_never_reaches_the_column_through_update_or_lookups(make_org):
    saved = make(make_org())
    with pytest.raises(ValueError, match="encrypted"), transaction.atomic():
        SsoConnection.objects.filter(pk=saved.pk).update(oidc_client_secret="plain-text-secret")
    with pytest.raises(ValueError, match="cannot be searched"), transaction.atomic():
        list(SsoConnection.objects.filter(oidc_client_secret=SECRET))
    assert raw(saved.pk).startswith("tv1.")


def test_deferred_field_loads_and_decrypts_on_access(make_org):
    saved = make(make_org())
    deferred = SsoConnection.objects.defer("oidc_client_secret").get(pk=saved.pk)
    assert "oidc_client_secret" in deferred.get_deferred_fields()
    assert deferred.oidc_client_secret == SECRET


def test_pickles_copies_and_dumpdata_never_carry_plaintext(make_org):
    loaded = SsoConnection.objects.get(pk=make(make_org()).pk)
    assert loaded.oidc_client_secret == SECRET  # decrypted and cached on the instance
    for blob in (pickle.dumps(loaded), pickle.dumps(copy.copy(loaded).__dict__)):
        assert SECRET.encode() not in blob
    assert pickle.loads(pickle.dumps(loaded)).oidc_client_secret == SECRET
    dumped = serializers.serialize("json", [loaded])
    assert SECRET not in dumped and '"oidc_client_secret": "tv1.' in dumped
    assert SECRET not in repr(loaded.__dict__["oidc_client_secret"])


def test_a_decryption_failure_never_shows_the_ciphertext(make_org):
    saved = make(make_org())
    token = raw(saved.pk)
    write_raw(saved.pk, token[:-3] + "AAA")
    with pytest.raises(DecryptionFailed) as caught:
        SsoConnection.objects.get(pk=saved.pk).oidc_client_secret  # noqa: B018
    assert token[8:20] not in str(caught.value)
    assert SsoConnection.objects.get(pk=saved.pk).client_secret_status == "set"  # status needs no decryption


@isolate_apps("twig_auth")
def test_models_whose_primary_key_has_no_default_are_refused_by_a_check():
    class AutoPk(models.Model):  # noqa: DJ008
        secret = EncryptedTextField(org_field=None)

        class Meta:
            app_label = "twig_auth"

    class WrongOrgField(models.Model):  # noqa: DJ008
        id = models.CharField(primary_key=True, max_length=10, default="x")
        blob = EncryptedJSONField(org_field="tenant")

        class Meta:
            app_label = "twig_auth"

    assert [e.id for e in AutoPk._meta.get_field("secret").check()] == ["twig_auth.E010"]
    assert [e.id for e in WrongOrgField._meta.get_field("blob").check()] == ["twig_auth.E010"]


@isolate_apps("twig_auth")
def test_json_field_round_trips_documents_and_binds_like_text():
    class Doc(models.Model):  # noqa: DJ008
        id = models.CharField(primary_key=True, max_length=10, default="d1")
        data = EncryptedJSONField(org_field=None, null=True)

        class Meta:
            app_label = "twig_auth"

    field = Doc._meta.get_field("data")
    doc = Doc(id="d1", data={"refresh": "r-123", "scopes": ["a", "b"]})
    token = field.pre_save(doc, add=True)
    assert token.startswith("tv1.") and "r-123" not in token
    assert isinstance(doc.__dict__["data"], Sealed) and doc.data == {"refresh": "r-123", "scopes": ["a", "b"]}
    other = Doc(id="d2")
    other.__dict__["data"] = Sealed(token)
    with pytest.raises(DecryptionFailed):
        other.data  # noqa: B018
    fresh = Doc(id="d1")
    fresh.__dict__["data"] = Sealed(token)
    assert fresh.data["scopes"] == ["a", "b"]
    deconstructed = field.deconstruct()
    assert deconstructed[3] == {"org_field": None, "null": True}
