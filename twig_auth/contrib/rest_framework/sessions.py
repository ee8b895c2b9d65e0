"""``DELETE /api/auth/logout``: end the web session (record revoked, cookie cleared)."""

from __future__ import annotations

from django.contrib.auth import logout
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from twig_auth.contrib.rest_framework.parsers import JSONParser
from twig_auth.core.context import RequestContext
from twig_auth.orgs.active import current_membership
from twig_auth.passwords.services import record_logout


class LogoutView(APIView):
    """End the caller's web session. API keys and access tokens have no session: they get 204 too."""

    parser_classes = [JSONParser]
    permission_classes = [IsAuthenticated]
    mfa_enrollment_exempt = True  # signing out is always allowed
    ip_allowlist_exempt = True  # even from a network the org no longer allows

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request) -> Response:
        django_request = request._request
        if getattr(django_request, "session", None) is not None and django_request.session.get("_auth_user_id"):
            membership = current_membership(django_request)
            record_logout(user=request.user, org=membership.org if membership else None,
                          context=RequestContext.from_request(django_request, actor=request.user))
            logout(django_request)
        return Response(status=status.HTTP_204_NO_CONTENT)
