"""A test URLconf: the project's URLs plus one page that hands a given identity to the real login service, so
its tests run through the real middleware, sessions and pages without a protocol in front."""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from twig_auth.mfa.middleware import mfa_exempt
from twig_auth.sso.login import SsoIdentity, complete_sso_login
from twig_auth.sso.models import SsoConnection
from twig_project.urls import handler404, handler500  # noqa: F401
from twig_project.urls import urlpatterns as project_urls


@mfa_exempt
@csrf_exempt
def complete(request: HttpRequest, connection_id: str) -> HttpResponse:
    data = json.loads(request.body)
    identity = SsoIdentity(email=data["email"], subject=data.get("subject", data["email"]),
                           first_name=data.get("first_name", ""), last_name=data.get("last_name", ""),
                           groups=tuple(data.get("groups", ())), idp_mfa=bool(data.get("idp_mfa")))
    connection = SsoConnection.objects.select_related("org").get(pk=connection_id)
    return complete_sso_login(request, connection, identity, data.get("next", ""))


urlpatterns = [path("test-sso/<str:connection_id>/complete/", complete), *project_urls]
