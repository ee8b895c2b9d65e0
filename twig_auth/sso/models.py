"""SsoConnection (one org's identity provider) and SsoDomain (an email domain the org proves it owns)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models

from twig_auth.core import clock
from twig_auth.core.crypto import opaque_id, random_base62
from twig_auth.orgs.policy import DOMAIN_RE
from twig_auth.orgs.roles import Role
from twig_auth.vault.fields import EncryptedTextField, has_value

TOKEN_LENGTH = 32


def new_connection_id() -> str:
    """Return the opaque public id of a new connection (``sso_…``), safe to put in URLs."""
    return opaque_id("sso")


def new_verification_token() -> str:
    """Return a random DNS challenge token; it is public once published, so it is stored as is."""
    return random_base62(TOKEN_LENGTH)


def default_attribute_mapping() -> dict[str, str]:
    """Email comes from the NameID unless the org maps it to an attribute (the contract's default)."""
    return {"email": "NameID"}


def normalize_domain(value: str) -> str:
    """Return ``value`` lowercased, without a trailing dot, internationalized names in their ASCII (punycode)
    form, which is the form DNS answers and email addresses are compared in."""
    value = value.strip().rstrip(".").lower()
    try:
        return value.encode("idna").decode("ascii")
    except UnicodeError:
        return value


def validate_domain(value: str) -> None:
    if not isinstance(value, str) or not DOMAIN_RE.match(normalize_domain(value)):
        raise ValidationError("Enter a domain name such as example.com.", code="invalid")


def validate_group_role_mapping(value: Any) -> None:
    """``{"IdP group name": "role"}`` where each role is one of the org roles. (Error code ``invalid_mapping``,
    not ``invalid``: a form's JSON field would replace an ``invalid`` message with "Enter a valid JSON.")"""
    if not isinstance(value, dict):
        raise ValidationError('Map IdP group names to roles, e.g. {"Engineering": "manager"}.', code="invalid_mapping")
    for group, role in value.items():
        if not isinstance(group, str) or not group.strip() or len(group) > 256:
            raise ValidationError("Each IdP group name must be a non-empty string of at most 256 characters.",
                                  code="invalid_mapping")
        if role not in Role.values:
            raise ValidationError(f"{str(role)[:40]!r} (for group {group[:60]!r}) is not a role; use one of "
                                  f"{', '.join(Role.values)}.", code="invalid_mapping")


def validate_attribute_mapping(value: Any) -> None:
    """``{"email": "<attribute name or NameID>", …}``: email is required, names are strings."""
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) and v.strip()
                                              for k, v in value.items()):
        raise ValidationError('Map user fields to SAML attribute names, e.g. {"email": "NameID"}.',
                              code="invalid_mapping")
    if "email" not in value:
        raise ValidationError('The mapping must say where the email comes from ("email": "NameID" by default).',
                              code="invalid_mapping")


class Protocol(models.TextChoices):
    SAML = "saml", "SAML 2.0"
    OIDC = "oidc", "OpenID Connect"


class OidcProvider(models.TextChoices):
    GOOGLE = "google", "Google Workspace"
    MICROSOFT = "microsoft", "Microsoft Entra ID"
    OKTA = "okta", "Okta"
    ONELOGIN = "onelogin", "OneLogin"
    CUSTOM = "custom", "Custom (discovery URL)"


