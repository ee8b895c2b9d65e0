"""``POST /api/auth/token``, ``/api/auth/token/refresh`` and ``/api/auth/token/revoke``. Thin: validate, call a
service, answer JSON. Open to anonymous callers, so throttled (:mod:`twig_auth.ratelimit.endpoints`): a token
request shares the login page's buckets (per IP and per ``email``) and, with ``otp``, the second-factor
buckets (per IP and per user); refresh and revoke are throttled per IP. Every answer to a POST carries the
``X-RateLimit-*`` headers of its binding bucket."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.views.decorators.debug import sensitive_variables
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from twig_auth.contrib.rest_framework.parsers import JSONParser
from twig_auth.core import clock
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import MfaRequired, MfaThrottled, PermissionDenied, SmsDeliveryFailed, SsoRequired
from twig_auth.mfa import enforcement
from twig_auth.mfa import services as mfa_services
from twig_auth.mfa.devices import RECOVERY, SMS, TOTP, has_mfa, has_totp, sms_devices
from twig_auth.orgs.models import Membership
from twig_auth.passwords import services as password_services
from twig_auth.ratelimit import endpoints
from twig_auth.ratelimit.bucket import BucketResult
from twig_auth.sso import enforcement as sso_enforcement
from twig_auth.tokens import services


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers, booleans and the like instead of turning them into strings."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class TokenRequest(serializers.Serializer[Any]):
    email = StrictCharField(max_length=254)
    password = StrictCharField(max_length=1024, trim_whitespace=False)
    otp = StrictCharField(max_length=16, required=False, allow_blank=True)
    org = StrictCharField(max_length=50, required=False, help_text="Slug of the org to act in (default: the first).")


class RefreshRequest(serializers.Serializer[Any]):
    refresh_token = StrictCharField(max_length=services.REFRESH_MAX_LENGTH)


class RevokeRequest(serializers.Serializer[Any]):
    token = StrictCharField(max_length=8192)
    token_type_hint = StrictCharField(max_length=32, required=False)


class TokenPair(serializers.Serializer[Any]):
    access_token = serializers.CharField()
    refresh_token = serializers.CharField()
    token_type = serializers.CharField()
    expires_in = serializers.IntegerField()


class _TokenView(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]
    serializer_class: type[serializers.Serializer[Any]]
    throttle_group = endpoints.TOKEN_REFRESH
    rate_limit: BucketResult | None = None  # the binding bucket of this request, for the headers

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if request.method == "POST":
            self.take(self.throttle_group, self.throttle(request))

    def throttle(self, request: Request) -> BucketResult:
        """Take this POST's token (before the body is validated, so malformed posts count too)."""
        return endpoints.check_refresh(request._request)

    def take(self, group: str, result: BucketResult) -> None:
        """Remember ``result`` for the headers; raise 429 ``rate_limit_exceeded`` when it refused."""
        self.rate_limit = endpoints.binding(self.rate_limit, result)
        if not result.allowed:
            raise endpoints.refused(group, result)

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        return endpoints.apply_headers(super().finalize_response(request, response, *args, **kwargs), self.rate_limit)

    def validated(self, request: Request) -> dict[str, Any]:
        serializer = self.serializer_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def context(self, request: Request, actor: Any = None) -> RequestContext:
        return RequestContext.from_request(request._request, actor=actor)


def choose_membership(user: Any, slug: str | None) -> Membership:
    """Return the membership a token acts as: the org named by ``slug``, else the user's first membership that
    is not deactivated. A deactivated membership never gets a token."""
    memberships = Membership.objects.filter(user=user).select_related("org").order_by("created_at", "pk")
    if slug:
        membership = memberships.filter(org__slug=slug).first()
        if membership is None:
            raise PermissionDenied("You are not a member of that organization.")
        if membership.is_deactivated:
            raise PermissionDenied("Your access to that organization is deactivated; ask one of its admins to "
                                   "reactivate it.")
        return membership
    membership = memberships.active().first()
    if membership is None:
        raise PermissionDenied("You are not a member of any organization." if not memberships.exists() else
                               "Your access to your organizations is deactivated; ask an admin to reactivate it.")
    return membership


