"""IP allowlists enforced: the one check every credential of an org passes (API key, access token, session).

A request is allowed when its client IP (:func:`twig_auth.core.http.client_ip`, the only source) is inside
the org's ``ipAllowlist`` *and* inside the key's own ``allowed_ips`` when the key has one. An empty list
allows everything.

Cost: the org list is read from :func:`twig_auth.orgs.policy.cached_effective` (per-process, 30 s) and
compiled once per version of that document, so the allowed path costs no SQL and no cache round trip
once warm. Propagation: a change saved on this worker applies here at once (the save drops the
per-process document, which invalidates the compiled list with it); other workers pick it up when their
cached document expires, within ``CACHE_SECONDS`` (30 s).

Each refusal is an ``IP_BLOCKED`` audit event, coalesced: at most one per (org, IP, credential) every
``COALESCE_SECONDS`` (a cache ``add``), so a client retrying in a loop cannot flood the audit table. Every
refusal is also a WARNING log line (never a secret: key ids and prefixes are public).
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from django.http import HttpRequest

from twig_auth.core import coalesce
from twig_auth.core.http import client_ip, user_agent
from twig_auth.exceptions import IpNotAllowed
from twig_auth.netaccess.allowlist import Allowlist, compile_allowlist, parse_network

logger = logging.getLogger("twig_auth.netaccess")

COALESCE_SECONDS = 60
CREDENTIALS = ("api_key", "access_token", "session")
NOTHING = Allowlist((), (), (), (), empty=False)  # refuses every address

# org id -> (the cached settings document it was compiled from, its compiled list or None for "no list")
_compiled: dict[Any, tuple[dict[str, Any], Allowlist | None]] = {}


def compile_stored(cidrs: Any) -> Allowlist | None:
    """Compile a stored list (``None`` for an empty one). Ranges are validated when saved; should a bad one
    be stored anyway, it is skipped and logged, and a list left with no usable range refuses everything
    rather than silently allowing all."""
    if not cidrs:
        return None
    good = []
    for item in cidrs:
        try:
            good.append(parse_network(item))
        except ValueError:
            logger.error("Ignoring an invalid stored IP allowlist range %r", str(item)[:60])
    return compile_allowlist(good) if good else NOTHING


def org_allowlist(org_id: Any) -> Allowlist | None:
    """Return the compiled IP allowlist of the org, or ``None`` when it has none (everyone allowed)."""
    from twig_auth.orgs.policy import cached_effective

    document = cached_effective(org_id)
    hit = _compiled.get(org_id)
    if hit is not None and hit[0] is document:
        return hit[1]
    allowlist = compile_stored(document.get("ipAllowlist"))
    _compiled[org_id] = (document, allowlist)
    return allowlist


@lru_cache(maxsize=1024)
def key_allowlist(cidrs: tuple[str, ...]) -> Allowlist | None:
    """Return the compiled list of an API key (``None`` for none); keys share compiled lists by value."""
    return compile_stored(cidrs)


def forget() -> None:
    """Drop the compiled lists of this process (tests; the org documents have their own cache)."""
    _compiled.clear()
    key_allowlist.cache_clear()
    coalesce.forget()


def check(request: HttpRequest, *, org_id: Any, credential: str, key_allowlist: Any = None, user_id: Any = None,
          key_id: str | None = None) -> None:
    """Raise :class:`IpNotAllowed` when the client IP is outside the org's list or the key's own list.

    ``credential`` is ``"api_key"``, ``"access_token"`` or ``"session"``; ``key_id`` is the key's public id
    (never its secret). A refusal is audited (coalesced) and logged before raising.
    """
    org_list = org_allowlist(org_id) if org_id else None
    own_list = key_allowlist_of(key_allowlist)
    if org_list is None and own_list is None:
        return
    ip = client_ip(request)
    if org_list is not None and not org_list.allows(ip):
        detail = f"Requests from {ip} are not allowed for this organization."
    elif own_list is not None and not own_list.allows(ip):
        detail = f"This API key does not accept requests from {ip}."
    else:
        return
    _blocked(request, ip=ip, org_id=org_id, credential=credential, user_id=user_id, key_id=key_id,
             by="api_key" if org_list is None or org_list.allows(ip) else "org")
    raise IpNotAllowed(detail)


def key_allowlist_of(cidrs: Any) -> Allowlist | None:
    if not cidrs:
        return None
    return key_allowlist(tuple(cidrs))


def _blocked(request: HttpRequest, *, ip: str, org_id: Any, credential: str, user_id: Any, key_id: str | None,
             by: str) -> None:
    path = request.path[:200]
    logger.warning("IP %s blocked by the %s allowlist: org=%s credential=%s user=%s key=%s %s %s",
                   ip, by, org_id, credential, user_id, key_id or "-", request.method, path)
    subject = key_id or f"user:{user_id}"
    if not coalesce.first_in_window(f"twig:ipb:{org_id}:{ip}:{credential}:{subject}", COALESCE_SECONDS,
                                    what="IP block coalescing"):
        return
    from django.contrib.auth import get_user_model

    from twig_auth.audit.events import Event
    from twig_auth.audit.services import record
    from twig_auth.core.context import RequestContext
    from twig_auth.orgs.models import Organization

    user = get_user_model()._default_manager.filter(pk=user_id).first() if user_id is not None else None
    details: dict[str, Any] = {"credential": credential, "blocked_by": by, "path": path,
                               "method": str(request.method)[:10]}
    if key_id:
        # The public key id, not the "twigsk_live_…" prefix: the audit redactor masks anything shaped like a key.
        details["key_id"] = key_id
    context = RequestContext(actor=user, ip=ip, user_agent=user_agent(request))
    record(Event.IP_BLOCKED, context=context, org=Organization.objects.filter(pk=org_id).first(), user=user,
           details=details)
