"""Who a bucket belongs to, and the take a server-rendered page makes for a member (the API's throttle is
:class:`twig_auth.contrib.rest_framework.throttling.ScopeRateThrottle`; both draw from the same buckets)."""

from __future__ import annotations

from typing import Any

from twig_auth.ratelimit import bucket
from twig_auth.ratelimit.bucket import BucketResult
from twig_auth.ratelimit.rates import limits_for


def key_principal(key_id: str) -> str:
    """The bucket principal of an API key: ``k:<key id>``."""
    return f"k:{key_id}"


def member_principal(user_id: Any, org_id: Any) -> str:
    """The bucket principal of a member acting with an access token or a session: ``u:<user>:<org>``."""
    return f"u:{user_id}:{org_id or '-'}"


def take_for_member(*, user_id: Any, org_id: Any, scope: str) -> BucketResult:
    """Take one token from the member's bucket of ``scope`` in ``org_id``: the bucket the same member's API
    calls of that scope class draw from, so a page cannot be used to get round the API's limit."""
    return bucket.take(bucket.bucket_key(member_principal(user_id, org_id), scope), limits_for(org_id, scope))
