"""Second-factor requirements of OWASP ASVS 4.0.3 (V2.2.2, V2.7.1, V4.3.1) that no other test proves;
docs/security.md cites each test by name."""

from __future__ import annotations

import datetime as dt
from typing import Any

from twig_auth.core import clock
from twig_auth.mfa import enforcement


def test_the_authenticator_app_is_offered_first_and_recommended_over_sms(owner: Any, logged_in: Any) -> None:
    """V2.2.2, V2.7.1: the stronger factor comes first and is recommended; SMS is a choice, never a default."""
    body = logged_in(owner.user).get("/settings/mfa/").content.decode()
    app, sms = body.index("<h3>Authenticator app</h3>"), body.index("<h3>Text message</h3>")
    assert app < sms
    assert "Recommended." in body[app:sms] and "Recommended" not in body[sms:]


def test_the_django_admin_asks_for_the_second_factor_once_the_grace_period_is_over(owner: Any,
                                                                                  logged_in: Any) -> None:
    """V4.3.1: the org's MFA policy (admins by default) covers the Django admin like every other page."""
    user = owner.user
    user.is_staff = user.is_superuser = True
    user.save(update_fields=["is_staff", "is_superuser"])
    client = logged_in(user)
    assert client.get("/admin/").status_code == 200, "in the grace period the admin opens, with a reminder"

    type(owner).objects.filter(pk=owner.pk).update(mfa_required_since=clock.now() - dt.timedelta(days=7, minutes=1))
    enforcement.forget_member(owner)
    for url in ("/admin/", "/admin/twig_auth/membership/", "/admin/twig_auth/auditevent/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/settings/mfa/?next=")
