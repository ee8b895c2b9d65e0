"""Settings → Sessions: the signed-in user's live sessions, and an admin's view of a member's sessions.

Rows are named in the page by an opaque digest of the record key (never the key itself); a POST names the
row to end, and only rows of the user shown can match, so a forged or stale id is simply "not found".
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from twig_auth.apikeys.views import ago
from twig_auth.core import clock
from twig_auth.core.http import client_ip
from twig_auth.orgs.active import current_membership
from twig_auth.orgs.models import Membership
from twig_auth.orgs.roles import Role
from twig_auth.usersessions import policy
from twig_auth.usersessions.models import UserSession

TEMPLATES = "twig_auth/usersessions/"
MEMBERSHIP_ID_RE = re.compile(r"[0-9]{1,18}")
SID_RE = re.compile(r"[0-9a-f]{20}")


def public_id(record_key: str) -> str:
    """Return the id a page shows for a session: a digest that cannot be turned back into the key."""
    return hashlib.sha256(f"twig-session-row:{record_key}".encode()).hexdigest()[:20]


def _rows(user: Any, current: str | None) -> list[dict[str, Any]]:
    now = clock.now()
    rows = []
    for s in policy.live_sessions(user).order_by("-last_seen_at"):
        rows.append({"session": s, "id": public_id(s.session_key), "current": s.session_key == current,
                     "device": s.device_label or "Unknown device", "last_seen": ago(s.last_seen_at, now)})
    rows.sort(key=lambda r: not r["current"])  # this device first
    return rows


def _find(user: Any, sid: str) -> UserSession | None:
    if not SID_RE.fullmatch(sid):
        return None
    return next((s for s in policy.live_sessions(user) if public_id(s.session_key) == sid), None)


def _plural(n: int, word: str = "session") -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _end_one(request: HttpRequest, user: Any, target: str, current: str | None, *, reason: str,
             own_message: str, done: str) -> None:
    """End the session ``target`` of ``user`` (never the current one) and say what happened."""
    row = _find(user, target)
    if row is None:
        messages.error(request, "That session has already ended.")
    elif row.session_key == current:
        messages.error(request, own_message)
    else:
        policy.end_session(row.session_key, reason=reason, actor=request.user, ip=client_ip(request))
        messages.success(request, done.replace("{device}", row.device_label or "Unknown device"))


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def sessions(request: HttpRequest) -> HttpResponse:
    """List the user's live sessions; POST ``end=<id>`` ends one, ``end=others`` every other one."""
    current = getattr(request.session, "record_key", None)
    if request.method == "POST":
        target = request.POST.get("end", "")
        ip = client_ip(request)
        if target == "others":
            n = policy.end_user_sessions(request.user, reason="user_ended", keep=current, actor=request.user, ip=ip)
            messages.success(request, f"Signed out of {_plural(n, 'other session')}." if n else
                             "There were no other sessions to sign out.")
        else:
            _end_one(request, request.user, target, current, reason="user_ended",
                     own_message="Use “Sign out” in the account menu to end this session.",
                     done="Signed out “{device}”.")
        return HttpResponseRedirect(reverse("twig_auth:sessions"))
    membership = current_membership(request)
    is_admin = bool(membership and membership.has_role(Role.ADMIN))
    return render(request, TEMPLATES + "list.html", {
        "rows": _rows(request.user, current), "membership": membership, "is_admin": is_admin,
        "members": _members(membership) if is_admin else [],
    })


def _members(membership: Any) -> list[dict[str, Any]]:
    """The admin's org members (first 200) with their live session counts, for links to their pages."""
    members = list(Membership.objects.filter(org_id=membership.org_id).select_related("user")
                   .order_by("user__email")[:200])
    counts = dict(UserSession.objects.live(clock.now()).filter(user_id__in=[m.user_id for m in members])
                  .order_by().values_list("user_id").annotate(n=Count("pk")).values_list("user_id", "n"))
    return [{"membership": m, "count": counts.get(m.user_id, 0), "me": m.pk == membership.pk} for m in members]


def _member_or_404(mine: Membership, membership_id: str) -> Membership:
    """Return the member ``membership_id`` of the admin's org; 404 for malformed ids and other orgs."""
    if not MEMBERSHIP_ID_RE.fullmatch(membership_id):
        raise Http404("No such member.")
    member = Membership.objects.filter(pk=int(membership_id), org_id=mine.org_id).select_related("user", "org").first()
    if member is None:
        raise Http404("No such member.")
    return member


def _forbidden(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, TEMPLATES + "forbidden.html", {"message": message}, status=403)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def member_sessions(request: HttpRequest, membership_id: str) -> HttpResponse:
    """An org admin's view of one member's live sessions; POST ``end=<id>`` or ``end=all``."""
    mine = current_membership(request)
    if mine is None or not mine.has_role(Role.ADMIN):
        return _forbidden(request, "Only admins of the organization can manage other members’ sessions.")
    member = _member_or_404(mine, membership_id)
    if member.role == Role.SUPER_ADMIN and not mine.has_role(Role.SUPER_ADMIN):
        return _forbidden(request, "Only a super admin can manage a super admin’s sessions.")
    current = getattr(request.session, "record_key", None)
    here = reverse("twig_auth:member_sessions", args=[member.pk])
    if request.method == "POST":
        target = request.POST.get("end", "")
        ip = client_ip(request)
        if target == "all":
            # Signing a member out everywhere ends their API tokens too (not the admin's own, on their own page).
            n = policy.end_user_sessions(member.user, reason="admin_ended", keep=current, actor=request.user, ip=ip,
                                         revoke_tokens=member.user_id != request.user.pk)
            messages.success(request, f"Ended {_plural(n)} of {member.user.email}." if n else
                             f"{member.user.email} had no sessions to end.")
        else:
            _end_one(request, member.user, target, current, reason="admin_ended",
                     own_message="Use “Sign out” in the account menu to end your own session.",
                     done=f"Ended the session on “{{device}}” of {member.user.email}.")
        return HttpResponseRedirect(here)
    return render(request, TEMPLATES + "member.html", {
        "member": member, "membership": mine, "rows": _rows(member.user, current),
        "is_self": member.user_id == request.user.pk,
    })
