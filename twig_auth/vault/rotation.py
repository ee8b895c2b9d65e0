"""Re-encrypt stored secrets under the newest key, while the site keeps serving.

Rows are visited in primary-key order, in batches. Each value is opened with the key it names and sealed
under the newest key, and written back with a compare-and-swap (``UPDATE … WHERE pk = %s AND column =
<the token read>``): a value a request changed in the meantime is left alone, since every write already
uses the newest key. Nothing is locked, a crash loses nothing, and running it again only visits what is
still on an older key, so the command is resumable.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import models, transaction

from twig_auth.exceptions import DecryptionFailed
from twig_auth.vault import ciphers
from twig_auth.vault.fields import EncryptedMixin, Sealed, encrypted_fields
from twig_auth.vault.keys import keyring


@dataclass
class FieldReport:
    label: str
    by_version: Counter[int] = field(default_factory=Counter)
    rotated: int = 0
    changed_meanwhile: int = 0
    failed: list[str] = field(default_factory=list)  # primary keys whose value cannot be decrypted


def _stored(model: type[models.Model], f: EncryptedMixin) -> models.QuerySet:
    return model._base_manager.exclude(**{f"{f.attname}__isnull": True}).exclude(**{f.attname: ""})


def census() -> list[FieldReport]:
    """Count stored values per key version, for every encrypted field (the ``--check`` report)."""
    reports = []
    for model, f in encrypted_fields():
        report = FieldReport(f"{model._meta.label}.{f.name}")
        for value in _stored(model, f).values_list(f.attname, flat=True).iterator(chunk_size=2000):
            token = value.token if isinstance(value, Sealed) else value
            report.by_version[ciphers.token_version(token) or 0] += 1
        reports.append(report)
    return reports


def rotate(*, batch_size: int = 500, progress: Callable[[str], None] | None = None) -> list[FieldReport]:
    """Move every stored value to the newest key; return what was done per field."""
    ring = keyring()
    prefix = f"{ciphers.PREFIX}.{ring.current.version}."
    reports = []
    for model, f in encrypted_fields():
        report = FieldReport(f"{model._meta.label}.{f.name}")
        org_attname = model._meta.get_field(f.org_field).attname if f.org_field else None
        pending = _stored(model, f).exclude(**{f"{f.attname}__startswith": prefix}).order_by("pk")
        columns = ["pk", f.attname] + ([org_attname] if org_attname else [])
        last_pk = None
        while True:
            page = pending if last_pk is None else pending.filter(pk__gt=last_pk)
            batch = list(page.values_list(*columns)[:batch_size])
            if not batch:
                break
            with transaction.atomic():
                for row in batch:
                    pk, value = row[0], row[1]
                    org_id = row[2] if org_attname else None
                    token = value.token if isinstance(value, Sealed) else value
                    report.by_version[ciphers.token_version(token) or 0] += 1
                    try:
                        plain = ciphers.unseal(token, aad=f.associated_data(pk=pk, org_id=org_id), keys=ring.ciphers)
                    except DecryptionFailed:
                        report.failed.append(str(pk))
                        continue
                    fresh = ciphers.seal(plain, aad=f.associated_data(pk=pk, org_id=org_id), key=ring.current,
                                         cipher=ring.ciphers[ring.current.version])
                    if model._base_manager.filter(pk=pk, **{f.attname: token}).update(**{f.attname: fresh}):
                        report.rotated += 1
                    else:
                        report.changed_meanwhile += 1
            last_pk = batch[-1][0]
            if progress:
                progress(f"{report.label}: {report.rotated} re-encrypted so far")
        reports.append(report)
    return reports
