"""Issue, refresh (rotate) and revoke tokens.

Refresh consumes its row with one conditional ``UPDATE`` (``used_at`` set only where it is still null,
unrevoked and unexpired), so of two concurrent refreshes with the same token exactly one wins. A used
token presented again revokes the whole family, refresh rows and access tokens alike (cache marker,
see :mod:`twig_auth.tokens.verification`), and is audited as ``TOKEN_REUSED``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any

from django.db import transaction
from django.views.decorators.debug import sensitive_variables

from twig_auth.audit.events import Event
from twig_auth.audit.services import record
from twig_auth.conf import app_settings
from twig_auth.core import clock
from twig_auth.core.context import RequestContext
from twig_auth.core.crypto import opaque_id, random_base62
from twig_auth.exceptions import InvalidToken, TokenExpired, TokenReused, TwigAuthError
from twig_auth.orgs.models import Membership
from twig_auth.orgs.roles import Role, role_at_least
from twig_auth.tokens import jwt
from twig_auth.tokens.models import RefreshToken
from twig_auth.tokens.verification import mark_revoked

REFRESH_PREFIX = "twigrt_"
REFRESH_RANDOM = 43  # base62 characters: ≈ 256 bits
REFRESH_MAX_LENGTH = 128


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _looks_like_refresh(token: Any) -> bool:
    return (isinstance(token, str) and len(token) == len(REFRESH_PREFIX) + REFRESH_RANDOM
            and token.startswith(REFRESH_PREFIX) and token[len(REFRESH_PREFIX):].isalnum()
            and token.isascii())


def implied_roles(role: str) -> list[str]:
    """Return ``role`` and every role below it, most powerful first (the ``roles`` claim)."""
    return [r for r in Role.values if role_at_least(role, r)]


def access_claims(*, membership: Membership, family: str, now: dt.datetime,
                  mfa_at: int | None = None) -> dict[str, Any]:
    """The access token's claims; ``mfa_at`` (Unix time of the second factor) only on tokens obtained with
    ``otp``, never on refreshed ones, so step-up needs a fresh code."""
    iat = int(now.timestamp())
    claims = {"typ": jwt.TOKEN_TYPE, "sub": str(membership.user_id), "org": membership.org_id, "mem": membership.pk,
              "role": membership.role, "roles": implied_roles(membership.role), "fam": family,
              "jti": secrets.token_hex(12), "iat": iat, "exp": iat + app_settings.ACCESS_TOKEN_SECONDS}
    if mfa_at is not None:
        claims["mfa_at"] = mfa_at
    from twig_auth.mfa import enforcement

    deadline = enforcement.deadline(membership.user_id, membership.org_id, membership.role)
    if deadline:
        claims["mfa_dl"] = int(deadline)  # the member's MFA grace ends then: verification checks again after it
    return claims


def _new_refresh(*, membership: Membership, family: str, now: dt.datetime) -> tuple[RefreshToken, str]:
    plaintext = REFRESH_PREFIX + random_base62(REFRESH_RANDOM)
    row = RefreshToken.objects.create(
        id=opaque_id("rt", 24), family=family, user_id=membership.user_id, org_id=membership.org_id,
        membership=membership, token_hash=hash_refresh_token(plaintext), created_at=now,
        expires_at=now + dt.timedelta(seconds=app_settings.REFRESH_TOKEN_SECONDS))
    return row, plaintext


def _pair(*, membership: Membership, family: str, refresh_plaintext: str, now: dt.datetime,
          mfa_at: int | None = None) -> dict[str, Any]:
    return {"access_token": jwt.encode(access_claims(membership=membership, family=family, now=now, mfa_at=mfa_at)),
            "refresh_token": refresh_plaintext, "token_type": "Bearer",
            "expires_in": app_settings.ACCESS_TOKEN_SECONDS}


@sensitive_variables("plaintext")
def issue_tokens(*, user: Any, membership: Membership, context: RequestContext,
                 mfa_at: int | None = None) -> dict[str, Any]:
    """Start a new family for ``membership``; return ``{access_token, refresh_token, token_type, expires_in}``.

    ``mfa_at`` is the Unix time of the second factor given with this login, if any (step-up freshness)."""
    if membership.user_id != user.pk:
        raise TwigAuthError("The membership does not belong to the user.")
    now = clock.now()
    family = opaque_id("fam", 24)
    with transaction.atomic():
        _, plaintext = _new_refresh(membership=membership, family=family, now=now)
    return _pair(membership=membership, family=family, refresh_plaintext=plaintext, now=now, mfa_at=mfa_at)


@sensitive_variables("refresh_token", "plaintext")
def refresh(*, refresh_token: str, context: RequestContext) -> dict[str, Any]:
    """Consume ``refresh_token`` and return a new pair of the same family.

    Raise ``InvalidToken`` (unknown, malformed, revoked), ``TokenExpired``, or ``TokenReused`` (already used:
    the family is revoked first).
    """
    if not _looks_like_refresh(refresh_token):
        raise InvalidToken("The refresh token is not valid.")
    digest = hash_refresh_token(refresh_token)
    now = clock.now()
    deactivated_family = None
    with transaction.atomic():
        consumed = RefreshToken.objects.filter(token_hash=digest, used_at__isnull=True, revoked_at__isnull=True,
                                               expires_at__gt=now).update(used_at=now)
        if consumed == 1:
            old = RefreshToken.objects.select_related("membership").get(token_hash=digest)
            membership = old.membership
            if membership.deactivated_at is None:
                new, plaintext = _new_refresh(membership=membership, family=old.family, now=now)
                RefreshToken.objects.filter(pk=old.pk).update(replaced_by=new)
                return _pair(membership=membership, family=old.family, refresh_plaintext=plaintext, now=now)
            deactivated_family = old.family  # deactivation revoked it; this closes the race with a refresh
    if deactivated_family is not None:
        revoke_family(deactivated_family, now=now)
        raise InvalidToken("Your access to this organization is deactivated; the token was revoked.")
    # Not consumed: find out why, outside the transaction, so a family revocation is committed.
    row = RefreshToken.objects.filter(token_hash=digest).first()
    if row is None:
        raise InvalidToken("The refresh token is not valid.")
    if row.used_at is not None:
        revoke_family(row.family, now=now)
        record(Event.TOKEN_REUSED, context=context, org=row.org, user=row.user,
               details={"family": row.family, "tokenId": row.id})
        raise TokenReused()
    if row.revoked_at is not None:
        raise InvalidToken("The refresh token has been revoked.")
    raise TokenExpired("The refresh token has expired; sign in again.")


def revoke_family(family: str, *, now: dt.datetime | None = None) -> int:
    """Revoke every refresh token of ``family`` and, through the cache marker, its access tokens."""
    now = now or clock.now()
    # Marker first: access tokens stop working on every worker even if the row update were to fail.
    mark_revoked([family])
    return RefreshToken.objects.filter(family=family, revoked_at__isnull=True).update(revoked_at=now)


@sensitive_variables("token")
def revoke(*, token: str, context: RequestContext) -> bool:
    """Revoke the family of a refresh or access token (RFC 7009); unknown tokens are ignored. Return if found."""
    family: str | None = None
    if _looks_like_refresh(token):
        family = RefreshToken.objects.filter(token_hash=hash_refresh_token(token)).values_list(
            "family", flat=True).first()
    elif isinstance(token, str) and token.count(".") == 2:
        try:
            family = jwt.decode(token).get("fam")
        except TwigAuthError:
            family = None
        family = family if isinstance(family, str) else None
    if family is None:
        return False
    with transaction.atomic():
        ended = revoke_family(family)
        # the token client's sign-out (RFC 7009 revocation), audited like the pages' and /api/auth/logout's; a
        # family already revoked is not signed out twice
        row = RefreshToken.objects.filter(family=family).select_related("org", "user").order_by("created_at").first()
        if ended and row is not None:
            record(Event.LOGOUT, context=context, org=row.org, user=row.user,
                   details={"method": "token_revoke", "family": family})
    return True


def revoke_user_tokens(user: Any) -> int:
    """Revoke every live token family of ``user`` (password change, logout, admin). Return the family count."""
    return _revoke_families(user=user)


def revoke_member_tokens(membership: Any) -> int:
    """Revoke the token families issued for one membership (its role changed, or it was removed)."""
    return _revoke_families(membership_id=membership.pk)


def _revoke_families(**filters: Any) -> int:
    now = clock.now()
    # A family whose rows all expired longer ago than an access token lives has nothing left to revoke.
    horizon = now - dt.timedelta(seconds=app_settings.ACCESS_TOKEN_SECONDS)
    families = set(RefreshToken.objects.filter(revoked_at__isnull=True, expires_at__gt=horizon, **filters)
                   .values_list("family", flat=True))
    if families:
        mark_revoked(families)
        RefreshToken.objects.filter(family__in=families, revoked_at__isnull=True).update(revoked_at=now)
    return len(families)
