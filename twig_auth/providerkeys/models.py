"""ExternalApiKey (table ``twig_external_api_keys``): an org's own key for an LLM provider, encrypted at rest."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from twig_auth.core import clock
from twig_auth.core.crypto import opaque_id
from twig_auth.providerkeys import validation
from twig_auth.vault.fields import EncryptedTextField
from twig_auth.vault.masking import mask_secret


def new_key_id() -> str:
    """Return the opaque public id of a new external key (``xak_…``)."""
    return opaque_id("xak")


class Provider(models.TextChoices):
    OPENAI = validation.OPENAI, validation.PROVIDER_LABELS[validation.OPENAI]
    ANTHROPIC = validation.ANTHROPIC, validation.PROVIDER_LABELS[validation.ANTHROPIC]
    CUSTOM = validation.CUSTOM, validation.PROVIDER_LABELS[validation.CUSTOM]


class ExternalApiKey(models.Model):
    """One org's key for one provider (at most one per provider; replacing keeps the row and its id).

    ``secret`` is encrypted with the vault and bound to this row and org; ``masked`` (``sk-…abcd``) is what
    pages, the admin, audit events and API answers show, so listing keys never decrypts anything. Write
    through :mod:`twig_auth.providerkeys.services`, which validates, audits and keeps ``masked`` in step.
    """

    id = models.CharField(primary_key=True, max_length=32, default=new_key_id, editable=False)
    org = models.ForeignKey("twig_auth.Organization", on_delete=models.CASCADE, related_name="external_api_keys")
    provider = models.CharField(max_length=20, choices=Provider.choices)
    secret = EncryptedTextField()
    masked = models.CharField(max_length=32, help_text="The key as shown: vendor prefix and last four characters.")
    endpoint_url = models.CharField(max_length=500, blank=True,
                                    help_text="Base URL of the OpenAI-compatible API (Custom provider only).")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", editable=False)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", editable=False,
                                   help_text="Who added the current key (the first one, or the last replacement).")
    created_at = models.DateTimeField(default=clock.now, editable=False)
    updated_at = models.DateTimeField(default=clock.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        db_table = "twig_external_api_keys"
        ordering = ["org", "provider"]
        verbose_name = "external API key"
        constraints = [models.UniqueConstraint(fields=["org", "provider"], name="twig_external_key_one_per_provider")]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} key {self.masked}"

    def set_secret(self, secret: str) -> None:
        """Take a new plaintext key and its mask together (the mask is never derived later)."""
        self.secret = secret
        self.masked = mask_secret(secret)
