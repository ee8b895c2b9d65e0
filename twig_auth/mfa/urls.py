"""URLs of the two-factor pages. ``twig_auth.urls`` includes them at the root (they span /settings/, /mfa/ and
/login/)."""

from __future__ import annotations

from django.urls import path

from twig_auth.mfa import verify_views, views

urlpatterns = [
    path("settings/mfa/", views.overview, name="mfa"),
    path("settings/mfa/totp/", views.totp_setup, name="mfa_totp"),
    path("settings/mfa/sms/", views.sms_setup, name="mfa_sms"),
    path("settings/mfa/recovery/", views.recovery_codes, name="mfa_recovery"),
    path("settings/mfa/devices/<str:ref>/remove/", views.remove_device, name="mfa_remove"),
    path("mfa/verify/", verify_views.verify, name="mfa_verify"),
    path("login/verify/", verify_views.login_verify, name="login_mfa"),
]
