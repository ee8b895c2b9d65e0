"""Verification: warm path cost, cache keyed by the full key, single flight, hash budget, negative cache,
environment, expiry and revocation. Counts run on whichever cache backend the suite runs on."""

from __future__ import annotations

import datetime as dt
import re
import threading

import pytest
from django.core.cache import caches
from django.db import connection

from twig_auth.apikeys import format as key_format
from twig_auth.apikeys.services import revoke_api_key
from twig_auth.apikeys.verification import KeyPrincipal, authenticate_key, clear_local, digest_of
from twig_auth.conf import app_settings
from twig_auth.core import clock
from twig_auth.core.cache import strict
from twig_auth.exceptions import EnvironmentMismatch, InvalidApiKey

from .conftest import bearer, sql_of


def _cache():
    return caches[app_settings.REDIS_CACHE_ALIAS]


def _entry(plaintext: str):
    return _cache().get(f"twig:ak:v:{digest_of(plaintext)}")


def _wrong_secret(plaintext: str) -> str:
    """A well-formed key (valid checksum) with the same environment and key id but another secret."""
    parsed = key_format.parse(plaintext)
    return key_format.generate(parsed.environment, key_id=parsed.key_id).full


def test_cold_then_warm_path_runs_no_sql_and_one_cache_round_trip(issue, owner, fast_bcrypt, bcrypt_calls,
                                                                  store_trips, django_assert_num_queries):
    from twig_auth.mfa import enforcement

    key, plaintext = issue(owner, ["read", "execute"])
    # the creator's MFA standing is cached per member (shared by all their credentials); warm it as in steady state
    deadline = enforcement.deadline(owner.user_id, owner.org_id, owner.role)
    store_trips.reset()
    with django_assert_num_queries(1):  # cold: one indexed lookup (key + creator joined)
        principal = authenticate_key(plaintext)
    assert bcrypt_calls.checks == 1
    assert store_trips.count >= 3, store_trips.calls  # the counter sees the cold path (get, lock, budget, set)
    assert principal == KeyPrincipal(id=key.pk, key_id=key.key_id, org_id=owner.org_id, membership_id=owner.pk,
                                     user_id=owner.user_id, role="super_admin", scopes=frozenset({"read", "execute"}),
                                     environment="live", expires_at=None, name="test key",
                                     mfa_deadline=deadline)
    assert deadline > 0  # a super admin in the default policy's grace period
    for _ in range(5):
        store_trips.reset()
        with django_assert_num_queries(0):
            assert authenticate_key(plaintext) == principal
        assert store_trips.count <= 1, store_trips.calls  # at most one cache round trip when warm
    assert bcrypt_calls.checks == 1


def test_warm_api_request_does_not_query_keys_memberships_or_users(client, issue, owner, fast_bcrypt,
                                                                   django_assert_max_num_queries):
    _, plaintext = issue(owner, ["read"])
    assert client.get("/api/agents", **bearer(plaintext)).status_code == 200  # warm the cache
    with django_assert_max_num_queries(3) as captured:
        response = client.get("/api/agents", **bearer(plaintext))
    assert response.status_code == 200
    tables = {re.search(r'FROM "(\w+)"', q["sql"]).group(1) for q in captured.captured_queries}
    assert tables == {"workspace_agents"}, sql_of(captured)  # the view's own query only


def test_cache_is_keyed_by_the_full_key_not_the_key_id(issue, owner, fast_bcrypt, bcrypt_calls):
    _, plaintext = issue(owner, ["read"])
    authenticate_key(plaintext)  # warm
    assert _entry(plaintext) is not None
    impostor = _wrong_secret(plaintext)
    with pytest.raises(InvalidApiKey):
        authenticate_key(impostor)
    assert bcrypt_calls.checks == 2  # the impostor was hashed, not served the cached "valid" of the key id
    assert authenticate_key(plaintext).key_id == key_format.parse(plaintext).key_id


@pytest.mark.django_db(transaction=True)
def test_concurrent_cold_requests_for_one_key_run_bcrypt_once(issue, owner, bcrypt_calls):
    _, plaintext = issue(owner, ["read"])  # bcrypt cost 12: the others wait ~0.25 s for the one verifier
    bcrypt_calls.reset()
    threads_n = 8
    barrier = threading.Barrier(threads_n)
    results: list[object] = []

    def verify() -> None:
        try:
            barrier.wait()
            results.append(authenticate_key(plaintext))
        except Exception as exc:  # noqa: BLE001
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=verify) for _ in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == threads_n
    assert all(isinstance(r, KeyPrincipal) for r in results), results
    assert bcrypt_calls.checks == 1


def test_flood_of_wrong_secrets_for_a_known_key_id_runs_bounded_hashes(issue, owner, fast_bcrypt, bcrypt_calls,
                                                                       client):
    _, plaintext = issue(owner, ["read"])
    budget = app_settings.API_KEY_HASHES_PER_MINUTE
    assert budget == 10
    with clock.frozen():  # one budget window
        authenticate_key(plaintext)  # the real key is warm (its one hash counts against the same budget)
        for _ in range(40):
            response = client.get("/api/agents", **bearer(_wrong_secret(plaintext)))
            assert response.status_code == 401
            assert response.json()["code"] == "invalid_api_key"
        assert bcrypt_calls.checks == budget
        assert "Too many failed attempts" in response.json()["detail"]
        # the warm real key is not locked out by the flood
        assert client.get("/api/agents", **bearer(plaintext)).status_code == 200
    assert bcrypt_calls.checks == budget


