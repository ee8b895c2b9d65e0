"""Throttles of the endpoints that check a secret: sign-in, token, second factor and password reset.

Each POST takes one token from two buckets in one atomic call (:func:`~twig_auth.ratelimit.bucket.take_all`):
the client's IP and the account the request is about. Both must have a token, or nothing is taken and
the request is refused before any work (no password hash, no lockout counting, no email, no code check).

* **Per IP** stops one machine from trying many accounts. IPv6 clients are keyed by their ``/64``: a
  single host usually holds a whole ``/64`` and could otherwise take a fresh address, and bucket, at will.
* **Per account** stops many machines from trying one account. The account is the typed email (stripped
  and lowercased, so ``Ann@X`` and ``ann@x`` share a bucket) or, on the second-factor step, the user's id.
  Keys hold a keyed digest of it (HMAC under ``SECRET_KEY``), never the email. A request without an
  account (no email typed) takes from the IP bucket only.

Only POSTs are throttled: showing a form costs nothing. The bucket is exact across processes with Redis
and falls back per process when Redis fails, like the API limits.
"""

from __future__ import annotations

import ipaddress
import math
from typing import TypeVar

from django.http import HttpRequest, HttpResponseBase

from twig_auth.conf import app_settings
from twig_auth.core.crypto import keyed_digest
from twig_auth.core.http import client_ip
from twig_auth.exceptions import RateLimited
from twig_auth.ratelimit import bucket
from twig_auth.ratelimit.bucket import BucketResult
from twig_auth.ratelimit.rates import parse_rate

# Groups: the bucket scope of each family of endpoints. The sign-in page and POST /api/auth/token share
# "login" (one password guess costs the same wherever it is made); the three code forms share "mfa".
LOGIN = "login"
MFA = "mfa"
PASSWORD_RESET = "password_reset"
TOKEN_REFRESH = "token_refresh"

# What a refused person was doing, for the message: "Too many sign-in attempts. Try again in 42 seconds."
WHAT = {LOGIN: "sign-in attempts", MFA: "verification attempts", PASSWORD_RESET: "password reset requests",
        TOKEN_REFRESH: "token requests"}

IPV6_PREFIX = 64

ResponseT = TypeVar("ResponseT", bound=HttpResponseBase)


def ip_principal(ip: str) -> str:
    """Return the IP part of a bucket key: the address, or for IPv6 its ``/64`` network."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return "ip:" + ip
    if address.version == 6:
        return "ip:" + str(ipaddress.ip_network(f"{address}/{IPV6_PREFIX}", strict=False))
    return "ip:" + str(address)


def normalize_account(account: str | None) -> str | None:
    """Return the account as it is keyed (stripped, lowercased), or None when there is none."""
    text = (account or "").strip().lower()
    return text or None


def account_principal(account: str) -> str:
    """Return the account part of a bucket key: a digest, so no email sits in Redis in clear."""
    return "acct:" + keyed_digest(account)[:32]


def check(request: HttpRequest, group: str, *, account: str | None, ip_rate: str, account_rate: str) -> BucketResult:
    """Take one token from the client IP's bucket and the account's bucket of ``group``, or from neither.

    Call it once per POST, before any work. ``account`` is the email typed (normalized here) or the
    user's id; None (or blank) skips the account bucket. Returns the binding result: its ``allowed`` says
    whether to go on, its :meth:`~BucketResult.headers` are the headers of the answer either way.
    """
    items = [(bucket.bucket_key(ip_principal(client_ip(request)), group), parse_rate(ip_rate))]
    normalized = normalize_account(account)
    if normalized is not None:
        items.append((bucket.bucket_key(account_principal(normalized), group), parse_rate(account_rate)))
    return bucket.take_all(items)


def check_login(request: HttpRequest, email: object) -> BucketResult:
    """Take a sign-in POST (the login page, ``POST /api/auth/token``): per IP and per typed email."""
    return check(request, LOGIN, account=email if isinstance(email, str) else None,
                 ip_rate=app_settings.LOGIN_IP_RATE, account_rate=app_settings.LOGIN_ACCOUNT_RATE)


def check_code(request: HttpRequest, user_id: object) -> BucketResult:
    """Take a second-factor POST (a code, or "text me a code"): per IP and per user being verified."""
    return check(request, MFA, account=str(user_id), ip_rate=app_settings.MFA_CODE_RATE,
                 account_rate=app_settings.MFA_ACCOUNT_RATE)


def check_reset(request: HttpRequest, email: object) -> BucketResult:
    """Take a password-reset request: per IP and per typed email, both at ``PASSWORD_RESET_RATE``."""
    rate = app_settings.PASSWORD_RESET_RATE
    return check(request, PASSWORD_RESET, account=email if isinstance(email, str) else None, ip_rate=rate,
                 account_rate=rate)


def check_refresh(request: HttpRequest) -> BucketResult:
    """Take a refresh or revoke POST: per IP only (the body holds a token, not an account), at ``LOGIN_IP_RATE``."""
    rate = app_settings.LOGIN_IP_RATE
    return check(request, TOKEN_REFRESH, account=None, ip_rate=rate, account_rate=rate)


def apply_headers(response: ResponseT, result: BucketResult | None) -> ResponseT:
    """Set ``X-RateLimit-*`` (and ``Retry-After`` when refused) on a page's response; return it."""
    if result is not None:
        for name, value in result.headers().items():
            response[name] = value
    return response


def wait_phrase(seconds: int) -> str:
    """Return how long to wait in words: seconds under a minute, then minutes, then hours (rounded up)."""
    seconds = max(1, int(seconds))
    if seconds < 60:
        amount, unit = seconds, "second"
    elif seconds < 3600:
        amount, unit = math.ceil(seconds / 60), "minute"
    else:
        amount, unit = math.ceil(seconds / 3600), "hour"
    return f"{amount} {unit}{'s' if amount != 1 else ''}"


def refused_message(group: str, result: BucketResult) -> str:
    """Return the sentence a person refused in ``group`` sees, naming how long to wait."""
    return f"Too many {WHAT.get(group, 'attempts')}. Try again in {wait_phrase(result.retry_after)}."


def refused(group: str, result: BucketResult) -> RateLimited:
    """Return the error an API view raises when refused: 429 ``rate_limit_exceeded`` with every header."""
    return RateLimited(result.retry_after, refused_message(group, result), headers=result.headers())


def binding(first: BucketResult | None, second: BucketResult) -> BucketResult:
    """Of two results of one request (the sign-in and then the code buckets), the one whose headers it carries
    (:func:`twig_auth.ratelimit.bucket.binding`)."""
    return second if first is None else bucket.binding([first, second])
