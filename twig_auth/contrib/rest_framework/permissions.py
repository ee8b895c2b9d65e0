"""DRF permission classes for organization roles, and the request's membership.

Compose them on a view (``permission_classes = [HasOrgRole(Role.MANAGER, methods=WRITE_METHODS)]``):

- :class:`IsOrgMember`: signed in and a member of the request's org.
- :class:`RoleAtLeast`: a member whose role is at least ``minimum``; subclass it and set ``minimum`` (and
  optionally ``methods``, the HTTP methods the role applies to; other methods only need membership).
- :func:`HasOrgRole`: build such a subclass inline.

A request's org is the one its credentials are bound to (contract: sessions, tokens and API keys each name
one org). :func:`request_membership` is the one place that finds it, so later authentication classes only
need to hand over a ``membership`` on ``request.auth``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from twig_auth.apikeys.scopes import Scope, satisfies
from twig_auth.apikeys.verification import KeyPrincipal
from twig_auth.contrib.rest_framework.exceptions import DomainAPIException
from twig_auth.exceptions import InsufficientScope
from twig_auth.orgs.active import current_membership
from twig_auth.orgs.roles import Role, role_at_least

if TYPE_CHECKING:
    from twig_auth.orgs.models import Membership, Organization

WRITE_METHODS: frozenset[str] = frozenset({"POST", "PUT", "PATCH", "DELETE"})

_CACHE_ATTR = "_twig_request_membership"
_UNSET = object()


def request_membership(request: Request) -> Membership | None:
    """Return the membership the request acts as, or None.

    An authenticator bound to one org (access token, API key) puts the membership on ``request.auth`` as
    ``.membership``; a web session falls back to the session's active org.
    """
    cached = getattr(request, _CACHE_ATTR, _UNSET)
    if cached is not _UNSET:
        return cached  # type: ignore[return-value]
    user = request.user
    membership: Membership | None = None
    if getattr(user, "is_authenticated", False):
        membership = getattr(request.auth, "membership", None)
        if membership is None:
            membership = current_membership(request._request)
        if membership is not None and membership.user_id != user.pk:
            membership = None  # never act as somebody else's membership
    setattr(request, _CACHE_ATTR, membership)
    return membership


def request_org(request: Request) -> Organization | None:
    """Return the org the request acts in, or None."""
    membership = request_membership(request)
    return membership.org if membership is not None else None


class IsOrgMember(BasePermission):
    """Allow a signed-in member of the request's org. Anonymous requests get 401, outsiders 403."""

    message = "You are not a member of an organization."

    def has_permission(self, request: Request, view: Any) -> bool:
        if not getattr(request.user, "is_authenticated", False):
            return False  # DRF turns this into 401 not_authenticated when an authenticator was tried
        return request_membership(request) is not None


class MemberCheck(IsOrgMember):
    """A member of the request's org who also passes :meth:`allows`, for :attr:`methods` only when set (the
    other methods are open to every member). Subclasses implement :meth:`allows` and set ``message``."""

    methods: ClassVar[frozenset[str] | None] = None

    def has_permission(self, request: Request, view: Any) -> bool:
        if not super().has_permission(request, view):
            return False
        if self.methods is not None and request.method not in self.methods:
            return True
        membership = request_membership(request)
        assert membership is not None
        return self.allows(request, membership)

    def allows(self, request: Request, membership: Membership) -> bool:
        raise NotImplementedError


class RoleAtLeast(MemberCheck):
    """Allow members whose role is at least :attr:`minimum`.

    Override :attr:`minimum` (a :class:`~twig_auth.orgs.roles.Role`) and, to guard only some HTTP methods,
    :attr:`methods`; the other methods are open to every member.
    """

    minimum: ClassVar[str] = Role.USER

    def allows(self, request: Request, membership: Membership) -> bool:
        if role_at_least(membership.role, self.minimum):
            return True
        self.message = f"This action needs the {Role(self.minimum).label.lower()} role or above."
        return False


def HasOrgRole(minimum: str, *, methods: frozenset[str] | set[str] | None = None) -> type[RoleAtLeast]:  # noqa: N802
    """Return a :class:`RoleAtLeast` subclass requiring ``minimum`` (for ``methods`` only, if given)."""
    Role(minimum)  # fail fast on a typo
    name = f"HasOrgRole_{minimum}" + ("_" + "_".join(sorted(methods)) if methods else "")
    attrs = {"minimum": minimum, "methods": frozenset(m.upper() for m in methods) if methods else None,
             "__doc__": f"Require the {minimum} role" + (f" for {', '.join(sorted(methods))}." if methods else ".")}
    return type(name, (RoleAtLeast,), attrs)


class IsOrgManager(RoleAtLeast):
    """Allow managers, admins and super admins."""

    minimum = Role.MANAGER


class IsOrgAdmin(RoleAtLeast):
    """Allow admins and super admins."""

    minimum = Role.ADMIN


class MembersReadManagersWrite(RoleAtLeast):
    """Every member may read (and use safe methods); writes need the manager role."""

    minimum = Role.MANAGER
    methods = WRITE_METHODS


def required_scope(view: Any, method: str) -> str:
    """Return the scope an API key needs for ``method`` on ``view``.

    A view declares ``required_scopes`` (``{"GET": "read", "POST": "write"}``, or ``{"*": "admin"}``); an
    endpoint that declares none is outside the scope map and needs ``admin``.
    """
    mapping: dict[str, str] | None = getattr(view, "required_scopes", None)
    if not mapping:
        return Scope.ADMIN
    return mapping.get(method) or mapping.get("*") or Scope.ADMIN


class HasScope(BasePermission):
    """For API-key requests, require the endpoint's scope (403 ``insufficient_scope`` naming it).

    Requests authenticated otherwise (a web session) are not scoped; compose with the role classes,
    which then apply the key creator's role: a key acts as its creator, narrowed by its scopes.
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        principal = request.auth
        if not isinstance(principal, KeyPrincipal):
            return True
        needed = required_scope(view, request.method or "GET")
        if satisfies(principal.scopes, needed):
            return True
        raise DomainAPIException(InsufficientScope(needed))
