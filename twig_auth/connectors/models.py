"""OAuth tokens held for an organization's connectors (table ``oauth_tokens``).

One row per (org, provider, subject); the subject is the id of the object the connection belongs to (a data
source id in the reference project). Tokens are :class:`~twig_auth.vault.fields.EncryptedTextField` values
bound to their row and org. ``version`` and the ``refresh_lease_*`` columns make refresh single-flight
(see :mod:`twig_auth.connectors.tokens`).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from twig_auth.core import clock
from twig_auth.core.crypto import opaque_id
from twig_auth.vault.fields import EncryptedTextField


def new_token_id() -> str:
    return opaque_id("otk")


class OAuthToken(models.Model):
    class Status(models.TextChoices):
        CONNECTED = "connected", "Connected"
        CONNECTION_FAILED = "connection_failed", "Connection failed"

    id = models.CharField(primary_key=True, max_length=32, default=new_token_id, editable=False)
    org = models.ForeignKey("twig_auth.Organization", on_delete=models.CASCADE, related_name="oauth_tokens")
    provider = models.CharField(max_length=40)
    subject = models.CharField(max_length=64, help_text="Id of the object this connection belongs to.")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.CONNECTED)
    access_token = EncryptedTextField(blank=True)
    refresh_token = EncryptedTextField(blank=True)
    token_type = models.CharField(max_length=40, blank=True, default="Bearer")
    scope = models.TextField(blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    # single-flight refresh: whoever moves the lease from free to theirs (one conditional UPDATE) refreshes;
    # ``version`` grows with every token change, so a caller holding an older read cannot refresh again.
    version = models.PositiveIntegerField(default=1)
    refresh_lease_id = models.CharField(max_length=32, blank=True)
    refresh_lease_until = models.DateTimeField(null=True, blank=True)
    connected_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    created_at = models.DateTimeField(default=clock.now, editable=False)
    updated_at = models.DateTimeField(default=clock.now)
    last_refreshed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True,
                                  help_text="Why the last refresh or call failed, in our words (never the "
                                            "provider's body).")

    class Meta:
        db_table = "oauth_tokens"
        ordering = ["org_id", "provider", "subject"]
        constraints = [models.UniqueConstraint(fields=["org", "provider", "subject"],
                                               name="oauth_token_one_per_subject")]
        verbose_name = "OAuth token"

    def __str__(self) -> str:
        return f"{self.provider} connection of {self.subject}"

    def __repr__(self) -> str:
        return f"<OAuthToken {self.pk} {self.provider}/{self.subject} {self.status}>"
