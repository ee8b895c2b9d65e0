"""DRF throttle: a token bucket per principal and scope class, with the ``X-RateLimit-*`` headers.

The scope class of a request is the scope an API key needs for it (the view's ``required_scopes``, see
:func:`~twig_auth.contrib.rest_framework.permissions.required_scope`): ``read``, ``write``, ``execute``
or ``admin``. The bucket belongs to the credential's principal:

* an API key: the key (``k:<key id>``), as the contract says;
* an access token or a web session: the member (``u:<user id>:<org id>``), so a user's tokens and sessions
  share one bucket per org;
* anonymous requests are not limited here (the login, token and reset endpoints have their own per-IP and
  per-account throttles, :mod:`twig_auth.ratelimit.endpoints`).

Its rate is the org's (:func:`~twig_auth.ratelimit.rates.limits_for`: enterprise overrides, else the
deployment's ``RATE_LIMITS``). Every answer of a limited request carries ``X-RateLimit-Limit``,
``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` (Unix time when the bucket is full again); a refusal is
429 ``rate_limit_exceeded`` with ``Retry-After`` (seconds until the next token).

For an API key, :class:`~twig_auth.contrib.rest_framework.authentication.ApiKeyAuthentication` may already
have taken the token in the same Redis round trip as the key check; the throttle then uses that result.
"""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from twig_auth.apikeys.verification import KeyPrincipal
from twig_auth.contrib.rest_framework.exceptions import DomainAPIException
from twig_auth.exceptions import RateLimited
from twig_auth.ratelimit import bucket
from twig_auth.ratelimit.bucket import BucketResult
from twig_auth.ratelimit.principals import key_principal, member_principal
from twig_auth.ratelimit.rates import limits_for

PRETAKEN_ATTR = "twig_rate_limit"  # (scope, BucketResult) left on the Django request by the key check


def scope_class(view: Any, method: str) -> str:
    """The scope class whose bucket a request of ``method`` on ``view`` draws from."""
    from twig_auth.contrib.rest_framework.permissions import required_scope

    return required_scope(view, method)


def principal_of(request: Request) -> tuple[str, Any] | None:
    """Return ``(bucket principal, org id)`` of an authenticated request, or None (not limited)."""
    auth = request.auth
    if isinstance(auth, KeyPrincipal):
        _learn_key_org(auth)
        return key_principal(auth.key_id), auth.org_id
    user = request.user
    if not getattr(user, "is_authenticated", False):
        return None
    membership = getattr(auth, "membership", None)
    if membership is None:
        from twig_auth.contrib.rest_framework.permissions import request_membership

        membership = request_membership(request)
    org_id = getattr(membership, "org_id", None)
    return member_principal(user.pk, org_id), org_id


# key id -> org id of keys this process has verified: the gated take needs the org's rate before the
# key's entry is read. A key never changes org; bounded like the other per-process maps.
_key_orgs: dict[str, Any] = {}
KEY_ORGS_MAX = 10_000


class _ScopeBuckets:
    """The bucket a request of one scope class draws from, handed to the credential check so that the check
    and the take share one Redis round trip; :meth:`_keep` leaves the token taken there for the throttle."""

    def __init__(self, scope: str) -> None:
        self.scope = scope

    def _items(self, principal: str, org_id: Any) -> list[tuple[str, Any]]:
        return [(bucket.bucket_key(principal, self.scope), limits_for(org_id, self.scope))]

    def _keep(self, request: Request, principal: str, result: BucketResult | None) -> None:
        if result is not None:
            setattr(request._request, PRETAKEN_ATTR, (principal, self.scope, result))


class KeyBuckets(_ScopeBuckets):
    """For an API key (:func:`~twig_auth.apikeys.verification.authenticate_key_and_take`)."""

    def __call__(self, key_id: str) -> list[tuple[str, Any]] | None:
        if key_id not in _key_orgs:
            return None  # first request of this key in this process: verify, then take separately
        return self._items(key_principal(key_id), _key_orgs[key_id])

    def keep(self, request: Request, principal: KeyPrincipal, result: BucketResult | None) -> None:
        self._keep(request, key_principal(principal.key_id), result)


class MemberBuckets(_ScopeBuckets):
    """For an access token: the family's revocation marker and the member's bucket
    (:func:`~twig_auth.tokens.verification.authenticate_access_token_and_take`)."""

    def __call__(self, principal: Any) -> list[tuple[str, Any]]:
        return self._items(member_principal(principal.user_id, principal.org_id), principal.org_id)

    def keep(self, request: Request, principal: Any, result: BucketResult | None) -> None:
        self._keep(request, member_principal(principal.user_id, principal.org_id), result)


def _scope_if_throttled(request: Request) -> str | None:
    view = (getattr(request, "parser_context", None) or {}).get("view")
    if view is None or not uses_scope_throttle(view):
        return None
    return scope_class(view, request.method or "GET")


def key_buckets(request: Request) -> KeyBuckets | None:
    """The :class:`KeyBuckets` of this request when its view is limited by :class:`ScopeRateThrottle`."""
    scope = _scope_if_throttled(request)
    return None if scope is None else KeyBuckets(scope)


def member_buckets(request: Request) -> MemberBuckets | None:
    """The :class:`MemberBuckets` of this request when its view is limited by :class:`ScopeRateThrottle`."""
    scope = _scope_if_throttled(request)
    return None if scope is None else MemberBuckets(scope)


def _learn_key_org(principal: KeyPrincipal) -> None:
    if principal.key_id not in _key_orgs:
        if len(_key_orgs) >= KEY_ORGS_MAX:
            _key_orgs.clear()
        _key_orgs[principal.key_id] = principal.org_id


def uses_scope_throttle(view: Any) -> bool:
    """Whether ``view`` is limited by :class:`ScopeRateThrottle` (so the key check may take the token)."""
    return any(isinstance(cls, type) and issubclass(cls, ScopeRateThrottle)
               for cls in getattr(view, "throttle_classes", ()) or ())


class ScopeRateThrottle(BaseThrottle):
    """Token bucket per principal and scope class; refuses with 429 ``rate_limit_exceeded``.

    Add it to ``REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"]`` or a view's ``throttle_classes``.
    """

    def allow_request(self, request: Request, view: Any) -> bool:
        subject = principal_of(request)
        if subject is None:
            return True
        principal, org_id = subject
        scope = scope_class(view, request.method or "GET")
        result = self._pretaken(request, principal, scope)
        if result is None:
            result = bucket.take(bucket.bucket_key(principal, scope), limits_for(org_id, scope))
        headers = result.headers()
        if isinstance(getattr(view, "headers", None), dict):
            view.headers.update(headers)  # DRF's finalize_response puts these on every answer
        if not result.allowed:
            raise DomainAPIException(RateLimited(result.retry_after, headers=headers))
        return True

    @staticmethod
    def _pretaken(request: Request, principal: str, scope: str) -> BucketResult | None:
        pretaken = getattr(request._request, PRETAKEN_ATTR, None)
        if pretaken is None:
            return None
        setattr(request._request, PRETAKEN_ATTR, None)  # one request, one token
        taken_for, taken_scope, result = pretaken
        return result if (taken_for, taken_scope) == (principal, scope) else None

    def wait(self) -> float | None:  # never reached: allow_request raises with its own Retry-After
        return None
