"""B-JWT: access-token verification per request, ours vs raw PyJWT vs djangorestframework-simplejwt.

Rows (targets from the token brief and ``research/performance.md`` §5):

* ``JwtAuthentication.authenticate`` on a DRF request (signature, claims, expiry on the clock seam, and the
  one cache ``get`` of the family's revocation marker, LocMemCache, marker absent) vs a bare
  ``jwt.decode(token, key, algorithms=["HS256"])``: at most 1.3× its cost;
* the same vs simplejwt's ``JWTAuthentication().authenticate(request)`` (which loads the user with one SQL
  query per request): at least 1.5× faster;
* SQL queries and cache calls per verification (0 SQL, 1 cache get);
* with ``REDIS_URL``: ours with the marker ``get`` going to Redis (one round trip), ratio reported.
"""

from __future__ import annotations

from typing import Any
from unittest import mock

import jwt as pyjwt
from django.conf import settings
from django.db import connection
from django.test import RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext
from rest_framework.request import Request

from bench.bench_apikeys import LOCMEM, CountingCache, creator, expect, redis_alias
from bench.harness import Pair, Row, alternate, fmt_time, per_call, samples_note
from twig_auth.contrib.rest_framework.authentication import JwtAuthentication
from twig_auth.core.context import RequestContext
from twig_auth.tokens import jwt as our_jwt
from twig_auth.tokens import verification
from twig_auth.tokens.services import issue_tokens


def _request(token: str) -> Request:
    return Request(RequestFactory().get("/api/agents", HTTP_AUTHORIZATION=f"Bearer {token}"))


def _ours(token: str) -> Any:
    auth, request = JwtAuthentication(), _request(token)
    return lambda: auth.authenticate(request)[1].membership_id  # type: ignore[index]


def _raw(token: str) -> Any:
    secret = our_jwt.signing_keys()[0][0].secret
    return lambda: pyjwt.decode(token, secret, algorithms=["HS256"])["mem"]


def _simplejwt(user: Any) -> Any:
    from rest_framework_simplejwt.authentication import JWTAuthentication
    from rest_framework_simplejwt.tokens import AccessToken

    auth, request = JWTAuthentication(), _request(str(AccessToken.for_user(user)))
    return lambda: auth.authenticate(request)[0].pk  # type: ignore[index]


def _cost_row(name: str, pair: Pair, limit: float, detail: str) -> Row:
    ratio = pair.ours / pair.peer
    return Row(name, fmt_time(pair.ours), fmt_time(pair.peer), f"{ratio:.2f}× its cost", f"≤ {limit}× its cost",
               ratio <= limit, f"{samples_note(pair, fmt_time)}; {detail}")


def _speed_row(name: str, pair: Pair, minimum: float, detail: str) -> Row:
    ratio = pair.peer / pair.ours
    return Row(name, fmt_time(pair.ours), fmt_time(pair.peer), f"{ratio:,.1f}× faster", f"≥ {minimum}× faster",
               ratio >= minimum, f"{samples_note(pair, fmt_time)}; {detail}")


def _io(fn: Any) -> tuple[int, int]:
    counting = CountingCache(verification._cache())
    # The marker is read through ``_client`` (the raising client; the cache itself for local memory).
    with mock.patch.object(verification, "_cache", lambda: counting), \
            mock.patch.object(verification, "_client", lambda: counting), CaptureQueriesContext(connection) as q:
        fn()
    return len(q.captured_queries), sum(counting.calls.values())


def run(*, quick: bool) -> list[Row]:
    membership = creator()
    calls = 2_000 if quick else 20_000
    peer_calls = 500 if quick else 3_000
    rows: list[Row] = []
    with override_settings(TWIG_AUTH={**settings.TWIG_AUTH, "REDIS_CACHE_ALIAS": LOCMEM}):
        pair_tokens = issue_tokens(user=membership.user, membership=membership, context=RequestContext.system())
        token = pair_tokens["access_token"]
        ours = expect(_ours(token), membership.pk)
        raw = expect(_raw(token), membership.pk)
        peer = expect(_simplejwt(membership.user), membership.user_id)
        sql, cache_calls = _io(ours)
        io = f"ours per verify: {sql} SQL, {cache_calls} cache call(s)"
        rows.append(_cost_row("access token verify, LocMemCache: `JwtAuthentication.authenticate` vs raw "
                              "`jwt.decode` (HS256)", alternate(lambda: per_call(ours, calls),
                                                                lambda: per_call(raw, calls)), 1.3, io))
        rows.append(_speed_row("access token verify: `JwtAuthentication.authenticate` vs simplejwt "
                               "`JWTAuthentication.authenticate`", alternate(lambda: per_call(ours, calls),
                                                                             lambda: per_call(peer, peer_calls)),
                               1.5, io))
        with CaptureQueriesContext(connection) as peer_q:
            peer()
        rows.append(Row("queries per access-token verify", f"{sql} SQL, {cache_calls} cache get",
                        f"{len(peer_q.captured_queries)} SQL", "—", "0 SQL, 1 cache round trip",
                        sql == 0 and cache_calls == 1))
    alias = redis_alias()
    if alias is None:
        rows.append(Row("access token verify, Redis marker (1 round trip) vs simplejwt", "skipped: no REDIS_URL",
                        "—", "—", "ratio reported", None))
        return rows
    with override_settings(TWIG_AUTH={**settings.TWIG_AUTH, "REDIS_CACHE_ALIAS": alias}):
        pair = alternate(lambda: per_call(ours, peer_calls), lambda: per_call(peer, peer_calls))
        sql, cache_calls = _io(ours)
        rows.append(Row("access token verify, Redis marker (1 round trip) vs simplejwt", fmt_time(pair.ours),
                        fmt_time(pair.peer), f"{pair.peer / pair.ours:,.1f}× faster", "1 round trip, 0 SQL "
                        "(ratio reported)", sql == 0 and cache_calls == 1, samples_note(pair, fmt_time)))
    return rows
