"""The connectors' OAuth callback, ``/connectors/callback/`` (``twig_auth:connector_callback``).

Refused with the "Connection not completed" page (403) and ``CONNECTOR_CONNECT_FAILED``: a state this session
did not start (forged, replayed, or from another browser), a flow another user started, a flow older than ten
minutes. A provider's refusal (``error=access_denied``) and a failed code exchange go back to where the flow
started, with a message. Success stores the tokens and goes back there too.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from twig_auth.connectors import flow, services
from twig_auth.connectors.grants import GrantError, exchange_code, safe_error_code
from twig_auth.connectors.providers import get_provider
from twig_auth.core.context import RequestContext
from twig_auth.orgs.models import Membership

CODE_MAX = 4000


def _refused(request: HttpRequest, message: str, *, reason: str, pending: flow.PendingFlow | None = None,
             org: object = None) -> HttpResponse:
    services.connect_failed(org=org, provider=pending.provider if pending else "",
                            subject=pending.subject if pending else "", reason=reason,
                            context=RequestContext.from_request(request))
    return render(request, "twig_auth/connectors/failed.html", {"message": message}, status=403)


def _back(request: HttpRequest, pending: flow.PendingFlow, org: object, *, reason: str, message: str,
          error: str = "") -> HttpResponse:
    services.connect_failed(org=org, provider=pending.provider, subject=pending.subject, reason=reason, error=error,
                            context=RequestContext.from_request(request))
    messages.error(request, message)
    return HttpResponseRedirect(pending.return_to)


@never_cache
@login_required
@require_GET
def callback(request: HttpRequest) -> HttpResponse:
    pending = flow.take(request, request.GET.get("state"))
    if pending is None:
        return _refused(request, "This connection link is not valid: it was already used, has expired, or was "
                                 "started in another browser.", reason="state_mismatch")
    membership = (Membership.objects.active().select_related("org")
                  .filter(org_id=pending.org_id, user_id=request.user.pk).first())
    if pending.user_id != str(request.user.pk) or membership is None:
        return _refused(request, "This connection was started by someone else.", reason="wrong_user",
                        pending=pending, org=membership.org if membership else None)
    org = membership.org
    if pending.expired():
        return _refused(request, "This connection link has expired (it works for ten minutes).", reason="expired",
                        pending=pending, org=org)
    provider = get_provider(pending.provider)
    if provider is None or not provider.configured:
        return _back(request, pending, org, reason="not_configured",
                     message=f"{pending.provider} is not configured on this server any more.")
    error = request.GET.get("error")
    if error is not None:
        code = safe_error_code(error)
        if code == "access_denied":
            message = f"{provider.name} was not connected: access was not granted."
        else:
            message = f"{provider.name} was not connected: the provider answered “{code}”."
        return _back(request, pending, org, reason="access_denied" if code == "access_denied" else "provider_error",
                     message=message, error=code)
    code = request.GET.get("code") or ""
    if not code or len(code) > CODE_MAX:
        return _back(request, pending, org, reason="no_code",
                     message=f"{provider.name} was not connected: the provider sent no authorization code.")
    try:
        tokens = exchange_code(provider, code=code, redirect_uri=pending.redirect_uri, code_verifier=pending.verifier)
    except GrantError as exc:
        return _back(request, pending, org, reason=f"exchange_{exc.kind}", error=exc.error,
                     message=f"{provider.name} was not connected: {exc.reason}. Try again.")
    services.complete_connection(org=org, provider=provider, subject=pending.subject, tokens=tokens,
                                 context=RequestContext.from_request(request))
    messages.success(request, f"{provider.name} is connected.")
    return HttpResponseRedirect(pending.return_to)
