"""Fixture factories shared by the whole suite."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.cache import caches

from twig_auth.apikeys.usage import buffer as usage_buffer
from twig_auth.apikeys.verification import clear_local as clear_local_keys
from twig_auth.core import coalesce, outage
from twig_auth.core.redis import get_redis, redis_configured
from twig_auth.mfa import sms as sms_gateway
from twig_auth.orgs import services as org_services
from twig_auth.orgs.models import Membership, Organization
from twig_auth.ratelimit import bucket as rate_buckets
from twig_auth.usersessions.policy import forget_policies as forget_session_policies

PASSWORD = "Correct-Horse-9!"
_seq = itertools.count(1)


@pytest.fixture(autouse=True)
def _clean_stores(settings: Any) -> Iterator[None]:
    """Every test starts with empty caches and, on the Redis backend, an empty test database.

    API-key usage is flushed only when a test asks (``buffer.flush()``): a timed flush landing inside a
    slow test would add queries to a request whose query count that test asserts.
    """
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "API_KEY_USAGE_FLUSH_SECONDS": 3600}
    for alias in settings.CACHES:
        caches[alias].clear()
    clear_local_keys()
    coalesce.forget()
    forget_session_policies()
    sms_gateway.reset()
    rate_buckets.reset_local()
    outage.reset()
    if redis_configured():
        get_redis().flushdb()
    yield
    usage_buffer.take()  # usage of this test's keys must not leak into the next test or process exit


_hash_cache: dict[str, str] = {}


def _hashed(password: str) -> str:
    from django.contrib.auth.hashers import make_password

    if password not in _hash_cache:
        _hash_cache[password] = make_password(password)
    return _hash_cache[password]


@pytest.fixture
def make_user(db: None) -> Callable[..., Any]:
    from django.contrib.auth import get_user_model

    def make(email: str | None = None, password: str = PASSWORD, **extra: Any) -> Any:
        User = get_user_model()
        user = User(email=email or f"user{next(_seq)}@example.test", **extra)
        user.password = _hashed(password)
        user.save()
        return user

    return make


@pytest.fixture
def make_org(db: None) -> Callable[..., Organization]:
    def make(slug: str | None = None, plan: str = "enterprise", owner: Any = None, **kw: Any) -> Organization:
        slug = slug or f"org-{next(_seq)}"
        return org_services.create_organization(slug=slug, name=kw.get("name", slug.title()), plan=plan, owner=owner)

    return make


@pytest.fixture
def make_member(make_user: Callable[..., Any]) -> Callable[..., Membership]:
    def make(org: Organization, role: str = "user", email: str | None = None, **kw: Any) -> Membership:
        user = make_user(email=email, **kw)
        return org_services.add_member(org=org, user=user, role=role)

    return make


@pytest.fixture
def org(make_org: Callable[..., Organization]) -> Organization:
    return make_org("acme", plan="enterprise")


@pytest.fixture
def owner(org: Organization, make_member: Callable[..., Membership]) -> Membership:
    return make_member(org, "super_admin", email="owner@acme.test")


@pytest.fixture
def logged_in(client: Any) -> Callable[[Any], Any]:
    """Return a function that signs ``user`` into the Django test client (no password hashing)."""

    def login(user: Any) -> Any:
        client.force_login(user, backend="twig_auth.passwords.backends.EmailBackend")
        return client

    return login


def oathtool(secret_b32: str, at: float | None = None) -> str:
    """Return the TOTP code ``oathtool`` (Debian) computes for ``secret_b32`` now or at Unix time ``at``."""
    import datetime as dt
    import shutil
    import subprocess

    exe = shutil.which("oathtool")
    if exe is None:
        pytest.fail("oathtool is missing: apt-get install -y oathtool (scripts/test installs it).", pytrace=False)
    args = [exe, "--totp", "-b", secret_b32]
    if at is not None:
        args += ["--now", dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")]
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=10).stdout.strip()


@pytest.fixture
def totp_device(db: None) -> Callable[..., Any]:
    """Return ``make(user) -> (device, secret_b32)``: a confirmed authenticator-app device for ``user``."""
    from twig_auth.mfa import totp

    def make(user: Any, name: str = "Phone app") -> tuple[Any, str]:
        device = totp.new_device(user, name=name)
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        return device, totp.secret_b32(device)

    return make


@pytest.fixture
def stepped_up(client: Any) -> Callable[[], Any]:
    """Return a function that marks the test client's session as having passed a second factor just now."""
    from twig_auth.mfa import stepup

    def mark() -> Any:
        session = client.session
        stepup.mark_verified(session)
        session.save()
        return client

    return mark
