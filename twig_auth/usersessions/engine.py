"""A Django session engine backed by :class:`UserSession` rows, cached, with revocation.

Set ``SESSION_ENGINE = "twig_auth.usersessions.engine"`` and use
:class:`twig_auth.usersessions.middleware.TwigSessionMiddleware` instead of Django's; the cookie then
carries a signed JWT naming the record rather than the bare key. Everything Django expects from a
session (auth, admin, messages, CSRF, password-reset tokens) works unchanged.

Reads come from the cache (one round trip) and fall back to one indexed query. ``delete`` (Django's
``logout``/``flush``) revokes the record instead of deleting it, so a copied cookie is refused afterwards.

When Redis is unreachable (:mod:`twig_auth.core.outage`) every read and write goes to the row, so sessions
keep working and a revoked one stays refused. A revocation that could not delete the cached copy is
applied by :func:`reapply_since` when Redis answers again.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.base import CreateError, SessionBase
from django.core.cache import caches
from django.db import IntegrityError, transaction
from django.db.models import Q

from twig_auth.conf import app_settings
from twig_auth.core import clock, outage
from twig_auth.core.cache import UNAVAILABLE, attempt, strict
from twig_auth.usersessions import cookie
from twig_auth.usersessions.models import UserSession

CACHE_PREFIX = "twig:ses:"
ORG_KEY = "twig_org_id"


def _cache() -> Any:
    return strict(caches[app_settings.REDIS_CACHE_ALIAS])


def _cache_get(key: str) -> Any:
    """The cached copy, or None when there is none or Redis is unreachable (then the row is read)."""
    value = attempt("session read", _cache().get, key)
    return None if value is UNAVAILABLE else value


def _cache_set(key: str, value: Any, timeout: int) -> None:
    attempt("session write", _cache().set, key, value, timeout=timeout)


def cache_key(session_key: str) -> str:
    return CACHE_PREFIX + session_key


def forget(session_key: str) -> None:
    """Drop the cached copy of a session so the next request reads the (revoked) row. Never raises because of
    Redis: the row is revoked already, and :func:`reapply_since` drops the copy once Redis is back."""
    attempt("session revocation", _cache().delete, cache_key(session_key))


def default_timeout() -> int:
    return app_settings.SESSION_TIMEOUT


def timeout_for(org_id: Any) -> int:
    from twig_auth.usersessions.policy import session_policy

    return int(session_policy(org_id)["timeout"])


class SessionStore(SessionBase):
    """Session data in ``twig_sessions``; ``meta`` holds the record's user, org, IP and times."""

    def __init__(self, session_key: str | None = None) -> None:
        if cookie.looks_signed(session_key):  # a cookie value (e.g. from Django's test client)
            session_key = cookie.read(session_key)[0]
        super().__init__(session_key)
        self.meta: dict[str, Any] | None = None
        self.request_meta: dict[str, str] = {}
        self._cookie: tuple[str, str] | None = None

    @property
    def record_key(self) -> str | None:
        """The key of the ``UserSession`` row (never sent to the browser as such)."""
        return self._session_key

    @property  # type: ignore[override]
    def session_key(self) -> str | None:
        """What Django puts in the cookie: the signed JWT naming the record."""
        key = self._session_key
        if key is None:
            return None
        if self._cookie is None or self._cookie[0] != key:
            self._cookie = (key, cookie.issue(key, default_timeout())[0])
        return self._cookie[1]

    # --- reading -------------------------------------------------------------------------------------
    def load(self) -> dict[str, Any]:
        key = self._session_key
        if key is None:
            return {}
        cached = _cache_get(cache_key(key))
        if cached is None:
            row = UserSession.objects.filter(pk=key).first()
            if row is None:
                self._session_key = None
                return {}
            cached = {"data": row.data, "meta": _meta_of(row)}
            if row.revoked_at is None:
                _cache_set(cache_key(key), cached, _ttl(cached["meta"]))
        meta = cached["meta"]
        if meta["revoked"] or meta["expires_at"] <= clock.now().timestamp():
            self._session_key = None
            self.meta = None
            return {}
        self.meta = meta
        return dict(cached["data"])

    def exists(self, session_key: str) -> bool:
        return UserSession.objects.filter(pk=session_key).exists()

    # --- writing -------------------------------------------------------------------------------------
    def create(self) -> None:
        while True:
            self._session_key = self._get_new_session_key()
            try:
                self.save(must_create=True)
            except CreateError:
                continue
            self.modified = True
            return

    def save(self, must_create: bool = False) -> None:
        if self._session_key is None:
            return self.create()
        data = self._get_session(no_load=must_create)
        now = clock.now()
        user_id = data.get(SESSION_KEY)
        org_id = data.get(ORG_KEY)
        fields = {"data": data, "user_id": user_id, "org_id": org_id, "mfa_used": bool(data.get("twig_mfa_used"))}
        if must_create or self.meta is None:
            fields.update(created_at=now, last_seen_at=now, expires_at=now + dt.timedelta(seconds=default_timeout()),
                          ip=self.request_meta.get("ip") or None,
                          user_agent=self.request_meta.get("user_agent", "")[:512],
                          device_label=self.request_meta.get("device", "")[:120])
        if must_create:
            try:
                with transaction.atomic():
                    row = UserSession.objects.create(session_key=self._session_key, **fields)
            except IntegrityError as exc:
                raise CreateError from exc
        else:
            if self.meta is not None and self.meta.get("user_id") != user_id and user_id is not None:
                # a login on this session: record where it happened
                fields.update(ip=self.request_meta.get("ip") or None,
                              user_agent=self.request_meta.get("user_agent", "")[:512],
                              device_label=self.request_meta.get("device", "")[:120], last_seen_at=now)
            if self.meta is not None and (self.meta.get("user_id"), self.meta.get("org_id")) != (user_id, org_id):
                # signed in, or switched org: the org's policy sets the lifetime from now
                fields["expires_at"] = now + dt.timedelta(seconds=timeout_for(org_id))
            updated = UserSession.objects.filter(pk=self._session_key, revoked_at__isnull=True).update(**fields)
            if not updated:
                if self.meta is None and not UserSession.objects.filter(pk=self._session_key).exists():
                    return self.create()  # an unknown key: start a fresh record (never reuse a revoked one)
                self._session_key = None
                return None
            row = UserSession.objects.get(pk=self._session_key)
        self.meta = _meta_of(row)
        _cache_set(cache_key(self._session_key), {"data": data, "meta": self.meta}, _ttl(self.meta))
        return None

    def delete(self, session_key: str | None = None) -> None:
        key = session_key or self._session_key
        if cookie.looks_signed(key):
            key = cookie.read(key)[0]
        if key is None:
            return
        UserSession.objects.filter(pk=key, revoked_at__isnull=True).update(revoked_at=clock.now(),
                                                                           revoke_reason="logout")
        forget(key)

    def touch(self, *, renew: bool, timeout: int) -> None:
        """Record activity: at most one database write per ``SESSION_ACTIVITY_WRITE_SECONDS``."""
        if self._session_key is None or self.meta is None:
            return
        now = clock.now().timestamp()
        if now - self.meta["last_seen_at"] < app_settings.SESSION_ACTIVITY_WRITE_SECONDS:
            return
        moment = clock.now()
        update: dict[str, Any] = {"last_seen_at": moment}
        if renew:
            update["expires_at"] = moment + dt.timedelta(seconds=timeout)
        UserSession.objects.filter(pk=self._session_key, revoked_at__isnull=True).update(**update)
        self.meta = {**self.meta, "last_seen_at": now,
                     "expires_at": update["expires_at"].timestamp() if renew else self.meta["expires_at"]}
        _cache_set(cache_key(self._session_key), {"data": self._get_session(), "meta": self.meta}, _ttl(self.meta))

    @classmethod
    def clear_expired(cls) -> None:
        cutoff = clock.now() - dt.timedelta(days=30)
        UserSession.objects.filter(expires_at__lt=cutoff).delete()
        UserSession.objects.filter(revoked_at__lt=cutoff).delete()


def _meta_of(row: UserSession) -> dict[str, Any]:
    return {"user_id": row.user_id, "org_id": row.org_id, "ip": row.ip, "created_at": row.created_at.timestamp(),
            "last_seen_at": row.last_seen_at.timestamp(), "expires_at": row.expires_at.timestamp(),
            "revoked": row.revoked_at is not None, "mfa_used": row.mfa_used}


def reapply_since(started: float) -> None:
    """Drop the cached copies of sessions revoked or written since ``started`` (an outage's start, Unix
    time): their rows changed while the copies could not be updated."""
    since = outage.changed_since(started)
    keys = list(UserSession.objects.filter(Q(revoked_at__gte=since) | Q(last_seen_at__gte=since))
                .values_list("session_key", flat=True))
    cache = _cache()
    for start in range(0, len(keys), 500):
        cache.delete_many([cache_key(k) for k in keys[start:start + 500]])


outage.on_recovery(reapply_since)


def _ttl(meta: dict[str, Any]) -> int:
    return max(1, min(3600, int(meta["expires_at"] - clock.now().timestamp())))
