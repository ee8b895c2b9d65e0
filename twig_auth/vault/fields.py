"""Model fields whose values are encrypted at rest and bound to their row and org.

``obj.secret`` reads the plaintext (decrypted on first access, then cached on the instance); assigning takes
plaintext. On save the value is sealed under the newest key of the ring, with associated data naming the
model, the field, the row's org and its primary key, so a ciphertext copied to another row or org fails to
decrypt (:class:`twig_auth.exceptions.DecryptionFailed`). A value loaded from the database and not reassigned
is written back unchanged, so an unrelated ``save()`` neither decrypts nor re-encrypts it;
``twig_vault_rotate`` moves stored values to the newest key.

Rules that follow from the binding:

* the model's primary key must have a default (an opaque id), because the key is part of the associated data
  and must be known before the first INSERT (check ``twig_auth.E010``);
* ``""`` and ``None`` are stored as they are, so "is a secret set?" needs no decryption;
* the columns cannot be searched: a lookup or ``QuerySet.update()`` with plaintext raises ``ValueError``
  instead of comparing or writing plaintext;
* the fields are ``editable=False``: ModelForms and the admin never render them; show a mask instead.
"""

from __future__ import annotations

import json
from typing import Any

from django.core import checks
from django.db import models

from twig_auth.vault import ciphers
from twig_auth.vault.keys import keyring


def binding(model_label: str, field_name: str, *, pk: Any, org_id: Any) -> bytes:
    """Return the associated data that ties a ciphertext to one field of one row of one org."""
    return f"{model_label}|{field_name}|org={org_id or ''}|pk={pk}".encode()


class _Unread:
    """Marks a :class:`Sealed` whose plaintext nobody asked for yet (a class, so it survives pickling)."""


class Sealed:
    """A stored token, and its plaintext once something asked for it."""

    __slots__ = ("plain", "token")

    def __init__(self, token: str, plain: Any = _Unread) -> None:
        self.token = token
        self.plain = plain

    def __reduce__(self) -> tuple[Any, ...]:
        return (Sealed, (self.token,))  # a pickled or copied instance never carries the plaintext

    def __repr__(self) -> str:
        return f"<Sealed v{ciphers.token_version(self.token)}>"


class _SecretAttribute:
    """Data descriptor: the instance dict holds plaintext or :class:`Sealed`; reading always gives plaintext."""

    def __init__(self, field: EncryptedMixin) -> None:
        self.field = field

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        if instance is None:
            return self
        name = self.field.attname
        if name not in instance.__dict__:  # a deferred field: load it like Django's DeferredAttribute
            instance.refresh_from_db(fields=[name])
        value = instance.__dict__[name]
        if isinstance(value, Sealed):
            if value.plain is _Unread:
                value.plain = self.field.decode(self.field.open(instance, value.token))
            return value.plain
        return value

    def __set__(self, instance: Any, value: Any) -> None:
        instance.__dict__[self.field.attname] = value


