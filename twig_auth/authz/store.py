"""Where decisions find an org's policies: a compiled :class:`PolicySet` per org, per process.

Each org has a *version* in the shared cache (Redis in production), a random token replaced whenever its
policies change (:func:`policies_changed`, which the policy services call after commit). A process keeps the
set it compiled together with the version it read *before* reading the rows; :func:`policy_set` costs one
cache get and recompiles only when the version moved, so an edit made on one worker is seen by the next
decision on every worker. Tokens are random rather than counters, so a flushed cache can never hand back a
version some process still holds for an older set.

A version starting with :data:`EMPTY` says the org has no enabled policy (set when an org is created and
whenever its last policy goes), so such orgs cost no query at all. If the cache cannot be reached
(:mod:`twig_auth.core.outage`), every call compiles from the database: slower, never stale; a version that
could not be published then is dropped on recovery (``members.reapply_since``).
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from django.core.cache import cache

from twig_auth.authz.engine import PolicySet
from twig_auth.core.cache import UNAVAILABLE, attempt
from twig_auth.exceptions import InvalidInput

logger = logging.getLogger("twig_auth.authz")

KEY_PREFIX = "twig:authz:policy-version:"
EMPTY = "empty-"  # a version starting so says the org has no enabled policy: nothing to read or compile
_local: dict[Any, tuple[str, PolicySet, dict[str, str]]] = {}  # org id -> (version, set, {policy id: name})
_EMPTY = PolicySet()


def version_key(org_id: Any) -> str:
    """The cache key of the org's policy version (callers may fetch it with other keys in one round trip)."""
    return f"{KEY_PREFIX}{org_id}"


_key = version_key


def _version(org_id: Any) -> str | None:
    """Return the org's current version token (creating one when the cache has none), or None when the cache
    is unreachable."""
    key = _key(org_id)
    version = attempt("authz policy version", cache.get, key)
    if version is None:
        if attempt("authz policy version", cache.add, key, secrets.token_hex(8), timeout=None) is UNAVAILABLE:
            return None
        version = attempt("authz policy version", cache.get, key)
    return None if version is UNAVAILABLE else version  # unreachable: compile (never stale)


def _compile(org_id: Any) -> tuple[PolicySet, dict[str, str]]:
    from twig_auth.authz.models import Policy

    rows = list(Policy.objects.filter(org_id=org_id, enabled=True).order_by("created_at", "id")
                .values_list("id", "name", "document"))
    if not rows:
        return _EMPTY, {}
    try:
        return PolicySet.compile([(pid, doc) for pid, _, doc in rows]), {pid: name for pid, name, _ in rows}
    except InvalidInput:
        pass
    # Documents are validated when saved; one written around the services is skipped, loudly.
    good = []
    for pid, name, doc in rows:
        try:
            PolicySet.compile([(pid, doc)])
        except InvalidInput as exc:
            logger.error("authz: policy %s (%r) of org %s does not compile and is ignored: %s", pid, name, org_id,
                         exc.errors)
        else:
            good.append((pid, name, doc))
    return PolicySet.compile([(pid, doc) for pid, _, doc in good]), {pid: name for pid, name, _ in good}


def policy_set(org_id: Any, *, version: str | None = None) -> PolicySet:
    """Return the org's enabled policies, compiled (an empty set when it has none). ``version``: the org's
    version when the caller already read it from the cache (else this reads it: one cache get)."""
    version = version or _version(org_id)
    if version is not None and version.startswith(EMPTY):
        return _EMPTY
    hit = _local.get(org_id)
    if hit is not None and version is not None and hit[0] == version:
        return hit[1]
    compiled, names = _compile(org_id)
    if version is not None:
        _local[org_id] = (version, compiled, names)
    return compiled


def policy_names(org_id: Any) -> dict[str, str]:
    """Return ``{policy id: name}`` of the set last compiled for the org in this process (for explanations)."""
    hit = _local.get(org_id)
    if hit is not None:
        return hit[2]
    return _compile(org_id)[1]


def policies_changed(org_id: Any) -> None:
    """Give the org a new version: every process recompiles its set on its next decision. Call it after
    the transaction that changed the org's policies commits; the version also says whether the org has any
    policy. (Saving or deleting a :class:`Policy` through the ORM calls :func:`bump` after commit anyway.)"""
    bump(org_id)


def bump(org_id: Any) -> None:
    """What :func:`policies_changed` does (the model signal's entry point)."""
    from twig_auth.authz.members import invalidate  # this process's requests drop the set they hold
    from twig_auth.authz.models import Policy

    _local.pop(org_id, None)
    invalidate()
    empty = not Policy.objects.filter(org_id=org_id, enabled=True).exists()
    _publish(org_id, (EMPTY if empty else "") + secrets.token_hex(8))


def org_created(org_id: Any) -> None:
    """A new org has no policy: say so, so that its decisions never read the policy table."""
    _publish(org_id, EMPTY + secrets.token_hex(8))


def _publish(org_id: Any, version: str) -> None:
    # Missed during an outage: the other workers compile from the database while Redis is down for them too,
    # and every version is dropped when it is back (``members.reapply_since``).
    attempt("authz policy version", cache.set, _key(org_id), version, timeout=None)


def forget_local() -> None:
    """Drop this process's compiled sets (tests; the shared versions are untouched)."""
    _local.clear()
