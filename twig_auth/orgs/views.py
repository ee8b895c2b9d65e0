"""Choose or switch the active organization."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from twig_auth.exceptions import PermissionDenied
from twig_auth.orgs.active import current_membership, memberships_of, switch_org
from twig_auth.passwords.views import safe_next


@login_required
@require_http_methods(["GET", "POST"])
def choose_org(request: HttpRequest) -> HttpResponse:
    memberships = memberships_of(request.user)
    if request.method == "POST":
        try:
            membership = switch_org(request, request.POST.get("org", ""))
        except PermissionDenied as exc:
            messages.error(request, exc.detail)
            return render(request, "twig_auth/orgs/choose.html",
                          {"memberships": memberships, "next": safe_next(request, "")}, status=403)
        messages.success(request, f"You are now working in {membership.org.name}.")
        return HttpResponseRedirect(safe_next(request))
    return render(request, "twig_auth/orgs/choose.html", {
        "memberships": memberships, "current": current_membership(request), "next": safe_next(request, "")})