class EncryptedMixin:
    """What both encrypted fields share. ``org_field`` names the foreign key whose id is bound into every
    ciphertext (None when the model has no org)."""

    descriptor_class = _SecretAttribute

    def __init__(self, *args: Any, org_field: str | None = "org", **kwargs: Any) -> None:
        self.org_field = org_field
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()  # type: ignore[misc]
        if self.org_field != "org":
            kwargs["org_field"] = self.org_field
        if kwargs.get("editable") is False:
            del kwargs["editable"]
        return name, path, args, kwargs

    # --- plaintext <-> bytes (overridden by the JSON field) --------------------------------------------
    def encode(self, value: Any) -> bytes:
        return str(value).encode()

    def decode(self, data: bytes) -> Any:
        return data.decode()

    # --- binding -----------------------------------------------------------------------------------------
    def associated_data(self, *, pk: Any, org_id: Any) -> bytes:
        label = self.model._meta.concrete_model._meta.label_lower  # type: ignore[attr-defined]
        return binding(label, self.name, pk=pk, org_id=org_id)  # type: ignore[attr-defined]

    def org_id_of(self, instance: Any) -> Any:
        if not self.org_field:
            return None
        return getattr(instance, self.model._meta.get_field(self.org_field).attname)  # type: ignore[attr-defined]

    def open(self, instance: Any, token: str) -> bytes:
        return ciphers.unseal(token, aad=self.associated_data(pk=instance.pk, org_id=self.org_id_of(instance)),
                              keys=keyring().ciphers)

    def seal(self, instance: Any, value: Any) -> str:
        if instance.pk in (None, ""):
            raise ValueError(f"{self.model._meta.label}.{self.name} needs the primary key before it "  # type: ignore[attr-defined]
                             "is saved (give the primary key a default).")
        ring = keyring()
        return ciphers.seal(self.encode(value), aad=self.associated_data(pk=instance.pk,
                                                                         org_id=self.org_id_of(instance)),
                            key=ring.current, cipher=ring.ciphers[ring.current.version])

    # --- Django field hooks ----------------------------------------------------------------------------
    def pre_save(self, model_instance: Any, add: bool) -> Any:
        value = model_instance.__dict__.get(self.attname)  # type: ignore[attr-defined]
        if isinstance(value, Sealed):
            return value.token
        if value is None or value == "":
            return value
        token = self.seal(model_instance, value)
        model_instance.__dict__[self.attname] = Sealed(token, value)  # type: ignore[attr-defined]
        return token

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None or value == "":
            return value
        return Sealed(value)

    def get_prep_value(self, value: Any) -> Any:
        if isinstance(value, Sealed):
            return value.token
        if value is None or value == "" or ciphers.is_token(value):
            return value
        raise ValueError(f"{self.model._meta.label}.{self.name} is encrypted: it cannot be searched, and it "  # type: ignore[attr-defined]
                         "is written only through save().")

    def to_python(self, value: Any) -> Any:
        return value

    def value_to_string(self, obj: Any) -> str:
        """Serialize the stored token (dumpdata never writes plaintext)."""
        value = obj.__dict__.get(self.attname)  # type: ignore[attr-defined]
        return value.token if isinstance(value, Sealed) else ""

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        errors = super().check(**kwargs)  # type: ignore[misc]
        model = self.model  # type: ignore[attr-defined]
        if not model._meta.abstract and not model._meta.pk.has_default():
            errors.append(checks.Error(
                f"{model._meta.label}.{self.name} is encrypted and bound to its row, so the primary key must "  # type: ignore[attr-defined]
                "be known before the first save.", hint="Give the primary key a default (e.g. an opaque id).",
                obj=self, id="twig_auth.E010"))
        if self.org_field:
            try:
                model._meta.get_field(self.org_field)
            except Exception:  # noqa: BLE001
                errors.append(checks.Error(
                    f"{model._meta.label}.{self.name}: org_field={self.org_field!r} is not a field of the model.",  # type: ignore[attr-defined]
                    hint="Name the org foreign key, or pass org_field=None.", obj=self, id="twig_auth.E010"))
        return errors


class EncryptedTextField(EncryptedMixin, models.TextField):
    """Text encrypted at rest (a provider key, an OAuth token, a client secret)."""

    description = "Text encrypted with AES-256-GCM"


class EncryptedJSONField(EncryptedMixin, models.TextField):
    """A JSON document encrypted at rest. Its plaintext is any JSON-serializable value."""

    description = "JSON encrypted with AES-256-GCM"

    def encode(self, value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()

    def decode(self, data: bytes) -> Any:
        return json.loads(data)


def has_value(instance: models.Model, name: str) -> bool:
    """Return whether the encrypted field ``name`` of ``instance`` holds a non-empty value, without decrypting."""
    value = instance.__dict__.get(name)
    return isinstance(value, Sealed) or value not in (None, "")


def encrypted_fields() -> list[tuple[type[models.Model], EncryptedMixin]]:
    """Return every (model, field) pair of the installed apps that holds encrypted values."""
    from django.apps import apps

    return [(model, f) for model in apps.get_models() for f in model._meta.get_fields()
            if isinstance(f, EncryptedMixin) and f.model is model]
