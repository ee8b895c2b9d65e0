"""A Django authentication backend that answers ``user.has_perm`` with the decision API.

Two kinds of permission names, both asked with an object:

- ``"twig_auth.<Permission>"`` (``user.has_perm("twig_auth.grants.manage", org)``): the role matrix, with the
  user's membership in ``org`` (or in the org of a registered resource passed instead);
- ``"<resource type>.<action>"`` (``user.has_perm("agent.use", agent)``): :func:`~twig_auth.authz.decisions.authorize`
  with the user's membership in the resource's org.

Without an object, or for anything else, it says no and lets other backends answer. It authenticates nobody.
Note that Django answers ``has_perm`` True for an active superuser before asking any backend.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import BaseBackend

from twig_auth.authz import registry
from twig_auth.authz.decisions import authorize, has_permission
from twig_auth.authz.matrix import Permission
from twig_auth.authz.members import request_cache
from twig_auth.exceptions import InvalidInput
from twig_auth.orgs.models import Membership, Organization

APP_LABEL = "twig_auth"
_PERMISSIONS = frozenset(p.value for p in Permission)


def _membership(user: Any, org_id: Any) -> Membership | None:
    """The user's membership in the org, cached on the user for the request."""
    box = request_cache(user).setdefault("memberships", {})
    if org_id not in box:
        box[org_id] = Membership.objects.active().select_related("org").filter(user_id=user.pk, org_id=org_id).first()
    return box[org_id]


class AuthzBackend(BaseBackend):
    def authenticate(self, request: Any, **credentials: Any) -> None:
        return None

    def has_perm(self, user_obj: Any, perm: str, obj: Any = None) -> bool:
        if obj is None or not getattr(user_obj, "is_active", False) or not getattr(user_obj, "pk", None):
            return False
        prefix, _, name = str(perm).partition(".")
        if prefix == APP_LABEL:
            if name not in _PERMISSIONS:
                return False
            if isinstance(obj, Organization):
                org_id = obj.pk
            else:
                rtype = registry.for_model(obj)
                if rtype is None:
                    return False
                org_id = getattr(obj, type(obj)._meta.get_field(rtype.org_field).attname)
            membership = _membership(user_obj, org_id)
            return membership is not None and has_permission(membership, name)
        rtype = registry.get(prefix)
        if rtype is None or registry.for_model(obj) is not rtype or name not in rtype.actions:
            return False
        membership = _membership(user_obj, getattr(obj, type(obj)._meta.get_field(rtype.org_field).attname))
        if membership is None:
            return False
        try:
            return authorize(membership, name, obj).allowed
        except InvalidInput:
            return False

    def has_module_perms(self, user_obj: Any, app_label: str) -> bool:
        return False
