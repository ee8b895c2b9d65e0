"""DRF permission classes on the decision API (:mod:`twig_auth.authz.decisions`).

- :func:`HasPermission` (``HasPermission(Permission.GRANTS_MANAGE)``): an org-level permission of the role matrix,
  optionally for some HTTP methods only (``methods={"POST"}``; the others then only need membership).
- :class:`ResourcePermission`: object level, one action per HTTP method (:attr:`~ResourcePermission.actions`:
  ``GET`` view, ``PUT``/``PATCH`` edit, ``DELETE`` manage by default); :func:`ResourceAction` builds one for
  another action or map (``ResourceAction("deploy")``).

Both compose with the role classes of :mod:`.permissions` (``[HasPermission(...), ResourcePermission]``, or DRF's
``&`` and ``|``); :class:`~twig_auth.contrib.rest_framework.views.TwigAPIView` runs :class:`HasScope` before any
of them, so an API key lacking the scope hears ``insufficient_scope`` first.

Object checks run when a view calls ``self.check_object_permissions(request, obj)`` (or
:func:`require_object`). Their answers:

- allowed: the view goes on;
- the caller may not even ``view`` the object (nor do the action asked): 404 ``not_found``, exactly as for an id
  that does not exist, so existence never leaks;
- the caller sees the object but may not do the action: 403 ``permission_denied`` whose detail is the
  decision's reason;
- the member's own access window is closed (a refusal that does not depend on the object, see
  :data:`REVEALING`): 403 with that reason, so the member learns why rather than meeting a wall of 404s.

Both refusals write ``AUTHORIZATION_DENIED`` (action, resource, reason, decidedBy), the 404 one included: a
probe of hidden ids is worth knowing about. Org-level refusals of :func:`HasPermission` are audited too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from rest_framework.request import Request

from twig_auth.audit.events import Event
from twig_auth.audit.services import record
from twig_auth.authz.decisions import AuthzDecision, authorize, has_permission, require
from twig_auth.authz.matrix import ROLE_PERMISSIONS, Permission
from twig_auth.contrib.rest_framework.exceptions import DomainAPIException
from twig_auth.contrib.rest_framework.permissions import IsOrgMember, MemberCheck, request_membership
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import NotFound, PermissionDenied
from twig_auth.orgs.roles import ROLE_RANK, Role

DEFAULT_ACTIONS: Mapping[str, str] = {"GET": "view", "HEAD": "view", "OPTIONS": "view", "PUT": "edit",
                                      "PATCH": "edit", "DELETE": "manage"}

# Refusals that do not depend on the object: answered 403 with their reason even where others answer 404.
REVEALING: frozenset[str] = frozenset({"time_window"})

_CONTEXT_ATTR = "_twig_request_context"


def request_context(request: Request) -> RequestContext:
    """The request's :class:`RequestContext` (who, from where, MFA), built once per request."""
    context = getattr(request, _CONTEXT_ATTR, None)
    if context is None:
        context = RequestContext.from_request(request._request, actor=request.user)
        setattr(request, _CONTEXT_ATTR, context)
    return context


def least_role_with(permission: Permission | str) -> str | None:
    """The lowest role whose matrix holds ``permission`` (None when no role does)."""
    for role in sorted(ROLE_PERMISSIONS, key=lambda r: ROLE_RANK[r]):
        if permission in ROLE_PERMISSIONS[role]:
            return role
    return None


def permission_message(permission: Permission | str) -> str:
    role = least_role_with(permission)
    if role is None:
        return f"No role holds the {permission} permission."
    return f"This action needs the {Role(role).label.lower()} role or above ({permission} permission)."


# --- org level -------------------------------------------------------------------------------------------


def is_probe(request: Request) -> bool:
    """Is this DRF asking "would another method be allowed?" (the browsable API's forms, OPTIONS metadata), on a
    clone of the request with another method? Such refusals are not attempts and are not audited."""
    return request.method != getattr(request._request, "method", request.method)


