"""``TwigSessionMiddleware``: Django's session middleware with a signed, expiring JWT as the cookie.

The cookie ``twig_session`` holds ``{"sid": <record key>, "iat", "exp"}`` signed with HS256 under
``SESSION_SIGNING_KEYS`` (the first signs, all verify). It is re-issued silently when less than
``SESSION_RENEW_WITHIN_SECONDS`` of its life is left (if the org's policy renews on activity). A bad,
expired or foreign cookie is simply no session. The record behind it can be revoked at any time; with IP
binding on, a request from another IP ends the session.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_vary_headers

from twig_auth.core import clock
from twig_auth.core.http import client_ip, user_agent
from twig_auth.usersessions import cookie, policy
from twig_auth.usersessions.devices import device_label
from twig_auth.usersessions.engine import SessionStore


class TwigSessionMiddleware(SessionMiddleware):
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        super().__init__(get_response)
        self.SessionStore = SessionStore

    def process_request(self, request: HttpRequest) -> None:
        raw = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
        key, cookie_exp = cookie.read(raw)
        store = SessionStore(key)
        ip, agent = client_ip(request), user_agent(request)
        store.request_meta = {"ip": ip, "user_agent": agent, "device": device_label(agent)}
        request.session = store
        request._twig_cookie = (raw, key, cookie_exp)  # type: ignore[attr-defined]
        if key is not None:
            store._get_session()  # load now: revocation, expiry and IP binding are decided up front
            meta = store.meta
            if meta is not None and meta.get("user_id") is not None:
                rules = policy.session_policy(meta.get("org_id"))
                if rules["enforceIPBinding"] and meta.get("ip") and meta["ip"] != ip:
                    policy.end_session(store.record_key, reason="ip_changed", actor=None, ip=ip, agent=agent)
                    fresh = SessionStore(None)
                    fresh.request_meta = store.request_meta
                    request.session = fresh

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        session: Any = getattr(request, "session", None)
        if session is None:
            return response
        raw, key, cookie_exp = getattr(request, "_twig_cookie", (None, None, 0))
        name = settings.SESSION_COOKIE_NAME
        if session.is_empty():
            if raw:
                response.delete_cookie(name, path=settings.SESSION_COOKIE_PATH,
                                       domain=settings.SESSION_COOKIE_DOMAIN,
                                       samesite=settings.SESSION_COOKIE_SAMESITE)
                patch_vary_headers(response, ("Cookie",))
            return response
        if session.accessed:
            patch_vary_headers(response, ("Cookie",))
        if response.status_code >= 500:
            return response
        if session.modified:
            session.save()
        rules = policy.session_policy((session.meta or {}).get("org_id"))
        if not session.modified and session.meta is not None and session.meta.get("user_id") is not None:
            session.touch(renew=rules["renewOnActivity"], timeout=rules["timeout"])
        if session.record_key is None:
            return response
        left = cookie_exp - clock.now().timestamp()
        renew = key != session.record_key or (rules["renewOnActivity"]
                                                and left < _renew_within())
        if renew:
            value, _ = cookie.issue(session.record_key, rules["timeout"])
            response.set_cookie(name, value, max_age=rules["timeout"], path=settings.SESSION_COOKIE_PATH,
                                domain=settings.SESSION_COOKIE_DOMAIN,
                                secure=request.is_secure() or settings.SESSION_COOKIE_SECURE,
                                httponly=True, samesite=settings.SESSION_COOKIE_SAMESITE or "Lax")
        return response


def _renew_within() -> int:
    from twig_auth.conf import app_settings

    return app_settings.SESSION_RENEW_WITHIN_SECONDS
