"""Forms of the SSO pages: "Sign in with SSO" (an email) and Settings → Authentication (the connection and
its domains). Field errors are written for the admin who has to fix them."""

from __future__ import annotations

from typing import Any

from django import forms

from twig_auth.exceptions import InvalidInput
from twig_auth.orgs.roles import Role
from twig_auth.sso import metadata
from twig_auth.sso.models import OidcProvider, Protocol, SsoConnection

MAX_MAPPING_LINES = 200


class DiscoverForm(forms.Form):
    email = forms.EmailField(max_length=254, label="Work email", widget=forms.EmailInput(attrs={
        "autocomplete": "email", "autofocus": True, "inputmode": "email"}),
        error_messages={"required": "Enter your work email address.", "invalid": "Enter a valid email address."})


def parse_role_lines(text: str) -> tuple[dict[str, str], list[str]]:
    """``Engineering = manager`` lines → ``{"Engineering": "manager"}``; errors name the line."""
    mapping: dict[str, str] = {}
    errors: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        group, sep, role = line.rpartition("=")
        group, role = group.strip(), role.strip()
        if not sep or not group:
            errors.append(f"Line {number}: write it as “IdP group = role”, e.g. Engineering = manager.")
        elif role not in Role.values:
            errors.append(f"Line {number}: {role[:40]!r} is not a role; use one of {', '.join(Role.values)}.")
        elif len(group) > 256:
            errors.append(f"Line {number}: the group name is longer than 256 characters.")
        else:
            mapping[group] = role
    if len(mapping) > MAX_MAPPING_LINES:
        errors.append(f"At most {MAX_MAPPING_LINES} groups.")
    return mapping, errors


def role_lines(mapping: dict[str, str]) -> str:
    return "\n".join(f"{group} = {role}" for group, role in sorted((mapping or {}).items()))