class PermissionRequired(MemberCheck):
    """Allow members whose role holds :attr:`permission` (for :attr:`methods` only, when set)."""

    permission: ClassVar[str]

    def allows(self, request: Request, membership: Any) -> bool:
        if has_permission(membership, self.permission):
            return True
        self.message = permission_message(self.permission)
        if is_probe(request):
            return False
        record(Event.AUTHORIZATION_DENIED, context=request_context(request), org=membership.org,
               details={"permission": str(self.permission), "reason": self.message, "decidedBy": "role",
                        "role": membership.role})
        return False


def HasPermission(permission: Permission | str,  # noqa: N802
                  *, methods: Iterable[str] | None = None) -> type[PermissionRequired]:
    """Return a :class:`PermissionRequired` subclass requiring ``permission`` (for ``methods`` only, if given)."""
    permission = Permission(permission)  # fail fast on a typo
    wanted = frozenset(m.upper() for m in methods) if methods else None
    name = f"HasPermission_{permission.name}" + ("_" + "_".join(sorted(wanted)) if wanted else "")
    doc = f"Require the {permission} permission" + (f" for {', '.join(sorted(wanted))}." if wanted else ".")
    return type(name, (PermissionRequired,), {"permission": permission, "methods": wanted, "__doc__": doc})


# --- object level ----------------------------------------------------------------------------------------


def hidden(decision: AuthzDecision) -> bool:
    """Should this refusal look like "no such object"? Every refusal does, except those that do not depend on the
    object (:data:`REVEALING`: the member's own access window), which are said as they are."""
    return not decision.allowed and decision.decided_by not in REVEALING


def require_object(request: Request, obj: Any, action: str) -> AuthzDecision:
    """Return the decision allowing the request's member to do ``action`` on ``obj``; otherwise write
    ``AUTHORIZATION_DENIED`` and raise :class:`NotFound` when the member may not even view ``obj`` (nor do
    ``action`` on it), :class:`PermissionDenied` with the decision's reason when they may view it."""
    membership = request_membership(request)
    if membership is None:
        raise NotFound()
    context = request_context(request)
    try:
        return require(membership, action, obj, context=context)
    except PermissionDenied as exc:
        refusal = getattr(exc, "decision", None)  # require() hands the decision over on the exception
        if refusal is not None and not hidden(refusal):
            raise
        if action != "view" and authorize(membership, "view", obj, context=context).allowed:
            raise
        raise NotFound() from None


def visible(request: Request, obj: Any) -> bool:
    """Is ``obj`` not :func:`hidden` from the request's member? (Not audited: for references, which then go
    through :func:`require_object` for the action they are used for.)"""
    membership = request_membership(request)
    if membership is None:
        return False
    return not hidden(authorize(membership, "view", obj, context=request_context(request)))


class ResourcePermission(IsOrgMember):
    """Object-level permission: the action for the request's HTTP method (:attr:`actions`) on the object.

    Methods missing from :attr:`actions` are not checked at object level. See the module doc for the answers.
    """

    actions: ClassVar[Mapping[str, str]] = DEFAULT_ACTIONS

    def action_for(self, request: Request, view: Any) -> str | None:
        return self.actions.get(request.method or "GET")

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        action = self.action_for(request, view)
        if action is None:
            return True
        if is_probe(request):  # the browsable API asking whether to show a form: answer, audit nothing
            membership = request_membership(request)
            return membership is not None and authorize(membership, action, obj,
                                                        context=request_context(request)).allowed
        try:
            require_object(request, obj, action)
        except (NotFound, PermissionDenied) as exc:
            raise DomainAPIException(exc) from None  # an APIException, as DRF's callers of this method expect
        return True


def ResourceAction(actions: str | Mapping[str, str]) -> type[ResourcePermission]:  # noqa: N802
    """Return a :class:`ResourcePermission` requiring one action for every method (``ResourceAction("deploy")``)
    or one per method (``ResourceAction({"GET": "view", "DELETE": "edit"})``)."""
    if isinstance(actions, str):
        name, mapping = actions, {m: actions for m in ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE")}
    else:
        mapping = {m.upper(): a for m, a in actions.items()}
        name = "_".join(f"{m}_{a}" for m, a in sorted(mapping.items()))
    return type(f"ResourceAction_{name}", (ResourcePermission,),
                {"actions": mapping, "__doc__": f"Require {mapping} on the object."})
