"""Write workflows of SSO connections: create or update an org's connection, enable or disable it, turn
"Enforce SSO" on or off. Each is one transaction and audited (``SSO_CONNECTION_CREATED`` /
``SSO_CONNECTION_UPDATED`` with the names of the changed fields, never a secret's value)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from twig_auth.audit.events import Event
from twig_auth.audit.services import record
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import Conflict, InvalidInput, PermissionDenied
from twig_auth.orgs.models import Organization
from twig_auth.orgs.roles import Role
from twig_auth.orgs.services import actor_membership, is_operator, update_org_settings
from twig_auth.sso import enforcement, metadata
from twig_auth.sso.models import Protocol, SsoConnection

SAML_FIELDS = ("name", "idp_metadata_url", "attribute_mapping", "group_attribute", "group_role_mapping",
               "trust_idp_mfa")
OIDC_FIELDS = ("name", "oidc_provider", "oidc_issuer", "oidc_client_id", "oidc_client_secret", "trust_idp_mfa",
               "group_attribute", "group_role_mapping")
SECRET_FIELDS = {"oidc_client_secret"}
METADATA_FIELDS = ("idp_metadata_xml", "idp_entity_id", "idp_sso_url", "idp_certificates")


def _require_admin(org: Organization, context: RequestContext) -> None:
    if not org.is_enterprise:
        raise PermissionDenied("Single sign-on requires the enterprise plan.")
    if is_operator(context):
        return
    mine = actor_membership(org, context)
    if mine is None or not mine.has_role(Role.ADMIN):
        raise PermissionDenied("Only admins can change the organization's single sign-on.")


def _full_clean(connection: SsoConnection) -> None:
    try:
        connection.full_clean(exclude=["org", "created_by"])
    except ValidationError as exc:
        raise InvalidInput({k: [str(m) for m in v] for k, v in exc.message_dict.items()}) from None


def org_connection(org: Organization) -> SsoConnection | None:
    """The connection the settings page manages: the org's oldest (the page keeps one per org)."""
    return SsoConnection.objects.select_related("org").filter(org=org).order_by("created_at", "pk").first()


def _apply_metadata(connection: SsoConnection, xml: str | None) -> bool:
    """Parse uploaded ``xml``, or fetch the metadata URL when it changed and no XML came; return whether the
    IdP metadata changed. Raise :class:`InvalidInput` on the field at fault."""
    if xml:
        parsed = metadata.parse_idp_metadata(xml)
    elif connection.idp_metadata_url and (connection._state.adding or connection.idp_metadata_url
                                          != _stored(connection, "idp_metadata_url")):
        raw = metadata.fetch_metadata(connection.idp_metadata_url)
        try:
            parsed = metadata.parse_idp_metadata(raw)
        except InvalidInput as exc:  # the fetched document is bad: say so on the URL field
            raise InvalidInput({"idp_metadata_url": exc.errors.get("idp_metadata_xml", [exc.detail])}) from None
        xml = raw.decode("utf-8", errors="replace")
    else:
        return False
    metadata.apply_to_connection(connection, parsed, xml)
    return True


def _stored(connection: SsoConnection, field: str) -> Any:
    return SsoConnection.objects.filter(pk=connection.pk).values_list(field, flat=True).first()


def save_connection(*, org: Organization, protocol: str, values: dict[str, Any], metadata_xml: str | None = None,
                    context: RequestContext | None = None) -> SsoConnection:
    """Create the org's connection or update it (also switching its protocol). ``values`` holds the
    fields of ``protocol`` (SAML: name, idp_metadata_url, attribute_mapping, group_attribute,
    group_role_mapping, trust_idp_mfa; OIDC: name, oidc_provider, oidc_issuer, oidc_client_id,
    oidc_client_secret (empty keeps the stored one: it is write-only), trust_idp_mfa). SAML metadata comes
    from ``metadata_xml`` or, when the URL changed and no XML came, from fetching the URL."""
    context = context or RequestContext.system()
    _require_admin(org, context)
    if protocol not in Protocol.values:
        raise InvalidInput({"protocol": ["Choose SAML 2.0 or OpenID Connect."]})
    allowed = SAML_FIELDS if protocol == Protocol.SAML else OIDC_FIELDS
    connection = org_connection(org) or SsoConnection(org=org, created_by=context.actor)
    created = connection._state.adding
    before = {f: getattr(connection, f) for f in (*SAML_FIELDS, *OIDC_FIELDS, "protocol", *METADATA_FIELDS)}
    connection.protocol = protocol
    for field in allowed:
        if field not in values:
            continue
        if field in SECRET_FIELDS and not values[field]:
            continue  # write-only: an empty box keeps the secret
        setattr(connection, field, values[field])
    if not connection.name:
        connection.name = "SAML" if protocol == Protocol.SAML else "OpenID Connect"
    if protocol == Protocol.SAML:
        _apply_metadata(connection, metadata_xml)
    _full_clean(connection)
    changed = sorted(f for f, v in before.items() if getattr(connection, f) != v)
    if not created and not changed:
        return connection
    try:
        with transaction.atomic():
            connection.save()
            record(Event.SSO_CONNECTION_CREATED if created else Event.SSO_CONNECTION_UPDATED, context=context,
                   org=org, target=connection, details={"protocol": protocol, "changed": changed,
                                                        "enabled": connection.enabled})
    except IntegrityError:
        raise Conflict("This organization already has a SAML connection.") from None
    return connection


def set_enabled(*, connection: SsoConnection, enabled: bool, context: RequestContext | None = None) -> SsoConnection:
    """Enable (the connection must be complete: :meth:`SsoConnection.clean`) or disable a connection.
    Disabling the org's last enabled connection while it enforces SSO is refused: turn that off first."""
    context = context or RequestContext.system()
    org = connection.org
    _require_admin(org, context)
    with transaction.atomic():
        locked = SsoConnection.objects.select_for_update().select_related("org").get(pk=connection.pk)
        if locked.enabled == enabled:
            return locked
        if not enabled and enforcement.enforces_sso(org) and not SsoConnection.objects.filter(
                org=org, enabled=True).exclude(pk=locked.pk).exists():
            raise Conflict("Turn off Enforce SSO before disabling the connection: members could not sign in.")
        locked.enabled = enabled
        _full_clean(locked)
        locked.save(update_fields=["enabled"])
        record(Event.SSO_CONNECTION_UPDATED, context=context, org=org, target=locked,
               details={"protocol": locked.protocol, "changed": ["enabled"], "enabled": enabled})
    return locked


def set_enforce(*, org: Organization, enforce: bool, context: RequestContext | None = None) -> None:
    """Turn "Enforce SSO" on or off: the org setting ``sso.enforce`` (``ORG_SETTINGS_CHANGED``); turning it on
    needs an enabled connection (checked by :func:`twig_auth.orgs.services.update_org_settings`)."""
    update_org_settings(org=org, patch={"sso": {"enforce": bool(enforce)}}, context=context)
