"""503 ``service_unavailable`` while the database cannot be reached, instead of a 500 per request.

A database that is down, restarting or refusing connections is an outage, not a bug: the client should be
told to come back (``Retry-After``), and the operator should read one warning, not a traceback per request.
:func:`is_database_unavailable` tells such errors from the others; a programming error that happens to be
an ``OperationalError`` (SQLite's "no such table") stays a 500.

Three places answer it:

* the DRF exception handler (``twig_auth.contrib.rest_framework.exceptions``) for errors in API views,
  their authentication and permission checks: ``{"detail", "code": "service_unavailable", "retry_after"}``;
* :class:`DatabaseUnavailableMiddleware`'s ``process_exception`` for errors in other views (pages);
* the same middleware for errors raised by *other middleware* (loading the session, the signed-in user in
  the MFA or IP gates), which Django has already turned into a 500 response by the time any middleware
  sees it: a ``got_request_exception`` receiver marks the request and the middleware swaps the 500 for
  the 503. A filter on the ``django.request`` logger drops Django's error line (and traceback) for the
  500 it swapped; the rate-limited warning below stands for it.

API requests get JSON, pages a standalone 503 page (no database, no context processors). Put the
middleware right after ``SecurityMiddleware`` (before the session middleware) so that it wraps everything
that may touch the database.
"""

from __future__ import annotations

import logging
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from django.core.signals import got_request_exception
from django.db import utils as db_utils
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.urls import Resolver404, resolve
from django.utils.http import url_has_allowed_host_and_scheme

from twig_auth import exceptions as domain
from twig_auth.conf import app_settings
from twig_auth.core.middleware import is_api_view

logger = logging.getLogger(__name__)

# PostgreSQL SQLSTATEs of an unreachable or overwhelmed server: class 08 (connection exception), class 53
# (insufficient resources: too many connections, out of memory, disk full), 57P01-57P05 (admin or crash
# shutdown, "the database system is starting up", database dropped, idle session timeout).
_PG_UNAVAILABLE = ("08", "53", "57P")
# SQLite primary result codes of a store that is busy or cannot be opened or written, as opposed to
# SQLITE_ERROR (1), which is what a missing table or a syntax error gives.
_SQLITE_UNAVAILABLE = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR,
                                 sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN})
WARN_EVERY_SECONDS = 30.0
_MARK = "_twig_database_unavailable"


def is_database_unavailable(exc: BaseException | None) -> bool:
    """True when ``exc`` (or what it was raised from) says the database cannot be reached or is overwhelmed."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, db_utils.InterfaceError):  # "connection already closed"
            return True
        if isinstance(exc, db_utils.OperationalError):
            return _driver_says_unavailable(exc.__cause__)
        if isinstance(exc, db_utils.DatabaseError):
            return False  # integrity, data, programming errors: the request's fault or ours, never an outage
        exc = exc.__cause__ or exc.__context__
    return False


def _driver_says_unavailable(driver: BaseException | None) -> bool:
    if isinstance(driver, sqlite3.Error):
        code = getattr(driver, "sqlite_errorcode", None)
        return code is not None and (code & 0xFF) in _SQLITE_UNAVAILABLE
    if driver is not None and type(driver).__module__.split(".")[0] in ("psycopg", "psycopg2"):
        state = getattr(driver, "sqlstate", None) or getattr(driver, "pgcode", None)
        return state is None or state.startswith(_PG_UNAVAILABLE)  # None: no server answer (refused, reset)
    return True  # another driver's OperationalError: per DB-API, "not under the control of the programmer"


def retry_after() -> int:
    return int(app_settings.DATABASE_RETRY_AFTER_SECONDS)


class _Warner:
    """One warning per ``WARN_EVERY_SECONDS`` and process, with how many 503s were answered since the last."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.monotonic = monotonic
        self._lock = threading.Lock()
        self._next = 0.0
        self._count = 0

    def report(self, exc: BaseException | None, where: str) -> None:
        with self._lock:
            self._count += 1
            now = self.monotonic()
            if now < self._next:
                return
            self._next = now + WARN_EVERY_SECONDS
            count, self._count = self._count, 0
        # Class and SQLSTATE only: a driver's message may carry the host, user or database name.
        cause = getattr(exc, "__cause__", None) or exc
        state = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None) or "-"
        logger.warning("The database is unavailable (%s, SQLSTATE %s, in %s); answered 503 service_unavailable "
                       "%d time(s) since the last warning", type(cause).__name__, state, where, count)


_warner = _Warner()


def service_unavailable(exc: BaseException | None, where: str) -> domain.ServiceUnavailable:
    """Report the outage (rate-limited warning) and return the domain error the API answers with."""
    _warner.report(exc, where)
    return domain.ServiceUnavailable(retry_after())


def _match(request: HttpRequest) -> Any:
    match = getattr(request, "resolver_match", None)
    if match is None:
        try:
            match = resolve(request.path_info)
        except Resolver404:
            match = None
    return match


def wants_json(request: HttpRequest) -> bool:
    """An API request: routed to a DRF view, carrying an ``Authorization`` header, or asking for JSON only."""
    match = _match(request)
    if match is not None and is_api_view(match.func):
        return True
    if request.headers.get("Authorization"):
        return True
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


def unavailable_response(request: HttpRequest, exc: BaseException | None = None) -> HttpResponse:
    """The 503 answer: JSON for API requests, the standalone page otherwise; ``Retry-After`` on both."""
    match = _match(request)  # the view's name, not the path: a path may hold a reset token
    error = service_unavailable(exc, (match.view_name or match.route) if match is not None else "an unknown URL")
    response: HttpResponse
    if wants_json(request):
        response = JsonResponse({"detail": error.detail, "code": error.code, "retry_after": error.retry_after},
                                status=503)
    else:
        again = request.get_full_path()
        if not url_has_allowed_host_and_scheme(again, allowed_hosts=None):  # "//evil.test/": no foreign link
            again = "/"
        html = render_to_string("twig_auth/unavailable.html", {"retry_after": error.retry_after, "again": again})
        response = HttpResponse(html, status=503)
    response["Retry-After"] = str(error.retry_after)
    response["Cache-Control"] = "no-store"
    response._has_been_logged = True  # type: ignore[attr-defined]  # the rate-limited warning stands for it
    return response


class _SwappedFilter(logging.Filter):
    """Drop ``django.request``'s "Internal Server Error" record of a request whose 500 becomes our 503."""

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(getattr(record, "request", None), _MARK, None) is None


_swapped_filter = _SwappedFilter()


def _mark_request(sender: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
    """``got_request_exception``: remember that the uncaught error of this request was a database outage."""
    exc = sys.exc_info()[1]
    if request is not None and is_database_unavailable(exc):
        setattr(request, _MARK, exc)


class DatabaseUnavailableMiddleware:
    """Answer 503 ``service_unavailable`` (JSON or page, with ``Retry-After``) when the database is down."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        got_request_exception.connect(_mark_request, dispatch_uid="twig_auth.database_unavailable")
        request_logger = logging.getLogger("django.request")
        if _swapped_filter not in request_logger.filters:
            request_logger.addFilter(_swapped_filter)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        exc = getattr(request, _MARK, None)
        if response.status_code == 500 and exc is not None:
            response.close()
            return unavailable_response(request, exc)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if is_database_unavailable(exception):
            return unavailable_response(request, exception)
        return None