class SsoConnection(models.Model):
    """One org's identity provider, SAML or OIDC.

    ``oidc_client_secret`` is a secret held for the org: it is written, never shown back (the admin and any
    serializer say only "set" / "not set"), and encrypted at rest by the vault (AES-256-GCM, bound to this row
    and org).
    """

    id = models.CharField(primary_key=True, max_length=32, default=new_connection_id, editable=False)
    org = models.ForeignKey("twig_auth.Organization", on_delete=models.CASCADE, related_name="sso_connections")
    name = models.CharField(max_length=100)
    protocol = models.CharField(max_length=4, choices=Protocol.choices)
    enabled = models.BooleanField(default=False, help_text="Members can sign in through this connection.")
    created_at = models.DateTimeField(default=clock.now, editable=False)
    updated_at = models.DateTimeField(default=clock.now, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", editable=False)
    # SAML
    idp_metadata_url = models.URLField(max_length=500, blank=True,
                                       help_text="Where the IdP publishes its metadata (https).")
    idp_metadata_xml = models.TextField(blank=True, help_text="The IdP's metadata XML (uploaded or last fetched).")
    idp_entity_id = models.CharField(max_length=500, blank=True)
    idp_sso_url = models.URLField(max_length=1000, blank=True)
    idp_certificates = models.JSONField(default=list, blank=True,
                                        help_text='Signing certificates: [{"pem", "not_after", "fingerprint_sha256"}].')
    attribute_mapping = models.JSONField(default=default_attribute_mapping, blank=True,
                                         validators=[validate_attribute_mapping])
    group_attribute = models.CharField(max_length=200, blank=True,
                                       help_text="SAML attribute that lists the user's IdP groups.")
    group_role_mapping = models.JSONField(default=dict, blank=True, validators=[validate_group_role_mapping],
                                          help_text='IdP group → org role, e.g. {"Engineering": "manager"}.')
    trust_idp_mfa = models.BooleanField(default=False,
                                        help_text="Count the IdP's MFA (AuthnContext / amr) as MFA here.")
    # OIDC
    oidc_provider = models.CharField(max_length=10, choices=OidcProvider.choices, blank=True)
    oidc_issuer = models.URLField(max_length=500, blank=True,
                                  help_text="Issuer (discovery base URL, /.well-known/openid-configuration).")
    oidc_client_id = models.CharField(max_length=255, blank=True)
    oidc_client_secret = EncryptedTextField(blank=True)

    class Meta:
        db_table = "twig_sso_connections"
        ordering = ["org", "name"]
        verbose_name = "SSO connection"
        constraints = [
            # The SP entity id and ACS URL are per org slug, so a second SAML connection would share them.
            models.UniqueConstraint(fields=["org"], condition=models.Q(protocol="saml"),
                                    name="twig_sso_one_saml_connection_per_org"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_protocol_display()})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.updated_at = clock.now()
        if kwargs.get("update_fields") is not None:
            kwargs["update_fields"] = {*kwargs["update_fields"], "updated_at"}
        super().save(*args, **kwargs)

    def clean(self) -> None:
        """An enabled connection must be complete enough to sign someone in."""
        if not self.enabled:
            return
        missing: dict[str, str] = {}
        if self.protocol == Protocol.SAML:
            if not self.idp_metadata_xml:
                missing["idp_metadata_xml"] = "Upload the IdP metadata (or give its URL) before enabling."
            elif not self.idp_certificates:
                missing["idp_metadata_xml"] = "No IdP signing certificate: assertions could not be verified."
        elif self.protocol == Protocol.OIDC:
            if not self.oidc_provider:
                missing["oidc_provider"] = "Choose the provider."
            if not self.oidc_client_id:
                missing["oidc_client_id"] = "Enter the client id."
            if not has_value(self, "oidc_client_secret"):  # not a form field (write-only), hence a non-field error
                missing[NON_FIELD_ERRORS] = "Enter the client secret before enabling."
            if self.oidc_provider in (OidcProvider.OKTA, OidcProvider.ONELOGIN, OidcProvider.CUSTOM) \
                    and not self.oidc_issuer:
                missing["oidc_issuer"] = "Enter the issuer URL of your tenant."
        if missing:
            raise ValidationError(missing)

    @property
    def client_secret_status(self) -> str:
        """What the UI may say about the OIDC client secret: never more than this."""
        return "set" if has_value(self, "oidc_client_secret") else "not set"

    @property
    def certificate_expiry(self) -> dt.datetime | None:
        """The latest expiry among the IdP signing certificates (when the last one stops working)."""
        dates = [dt.datetime.fromisoformat(c["not_after"]) for c in self.idp_certificates or []
                 if isinstance(c, dict) and c.get("not_after")]
        return max(dates) if dates else None


class SsoDomainQuerySet(models.QuerySet["SsoDomain"]):
    def verified(self) -> SsoDomainQuerySet:
        return self.filter(verified_at__isnull=False)


class SsoDomain(models.Model):
    """An email domain an org claims; it counts for SSO routing only once the DNS challenge passed."""

    org = models.ForeignKey("twig_auth.Organization", on_delete=models.CASCADE, related_name="sso_domains")
    domain = models.CharField(max_length=253, validators=[validate_domain])
    verification_token = models.CharField(max_length=64, default=new_verification_token, editable=False)
    verified_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=clock.now, editable=False)

    objects = SsoDomainQuerySet.as_manager()

    class Meta:
        db_table = "twig_sso_domains"
        ordering = ["domain"]
        verbose_name = "SSO domain"
        constraints = [
            models.UniqueConstraint(fields=["org", "domain"], name="twig_sso_domain_unique_per_org"),
            # Many orgs may claim a domain; only one may prove it. The database holds the line under races.
            models.UniqueConstraint(fields=["domain"], condition=models.Q(verified_at__isnull=False),
                                    name="twig_sso_domain_verified_once"),
        ]

    def __str__(self) -> str:
        return self.domain

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.domain = normalize_domain(self.domain)
        super().save(*args, **kwargs)

    @property
    def is_verified(self) -> bool:
        return self.verified_at is not None