class TokenObtainView(_TokenView):
    """Exchange email and password for an access token (1 hour) and a refresh token (30 days)."""

    serializer_class = TokenRequest
    throttle_group = endpoints.LOGIN

    def throttle(self, request: Request) -> BucketResult:
        try:
            body = request.data
        except Exception:  # unreadable body (not JSON, too large): count it per IP, then answer the error
            self.take(self.throttle_group, endpoints.check_login(request._request, None))
            raise
        return endpoints.check_login(request._request, body.get("email") if isinstance(body, Mapping) else None)

    extra_error_statuses = {"401": "invalid_credentials, or mfa_required (send otp).",
                            "403": "account_locked (`Retry-After`), sso_required, permission_denied (not a member "
                                   "of that organization) or mfa_enrollment_required.",
                            "503": "sms_delivery_failed: the text with a login code could not be sent."}

    @extend_schema(request=TokenRequest, responses=TokenPair)
    @sensitive_variables("data")
    def post(self, request: Request) -> Response:
        data = self.validated(request)
        context = self.context(request)
        user = password_services.authenticate_password(email=data["email"], password=data["password"],
                                                       context=context)
        membership = choose_membership(user, data.get("org"))
        try:  # after the password (see twig_auth.sso.enforcement): no answer reveals membership without it
            verdict = sso_enforcement.check_password_login(membership)
        except SsoRequired as exc:
            password_services.record_sso_required(user=user, org=membership.org, context=context)
            if "sso_url" in exc.extra:
                exc.extra["sso_url"] = request.build_absolute_uri(str(exc.extra["sso_url"]))
            raise
        context = self.context(request, actor=user)
        mfa_method = second_factor(user, data.get("otp") or "", context, before_verify=lambda: self.take(
            endpoints.MFA, endpoints.check_code(request._request, user.pk)))
        if mfa_method is None:
            enforcement.check(user.pk, membership.org_id, membership.role)
        mfa_at = int(clock.now().timestamp()) if mfa_method else None
        pair = services.issue_tokens(user=user, membership=membership, context=context, mfa_at=mfa_at)
        password_services.record_login(user=user, org=membership.org, context=context, method="token",
                                       mfa_used=mfa_method is not None, mfa_method=mfa_method,
                                       details={"method": "token", "breakGlass": True} if verdict.break_glass
                                       else None)
        return Response(pair)


@sensitive_variables("otp")
def second_factor(user: Any, otp: str, context: RequestContext,
                  before_verify: Callable[[], None] | None = None) -> str | None:
    """Return the method of a right ``otp`` for a user with MFA, None for a user without; raise otherwise.

    A missing ``otp`` answers 401 ``mfa_required`` naming the methods the user has; a user whose only
    factor is SMS is texted a code at that moment (if the resend wait allows). ``before_verify`` runs just
    before an ``otp`` is checked (the second-factor throttle, which may raise).
    """
    if not has_mfa(user):
        return None
    methods = [TOTP] if has_totp(user) else []
    phones = sms_devices(user)
    methods += [SMS] if phones else []
    methods.append(RECOVERY)
    if otp.strip():
        if before_verify is not None:
            before_verify()
        return mfa_services.verify(user=user, code=otp, context=context, purpose="login")
    detail = MfaRequired.default_detail
    if phones and TOTP not in methods:
        try:
            mfa_services.send_login_sms(user=user)
            detail = f"We sent a code to {phones[0].masked_number}. Send it as otp."
        except (MfaThrottled, SmsDeliveryFailed) as exc:
            detail = f"{exc.detail} Send a code you already have as otp."
    raise MfaRequired(detail, methods=methods)


class TokenRefreshView(_TokenView):
    """Rotate a refresh token: the presented one is consumed and a new pair returned."""

    serializer_class = RefreshRequest
    extra_error_statuses = {"401": "invalid_token, token_expired or token_reused (the family is revoked)."}

    @extend_schema(request=RefreshRequest, responses=TokenPair)
    @sensitive_variables("data")
    def post(self, request: Request) -> Response:
        data = self.validated(request)
        return Response(services.refresh(refresh_token=data["refresh_token"], context=self.context(request)))


class TokenRevokeView(_TokenView):
    """Revoke a refresh or access token and its family (RFC 7009): always 200, unknown tokens included."""

    serializer_class = RevokeRequest

    @extend_schema(request=RevokeRequest, responses=OpenApiResponse(
        {"type": "object", "maxProperties": 0},
        description="Always {}, whether the token was known or not (RFC 7009)."))
    @sensitive_variables("data")
    def post(self, request: Request) -> Response:
        data = self.validated(request)
        services.revoke(token=data["token"], context=self.context(request))
        return Response({})