def test_budget_renews_the_next_minute(issue, owner, fast_bcrypt, bcrypt_calls):
    _, plaintext = issue(owner, ["read"])
    with clock.frozen(dt.datetime(2030, 1, 1, 12, 0, 5, tzinfo=dt.UTC)) as frozen:
        for _ in range(15):
            with pytest.raises(InvalidApiKey):
                authenticate_key(_wrong_secret(plaintext))
        assert bcrypt_calls.checks == 10
        frozen.advance(minutes=1)
        assert authenticate_key(plaintext).key_id == key_format.parse(plaintext).key_id
        assert bcrypt_calls.checks == 11


def test_same_wrong_key_repeated_is_answered_from_the_negative_cache(issue, owner, fast_bcrypt, bcrypt_calls,
                                                                     django_assert_num_queries):
    _, plaintext = issue(owner, ["read"])
    wrong = _wrong_secret(plaintext)
    with pytest.raises(InvalidApiKey):
        authenticate_key(wrong)
    assert bcrypt_calls.checks == 1
    with django_assert_num_queries(0):
        for _ in range(20):
            with pytest.raises(InvalidApiKey):
                authenticate_key(wrong)
    assert bcrypt_calls.checks == 1


def test_unknown_key_id_is_refused_without_hashing_and_remembered(db, bcrypt_calls, django_assert_num_queries):
    unknown = key_format.generate("live").full
    with django_assert_num_queries(1), pytest.raises(InvalidApiKey):
        authenticate_key(unknown)
    with django_assert_num_queries(0), pytest.raises(InvalidApiKey):
        authenticate_key(unknown)
    assert bcrypt_calls.checks == 0


def test_test_key_in_live_mode_is_environment_mismatch(client, issue, owner, fast_bcrypt, bcrypt_calls,
                                                       django_assert_num_queries):
    _, test_key = issue(owner, ["read"], environment="test")
    with django_assert_num_queries(0), pytest.raises(EnvironmentMismatch):
        authenticate_key(test_key)
    response = client.get("/api/agents", **bearer(test_key))
    assert response.status_code == 401
    assert response.json()["code"] == "environment_mismatch"
    assert "test key" in response.json()["detail"] and "live mode" in response.json()["detail"]
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert bcrypt_calls.checks == 0


def test_live_key_in_test_mode_is_environment_mismatch(client, settings, issue, owner, fast_bcrypt):
    _, live_key = issue(owner, ["read"], environment="live")
    _, test_key = issue(owner, ["read"], environment="test")
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "API_MODE": "test"}
    response = client.get("/api/agents", **bearer(live_key))
    assert response.status_code == 401 and response.json()["code"] == "environment_mismatch"
    assert client.get("/api/agents", **bearer(test_key)).status_code == 200


def test_expired_key_is_refused_even_when_cached(issue, owner, fast_bcrypt, bcrypt_calls,
                                                 django_assert_num_queries, client):
    start = clock.now()
    with clock.frozen(start) as frozen:
        _, plaintext = issue(owner, ["read"], expires_at=start + dt.timedelta(hours=1))
        assert client.get("/api/agents", **bearer(plaintext)).status_code == 200
        assert _entry(plaintext) is not None
        frozen.advance(minutes=59, seconds=59)
        authenticate_key(plaintext)
        frozen.advance(seconds=1)
        # the cached entry itself says it has expired
        with django_assert_num_queries(0), pytest.raises(InvalidApiKey, match="expired"):
            authenticate_key(plaintext)
        response = client.get("/api/agents", **bearer(plaintext))
        assert response.status_code == 401 and response.json()["code"] == "invalid_api_key"
        caches[app_settings.REDIS_CACHE_ALIAS].clear()
        clear_local()  # both cache levels
        with pytest.raises(InvalidApiKey, match="expired"):  # and cold, from the row
            authenticate_key(plaintext)
    assert bcrypt_calls.checks == 2


def test_revoked_key_is_refused_on_the_very_next_request(client, issue, owner, fast_bcrypt, bcrypt_calls):
    key, plaintext = issue(owner, ["read"])
    assert client.get("/api/agents", **bearer(plaintext)).status_code == 200
    assert client.get("/api/agents", **bearer(plaintext)).status_code == 200
    assert _entry(plaintext) is not None
    revoke_api_key(key=key)
    assert _entry(plaintext) is None  # deleted synchronously, before revoke returned
    response = client.get("/api/agents", **bearer(plaintext))
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_api_key"
    key.refresh_from_db()
    assert key.revoked_at is not None


@pytest.mark.django_db(transaction=True)
def test_verifier_that_gets_the_lock_just_after_another_finished_does_not_hash_again(issue, owner, fast_bcrypt,
                                                                                     bcrypt_calls, monkeypatch):
    """Interleaving: this request misses the cache, then another verifier completes (hash, cache, unlock)
    before this one takes the single-flight lock. Taking the lock must re-check the cache, not hash again."""
    _, plaintext = issue(owner, ["read"])
    cache = strict(_cache())  # the object verification calls (django-redis: its raising client); per thread
    real_add = cache.add
    done = []

    def add(key, *args, **kwargs):
        if key.startswith("twig:ak:l:") and not done:
            def other() -> None:
                try:
                    done.append(authenticate_key(plaintext))
                finally:
                    connection.close()

            thread = threading.Thread(target=other)
            thread.start()
            thread.join(10)
        return real_add(key, *args, **kwargs)

    monkeypatch.setattr(cache, "add", add)
    principal = authenticate_key(plaintext)
    assert done and done[0] == principal
    assert bcrypt_calls.checks == 1
