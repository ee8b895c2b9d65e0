"""Client IP and user agent: the only place that reads them from a request.

Client IP rules (``TWIG_AUTH["TRUSTED_PROXIES"]``, docs/settings.md):

* ``None`` or ``0`` (default): the socket address ``REMOTE_ADDR``. ``X-Forwarded-For`` is never read, so a
  client that sends one changes nothing.
* An integer ``N``: ``N`` proxies stand in front of Django and each appends its peer to ``X-Forwarded-For``,
  so the client is the ``N``-th entry from the right. Only entries within those ``N`` were written by our
  proxies; anything further left is the client's own text and is never read. When the header is shorter
  than ``N`` (a request that skipped an outer proxy) the leftmost entry is used, the farthest hop known.
  An unusable entry at that position falls back one hop inwards at a time, ending at ``REMOTE_ADDR``.
* A list of CIDR ranges: the header is read only when ``REMOTE_ADDR`` is inside the ranges. It is walked
  from the right, skipping trusted proxies, and the first untrusted address is the client. An unusable
  entry stops the walk (what lies left of it cannot be trusted) and the last trusted hop is returned; when
  every hop is trusted, the leftmost one is.

Every result goes through :func:`twig_auth.netaccess.allowlist.parse_ip`: ports, ``[v6]`` brackets and
whitespace are removed, IPv4-mapped IPv6 becomes IPv4, and an invalid address never becomes the client
IP. Without any usable address the placeholder ``0.0.0.0`` is returned. The result is not memoized: it
is a few string operations, and a cached value could go stale when a test rewrites ``request.META``.
"""

from __future__ import annotations

from functools import lru_cache

from django.http import HttpRequest

from twig_auth.conf import app_settings
from twig_auth.netaccess.allowlist import Allowlist, compile_allowlist, normalize_ip

MAX_USER_AGENT = 512
MAX_FORWARDED_HOPS = 64  # entries read from the right of X-Forwarded-For in CIDR mode; the rest is ignored
UNKNOWN_IP = "0.0.0.0"  # noqa: S104  (placeholder for a missing or unusable address, never a bind address)


@lru_cache(maxsize=8)
def _trusted_networks(cidrs: tuple[str, ...]) -> Allowlist:
    return compile_allowlist(cidrs)


def _forwarded_for(request: HttpRequest, hops: int) -> list[str]:
    """The rightmost ``hops`` entries of X-Forwarded-For, nearest proxy last; empty entries kept in place."""
    header = request.META.get("HTTP_X_FORWARDED_FOR") or ""
    if not header.strip():
        return []
    return header.rsplit(",", hops)[-hops:]


def _peer(request: HttpRequest) -> str | None:
    return normalize_ip(request.META.get("REMOTE_ADDR"))


def _by_count(request: HttpRequest, count: int, peer: str | None) -> str | None:
    for entry in _forwarded_for(request, count):  # farthest hop first, then inwards
        ip = normalize_ip(entry)
        if ip is not None:
            return ip
    return peer


def _by_ranges(request: HttpRequest, trusted: Allowlist, peer: str | None) -> str | None:
    if peer is None or not trusted.allows(peer):
        return peer
    last = peer
    for entry in reversed(_forwarded_for(request, MAX_FORWARDED_HOPS)):
        ip = normalize_ip(entry)
        if ip is None:
            return last
        if not trusted.allows(ip):
            return ip
        last = ip
    return last


def client_ip(request: HttpRequest) -> str:
    """Return the client's IP address in canonical form; the rules are in this module's docstring."""
    peer = _peer(request)
    trusted = app_settings.TRUSTED_PROXIES
    if not trusted or isinstance(trusted, bool):
        ip = peer
    elif isinstance(trusted, int):
        ip = _by_count(request, trusted, peer)
    else:
        ip = _by_ranges(request, _trusted_networks(tuple(trusted)), peer)
    return ip or UNKNOWN_IP


def user_agent(request: HttpRequest) -> str:
    """Return the User-Agent header, cut to a storable length."""
    return (request.META.get("HTTP_USER_AGENT") or "")[:MAX_USER_AGENT]
