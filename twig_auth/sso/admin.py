"""SSO connections and domains in the admin.

The OIDC client secret is write-only here: the form has an empty "new client secret" field and the page says
only "set" / "not set". SAML metadata given as XML or URL is parsed on save, filling the entity id, sign-in URL
and certificates (with their expiry). Domains are added through the service (audited) and verified with the
"Verify now" action, which asks DNS like the settings page will.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from twig_auth.core import clock
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import InvalidInput, TwigAuthError
from twig_auth.sso import domains, metadata
from twig_auth.sso.models import Protocol, SsoConnection, SsoDomain


class SsoConnectionForm(forms.ModelForm):
    new_client_secret = forms.CharField(
        required=False, strip=True, label="New client secret",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Leave empty to keep the current secret. It is never shown again.")
    clear_client_secret = forms.BooleanField(required=False, label="Remove the client secret")
    refetch_metadata = forms.BooleanField(required=False, label="Fetch the metadata URL again on save")
    idp_metadata_url = forms.URLField(required=False, max_length=500, assume_scheme="https",
                                      help_text=SsoConnection._meta.get_field("idp_metadata_url").help_text)
    oidc_issuer = forms.URLField(required=False, max_length=500, assume_scheme="https",
                                 help_text=SsoConnection._meta.get_field("oidc_issuer").help_text)

    class Meta:
        model = SsoConnection
        # the secret, and what is read from the metadata, are never form fields
        fields = ("org", "name", "protocol", "enabled", "idp_metadata_url", "idp_metadata_xml", "attribute_mapping",
                  "group_attribute", "group_role_mapping", "trust_idp_mfa", "oidc_provider", "oidc_issuer",
                  "oidc_client_id")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("protocol") != Protocol.SAML:
            return data
        xml = (data.get("idp_metadata_xml") or "").strip()
        url = (data.get("idp_metadata_url") or "").strip()
        if url and (not xml or data.get("refetch_metadata") or "idp_metadata_url" in self.changed_data):
            try:
                xml = metadata.fetch_metadata(url).decode("utf-8", "replace")
            except InvalidInput as exc:
                self.add_error("idp_metadata_url", exc.detail)
                return data
        if xml:
            try:
                self._parsed = (metadata.parse_idp_metadata(xml), xml)
            except InvalidInput as exc:
                self.add_error("idp_metadata_xml", exc.detail)
        return data

    def _post_clean(self) -> None:
        parsed = getattr(self, "_parsed", None)
        if parsed is not None:
            metadata.apply_to_connection(self.instance, *parsed)
        if self.cleaned_data.get("clear_client_secret"):
            self.instance.oidc_client_secret = ""
        elif self.cleaned_data.get("new_client_secret"):
            self.instance.oidc_client_secret = self.cleaned_data["new_client_secret"]
        super()._post_clean()  # model validation (clean()) sees the parsed metadata and the new secret


@admin.register(SsoConnection)
class SsoConnectionAdmin(admin.ModelAdmin):
    form = SsoConnectionForm
    list_display = ("name", "org", "protocol", "enabled", "certificate_expires", "client_secret")
    list_filter = ("protocol", "enabled")
    search_fields = ("name", "org__name", "org__slug", "=id")
    list_select_related = ("org",)
    readonly_fields = ("id", "created_by", "created_at", "updated_at", "idp_entity_id", "idp_sso_url",
                       "certificates", "client_secret")
    fieldsets = (
        (None, {"fields": ("id", "org", "name", "protocol", "enabled", "created_by", "created_at", "updated_at")}),
        ("SAML", {"fields": ("idp_metadata_url", "refetch_metadata", "idp_metadata_xml", "idp_entity_id",
                             "idp_sso_url", "certificates", "attribute_mapping", "group_attribute",
                             "group_role_mapping", "trust_idp_mfa")}),
        ("OpenID Connect", {"fields": ("oidc_provider", "oidc_issuer", "oidc_client_id", "client_secret",
                                       "new_client_secret", "clear_client_secret")}),
    )

    @admin.display(description="Client secret")
    def client_secret(self, obj: SsoConnection) -> str:
        return obj.client_secret_status if obj.protocol == Protocol.OIDC else "—"

    @admin.display(description="Certificate expires")
    def certificate_expires(self, obj: SsoConnection) -> str:
        expiry = obj.certificate_expiry
        if expiry is None:
            return "—"
        return f"{expiry:%Y-%m-%d}" + (" (expired)" if expiry <= clock.now() else "")

    @admin.display(description="IdP signing certificates")
    def certificates(self, obj: SsoConnection) -> str:
        rows = [(c.get("fingerprint_sha256", "")[:23] + "…",
                 f"{dt.datetime.fromisoformat(c['not_after']):%Y-%m-%d %H:%M} UTC")
                for c in obj.idp_certificates or [] if isinstance(c, dict) and c.get("not_after")]
        if not rows:
            return "—"
        return format_html("<ul>{}</ul>", format_html_join("", "<li>SHA-256 {} · expires {}</li>", rows))

    def save_model(self, request: HttpRequest, obj: SsoConnection, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


class SsoDomainForm(forms.ModelForm):
    class Meta:
        model = SsoDomain
        fields = ("org", "domain")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        org, domain = data.get("org"), data.get("domain")
        if org is not None and domain:
            try:
                data["domain"] = domains.clean_domain(org, domain)
            except TwigAuthError as exc:
                self.add_error("domain", exc.detail if not isinstance(exc, InvalidInput)
                               else "; ".join(m for ms in exc.errors.values() for m in ms))
        return data


@admin.register(SsoDomain)
class SsoDomainAdmin(admin.ModelAdmin):
    form = SsoDomainForm
    list_display = ("domain", "org", "verified", "verified_at", "created_at")
    list_filter = (("verified_at", admin.EmptyFieldListFilter),)
    search_fields = ("domain", "org__name", "org__slug")
    list_select_related = ("org",)
    actions = ["verify_now"]

    def get_fields(self, request: HttpRequest, obj: SsoDomain | None = None) -> Any:
        if obj is None:
            return ("org", "domain")
        return ("org", "domain", "verified", "verified_at", "dns_record", "verification_token", "created_at")

    def get_readonly_fields(self, request: HttpRequest, obj: SsoDomain | None = None) -> Any:
        # A claimed domain does not change: remove it and add the new one (a new token, a new proof).
        return () if obj is None else self.get_fields(request, obj)

    @admin.display(description="Verified", boolean=True)
    def verified(self, obj: SsoDomain) -> bool:
        return obj.is_verified

    @admin.display(description="DNS record to add")
    def dns_record(self, obj: SsoDomain) -> str:
        rec = domains.instructions(obj)
        return format_html("TXT <code>{}</code> = <code>{}</code>", rec["name"], rec["value"])

    def save_model(self, request: HttpRequest, obj: SsoDomain, form: Any, change: bool) -> None:
        if change:
            return  # every field is read-only once added
        created = domains.add_domain(org=obj.org, domain=obj.domain, context=RequestContext.from_request(request))
        obj.pk, obj.domain, obj.verification_token, obj.created_at = (created.pk, created.domain,
                                                                      created.verification_token, created.created_at)
        obj._state = created._state

    def has_verify_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("twig_auth.change_ssodomain"))

    @admin.action(description="Verify now (look up the DNS TXT record)", permissions=["verify"])
    def verify_now(self, request: HttpRequest, queryset: QuerySet[SsoDomain]) -> None:
        context = RequestContext.from_request(request)
        for item in queryset.select_related("org"):
            if item.is_verified:
                self.message_user(request, f"{item.domain} was already verified.", messages.INFO)
                continue
            try:
                domains.verify_domain(domain=item, context=context)
            except TwigAuthError as exc:
                self.message_user(request, f"{item.domain}: {exc.detail}", messages.ERROR)
            else:
                self.message_user(request, f"{item.domain} is verified.", messages.SUCCESS)