class ConnectionForm(forms.Form):
    """The org's connection, SAML or OIDC: the fields of the chosen protocol are validated, the others ignored."""

    protocol = forms.ChoiceField(choices=Protocol.choices, widget=forms.RadioSelect, initial=Protocol.SAML)
    name = forms.CharField(max_length=100, required=False, help_text="Shown to admins only, e.g. “Okta”.")
    trust_idp_mfa = forms.BooleanField(
        required=False, label="Trust the identity provider's MFA",
        help_text="When the IdP says the person used a second factor, do not ask for Twig's as well.")
    group_roles = forms.CharField(
        required=False, max_length=20_000, label="Group → role mapping",
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "class": "code-editor code-editor--short"}),
        help_text="One “IdP group = role” per line (roles: user, manager, admin, super_admin). New members get "
                  "the highest mapped role of their groups, else user.")
    # SAML
    idp_metadata_url = forms.URLField(required=False, max_length=500, label="IdP metadata URL",
                                      assume_scheme="https", help_text="https:// address where your IdP publishes "
                                      "its metadata; fetched when you save.")
    idp_metadata_file = forms.FileField(required=False, label="…or upload the IdP metadata XML",
                                        max_length=255)
    idp_metadata_xml = forms.CharField(required=False, widget=forms.HiddenInput, max_length=metadata.MAX_BYTES)
    email_attribute = forms.CharField(max_length=200, required=False, initial="NameID", label="Email attribute",
                                      help_text="The SAML attribute holding the email; NameID (the default) "
                                                "uses the subject's NameID.")
    group_attribute = forms.CharField(max_length=200, required=False, label="Group attribute",
                                      help_text="The SAML attribute or OIDC claim listing the person's groups "
                                                "(optional).")
    # OIDC
    oidc_provider = forms.ChoiceField(choices=[("", "Choose…"), *OidcProvider.choices], required=False,
                                      label="Provider")
    oidc_issuer = forms.URLField(required=False, max_length=500, label="Issuer / discovery URL",
                                 assume_scheme="https",
                                 help_text="Your tenant's issuer, e.g. https://example.okta.com (not needed for "
                                           "Google; for Microsoft, https://login.microsoftonline.com/<tenant>/v2.0).")
    oidc_client_id = forms.CharField(max_length=255, required=False, label="Client ID")
    oidc_client_secret = forms.CharField(max_length=1000, required=False, label="Client secret", strip=False,
                                         widget=forms.PasswordInput(render_value=False,
                                                                    attrs={"autocomplete": "new-password"}))

    def __init__(self, *args: Any, connection: SsoConnection | None = None, **kwargs: Any) -> None:
        self.connection = connection
        if connection is not None and "initial" not in kwargs and not args:
            kwargs["initial"] = self.initial_from(connection)
        super().__init__(*args, **kwargs)
        secret = connection.client_secret_status if connection is not None else "not set"
        self.fields["oidc_client_secret"].help_text = (
            f"Currently {secret}. Write-only: it is never shown; leave empty to keep it.")

    @staticmethod
    def initial_from(connection: SsoConnection) -> dict[str, Any]:
        return {
            "protocol": connection.protocol, "name": connection.name, "trust_idp_mfa": connection.trust_idp_mfa,
            "group_roles": role_lines(connection.group_role_mapping), "idp_metadata_url": connection.idp_metadata_url,
            "email_attribute": (connection.attribute_mapping or {}).get("email", "NameID"),
            "group_attribute": connection.group_attribute, "oidc_provider": connection.oidc_provider,
            "oidc_issuer": connection.oidc_issuer, "oidc_client_id": connection.oidc_client_id,
        }

    def clean_idp_metadata_file(self) -> Any:
        upload = self.cleaned_data.get("idp_metadata_file")
        if upload is not None and upload.size > metadata.MAX_BYTES:
            raise forms.ValidationError(f"The file is larger than {metadata.MAX_BYTES // 1_000_000} MB.")
        return upload

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        mapping, errors = parse_role_lines(data.get("group_roles") or "")
        for error in errors:
            self.add_error("group_roles", error)
        data["group_role_mapping"] = mapping
        if data.get("protocol") == Protocol.SAML:
            self._clean_saml(data)
        return data

    def _clean_saml(self, data: dict[str, Any]) -> None:
        upload = data.get("idp_metadata_file")
        xml = upload.read().decode("utf-8", errors="replace") if upload is not None else \
            (data.get("idp_metadata_xml") or "")
        if xml:  # checked here, before the step-up prompt, so a bad file is reported at once
            try:
                metadata.parse_idp_metadata(xml)
            except InvalidInput as exc:
                for message in exc.errors.get("idp_metadata_xml", [exc.detail]):
                    self.add_error("idp_metadata_file", message)
                return
        data["metadata_xml"] = xml
        known = self.connection is not None and self.connection.idp_metadata_xml
        if not xml and not data.get("idp_metadata_url") and not known:
            self.add_error("idp_metadata_url", "Give the IdP metadata URL or upload its metadata XML.")

    def values(self) -> dict[str, Any]:
        """The service's ``values`` for the chosen protocol."""
        d = self.cleaned_data
        common = {"name": d["name"].strip(), "trust_idp_mfa": d["trust_idp_mfa"],
                  "group_role_mapping": d["group_role_mapping"], "group_attribute": d["group_attribute"].strip()}
        if d["protocol"] == Protocol.SAML:
            return {**common, "idp_metadata_url": d["idp_metadata_url"],
                    "attribute_mapping": {**(self.connection.attribute_mapping if self.connection else {}),
                                          "email": d["email_attribute"].strip() or "NameID"}}
        return {**common, "oidc_provider": d["oidc_provider"], "oidc_issuer": d["oidc_issuer"],
                "oidc_client_id": d["oidc_client_id"].strip(), "oidc_client_secret": d["oidc_client_secret"]}

    def add_service_errors(self, errors: dict[str, list[str]]) -> None:
        """Put service errors on the matching fields (metadata problems under the upload)."""
        names = {"idp_metadata_xml": "idp_metadata_file", "attribute_mapping": "email_attribute",
                 "group_role_mapping": "group_roles"}
        for path, messages in errors.items():
            name = names.get(path, path)
            for message in messages:
                self.add_error(name if name in self.fields else None, message)


class DomainForm(forms.Form):
    domain = forms.CharField(max_length=253, label="Email domain", help_text="e.g. example.com",
                             error_messages={"required": "Enter a domain name such as example.com."})
