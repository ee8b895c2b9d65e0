"""Add, replace and delete an org's external provider keys; hand a key to the code that calls the provider.

Writes are one transaction and one audit event each; audit details and signals carry the mask
(``sk-…abcd``), never the key. :func:`credential_for` is the only reader of the plaintext.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.views.decorators.debug import sensitive_variables

from twig_auth import signals
from twig_auth.audit.events import Event
from twig_auth.audit.services import record
from twig_auth.core import clock
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import NotFound
from twig_auth.providerkeys import validation
from twig_auth.providerkeys.models import ExternalApiKey

_KEY_PK_RE = re.compile(r"xak_[A-Za-z0-9]{1,28}")


@dataclass(frozen=True)
class ProviderCredential:
    """What a provider client needs to call with an org's key. ``repr()`` leaves the key out."""

    key_id: str
    provider: str
    secret: str = field(repr=False)
    endpoint_url: str
    masked: str


def _user(context: RequestContext) -> Any:
    actor = context.actor
    return actor if getattr(actor, "pk", None) else None


def _details(key: ExternalApiKey, **extra: Any) -> dict[str, Any]:
    return {"provider": key.provider, "masked": key.masked, "endpoint_url": key.endpoint_url, **extra}


@sensitive_variables("secret", "clean_secret")
def save_external_key(*, org: Any, provider: Any, secret: Any, endpoint_url: Any = "",
                      context: RequestContext | None = None) -> ExternalApiKey:
    """Store ``secret`` as ``org``'s key for ``provider``: a new row (``EXTERNAL_KEY_ADDED``) or, when the org has
    one, the same row with the new key (``EXTERNAL_KEY_REPLACED``; its "last used" starts over).

    Raise :class:`~twig_auth.exceptions.InvalidInput` naming ``provider``, ``secret`` or ``endpoint_url``.
    Callers check that the actor may manage the org's keys (the page: admins and above).
    """
    context = context or RequestContext.system()
    provider, clean_secret, endpoint = validation.clean(provider=provider, secret=secret, endpoint_url=endpoint_url)
    user = _user(context)
    for _ in range(2):  # two first adds at the same moment: the loser replaces the winner's row
        try:
            with transaction.atomic():
                key = (ExternalApiKey.objects.select_for_update(of=("self",)).select_related("org")
                       .filter(org=org, provider=provider).defer("secret").first())
                now = clock.now()
                if key is None:
                    key = ExternalApiKey(org=org, provider=provider, endpoint_url=endpoint, created_by=user,
                                         updated_by=user, created_at=now, updated_at=now)
                    key.set_secret(clean_secret)
                    key.save(force_insert=True)
                    event, action, extra = Event.EXTERNAL_KEY_ADDED, "added", {}
                else:
                    extra = {"previous_masked": key.masked}
                    if key.endpoint_url != endpoint:
                        extra["previous_endpoint_url"] = key.endpoint_url
                    key.set_secret(clean_secret)
                    key.endpoint_url, key.updated_by, key.updated_at, key.last_used_at = endpoint, user, now, None
                    key.save(update_fields=["secret", "masked", "endpoint_url", "updated_by", "updated_at",
                                            "last_used_at"])
                    event, action = Event.EXTERNAL_KEY_REPLACED, "replaced"
                record(event, context=context, org=key.org, target=key, details=_details(key, **extra))
        except IntegrityError:
            continue
        signals.external_key_changed.send(sender=ExternalApiKey, key=key, action=action, context=context)
        return key
    raise RuntimeError("Could not save the external key.")  # pragma: no cover


def delete_external_key(*, key: ExternalApiKey, context: RequestContext | None = None) -> None:
    """Delete ``key`` (``EXTERNAL_KEY_DELETED``); agents using it then get ``provider_key_missing``."""
    context = context or RequestContext.system()
    with transaction.atomic():
        current = (ExternalApiKey.objects.select_for_update(of=("self",)).select_related("org").filter(pk=key.pk)
                   .defer("secret").first())
        if current is None:
            raise NotFound("No such external API key: it was already deleted.")
        record(Event.EXTERNAL_KEY_DELETED, context=context, org=current.org, target=current,
               details=_details(current))
        current.delete()
    signals.external_key_changed.send(sender=ExternalApiKey, key=current, action="deleted", context=context)


def get_key(*, org: Any, key_pk: Any) -> ExternalApiKey:
    """Return ``org``'s key ``key_pk`` (secret not loaded); unknown, malformed and other orgs' ids are
    :class:`~twig_auth.exceptions.NotFound`."""
    if not isinstance(key_pk, str) or not _KEY_PK_RE.fullmatch(key_pk):
        raise NotFound("No such external API key.")
    key = ExternalApiKey.objects.filter(org=org, pk=key_pk).defer("secret").first()
    if key is None:
        raise NotFound("No such external API key.")
    return key


def keys_by_provider(org: Any) -> dict[str, ExternalApiKey]:
    """Return ``org``'s keys by provider in one query, without loading (or decrypting) any secret."""
    rows = (ExternalApiKey.objects.filter(org=org).defer("secret")
            .select_related("created_by", "updated_by"))
    return {key.provider: key for key in rows}


def credential_for(org: Any, provider: Any) -> ProviderCredential | None:
    """Return ``org``'s credential for ``provider`` (an org or its id; "openai", "anthropic" or "custom"), or None
    when it has none. Raise :class:`~twig_auth.exceptions.DecryptionFailed` when the stored key cannot be
    decrypted (a vault key missing from ``VAULT_KEYS``, or a ciphertext moved from another row)."""
    if provider not in validation.PROVIDERS:
        return None
    org_id = getattr(org, "pk", org)
    key = ExternalApiKey.objects.filter(org_id=org_id, provider=provider).first()
    if key is None:
        return None
    return ProviderCredential(key_id=key.pk, provider=key.provider, secret=key.secret,
                              endpoint_url=key.endpoint_url, masked=key.masked)


def mark_used(key_id: str) -> None:
    """Set the key's ``last_used_at`` to now: one UPDATE (call it where the paid-for call is recorded)."""
    ExternalApiKey.objects.filter(pk=key_id).update(last_used_at=clock.now())
