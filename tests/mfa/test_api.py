"""The API side of MFA: ``otp`` on ``POST /api/auth/token``, enrollment enforcement for every credential,
and step-up for sensitive calls (org settings, admin-scope API keys)."""

from __future__ import annotations

import datetime as dt
import re
import time

import jwt as pyjwt
import pytest

from tests.conftest import PASSWORD, oathtool
from tests.tokens.conftest import assert_error, bearer, post_json
from twig_auth.apikeys.services import issue_api_key
from twig_auth.audit.models import AuditEvent
from twig_auth.core import clock
from twig_auth.mfa import services as mfa_services
from twig_auth.orgs.services import update_org_settings

GRACE_OVER = dt.timedelta(days=2)  # the admin fixture's org gives one day of grace


def token_request(client, email="owner@acme.test", **extra):
    return post_json(client, "/api/auth/token", {"email": email, "password": PASSWORD, **extra})


def claims(access_token: str) -> dict:
    return pyjwt.decode(access_token, options={"verify_signature": False})


# --- POST /api/auth/token with otp ----------------------------------------------------------------------


def test_member_with_an_app_must_send_otp_and_a_right_code_logs_in_with_mfa(client, owner, totp_device):
    _, secret = totp_device(owner.user)
    body = assert_error(token_request(client), 401, "mfa_required")
    assert body["methods"] == ["totp", "recovery"]
    assert not AuditEvent.objects.filter(event="LOGIN_SUCCESS").exists()

    response = token_request(client, otp=oathtool(secret))
    assert response.status_code == 200, response.content
    assert abs(claims(response.json()["access_token"])["mfa_at"] - time.time()) < 5
    login = AuditEvent.objects.get(event="LOGIN_SUCCESS")
    assert login.mfa_used is True and login.as_record()["mfaUsed"] is True and login.details["mfaMethod"] == "totp"


def test_wrong_or_replayed_otp_is_mfa_required_and_audited(client, owner, totp_device):
    _, secret = totp_device(owner.user)
    code = oathtool(secret)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    response = token_request(client, otp=wrong)
    assert_error(response, 401, "mfa_required")
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert AuditEvent.objects.filter(event="MFA_FAILURE", user=owner.user).count() == 1
    assert token_request(client, otp=code).status_code == 200
    assert_error(token_request(client, otp=code), 401, "mfa_required")  # a code works once
    assert AuditEvent.objects.filter(event="MFA_FAILURE", user=owner.user).count() == 2
    assert not any(code in str(e.details) or wrong in str(e.details) for e in AuditEvent.objects.all())


def test_too_many_wrong_codes_answer_429_with_retry_after(client, owner, totp_device, settings):
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "MFA_MAX_FAILURES": 3}
    _, secret = totp_device(owner.user)
    wrong = f"{(int(oathtool(secret)) + 7) % 1_000_000:06d}"
    for _ in range(3):
        assert_error(token_request(client, otp=wrong), 401, "mfa_required")
    response = token_request(client, otp=oathtool(secret))
    assert_error(response, 429, "rate_limit_exceeded")
    assert 0 < int(response["Retry-After"]) <= 900


def test_sms_only_member_is_texted_a_code_that_then_logs_in(client, owner, capfd):
    device = mfa_services.start_sms(user=owner.user, number="+14155552671", context=None)
    first = re.search(r"code is (\d{6})", capfd.readouterr().out).group(1)
    mfa_services.confirm_sms(user=owner.user, device_id=device.pk, code=first, context=_ctx(owner))
    with clock.frozen() as frozen:
        frozen.advance(seconds=60)  # past the resend wait
        body = assert_error(token_request(client), 401, "mfa_required")
        assert body["methods"] == ["sms", "recovery"] and "+1•••••2671" in body["detail"]
        out = capfd.readouterr().out
        assert "[sms to +14155552671]" in out
        code = re.search(r"code is (\d{6})", out).group(1)
        response = token_request(client, otp=code)
        assert response.status_code == 200, response.content
    assert AuditEvent.objects.get(event="LOGIN_SUCCESS").details["mfaMethod"] == "sms"


def test_a_recovery_code_works_once_as_otp(client, owner):
    device = mfa_services.start_totp(user=owner.user)
    from twig_auth.mfa import totp

    codes = mfa_services.confirm_totp(user=owner.user, device_id=device.pk, code=oathtool(totp.secret_b32(device)),
                                      context=_ctx(owner))
    assert codes and len(codes) == 10
    assert token_request(client, otp=codes[0].upper()).status_code == 200  # case and hyphen do not matter
    assert_error(token_request(client, otp=codes[0]), 401, "mfa_required")


def test_malformed_otp_is_invalid_not_a_crash(client, owner, totp_device):
    totp_device(owner.user)
    body = assert_error(token_request(client, otp=123456), 400, "invalid")
    assert "otp" in body["errors"]
    assert_error(token_request(client, otp="9" * 40), 400, "invalid")


def _ctx(membership):
    from twig_auth.core.context import RequestContext

    return RequestContext(actor=membership.user, ip="127.0.0.1")


# --- enforcement after the grace period -----------------------------------------------------------------


@pytest.fixture
def admin(org, make_member):
    update_org_settings(org=org, patch={"mfa": {"gracePeriodDays": 1}})
    return make_member(org, "admin", email="admin@acme.test")


def test_after_the_grace_period_every_credential_answers_mfa_enrollment_required(client, org, admin, make_member):
    plain = make_member(org, "user", email="plain@acme.test")
    key, plaintext = issue_api_key(creator=admin, name="ci", scopes=["read"], environment="live")
    access = token_request(client, "admin@acme.test").json()["access_token"]
    session_client = type(client)()
    session_client.force_login(admin.user, backend="twig_auth.passwords.backends.EmailBackend")
    with clock.frozen(clock.now() + GRACE_OVER):
        assert_error(client.get("/api/agents", **bearer(plaintext)), 403, "mfa_enrollment_required")
        assert_error(token_request(client, "admin@acme.test"), 403, "mfa_enrollment_required")
        assert_error(session_client.get("/api/agents"), 403, "mfa_enrollment_required")
        assert session_client.delete("/api/auth/logout").status_code == 204  # signing out is always allowed
        # a plain user is not covered by the default policy (admins only)
        assert token_request(client, "plain@acme.test").status_code == 200
        assert plain.role == "user"
    with clock.frozen(clock.now() + dt.timedelta(days=1) - dt.timedelta(minutes=1)):
        # the access token expired meanwhile; a fresh one in the last minute of grace still works
        fresh = token_request(client, "admin@acme.test").json()["access_token"]
        assert client.get("/api/agents", **bearer(fresh)).status_code == 200
    assert access


def test_enrolling_lifts_the_block_at_once(client, admin):
    key, plaintext = issue_api_key(creator=admin, name="ci", scopes=["read"], environment="live")
    with clock.frozen(clock.now() + GRACE_OVER):
        assert_error(client.get("/api/agents", **bearer(plaintext)), 403, "mfa_enrollment_required")
        device = mfa_services.start_totp(user=admin.user)
        from twig_auth.mfa import totp

        code = oathtool(totp.secret_b32(device), at=clock.now().timestamp())
        mfa_services.confirm_totp(user=admin.user, device_id=device.pk, code=code, context=_ctx(admin))
        assert client.get("/api/agents", **bearer(plaintext)).status_code == 200


# --- step-up for sensitive calls ------------------------------------------------------------------------


def test_org_settings_patch_needs_a_recent_second_factor_per_credential(client, owner, totp_device):
    _, secret = totp_device(owner.user)
    patch = {"timezone": "Europe/Berlin"}
    # a web session that never gave a code
    web = type(client)()
    web.force_login(owner.user, backend="twig_auth.passwords.backends.EmailBackend")
    body = assert_error(web.patch("/api/org/settings", patch, content_type="application/json"), 401, "mfa_required")
    assert body["step_up"] is True and "/mfa/verify/" in body["detail"]
    owner.org.refresh_from_db()
    assert owner.org.settings == {}

    pair = token_request(client, otp=oathtool(secret)).json()
    assert client.patch("/api/org/settings", patch, content_type="application/json",
                        **bearer(pair["access_token"])).status_code == 200
    refreshed = post_json(client, "/api/auth/token/refresh", {"refresh_token": pair["refresh_token"]}).json()
    assert "mfa_at" not in claims(refreshed["access_token"])
    assert_error(client.patch("/api/org/settings", patch, content_type="application/json",
                              **bearer(refreshed["access_token"])), 401, "mfa_required")
    with clock.frozen(clock.now() + dt.timedelta(minutes=6)):
        assert_error(client.patch("/api/org/settings", patch, content_type="application/json",
                                  **bearer(pair["access_token"])), 401, "mfa_required")
    _, admin_key = issue_api_key(creator=owner, name="ops", scopes=["admin"], environment="live")
    assert client.patch("/api/org/settings", {"timezone": "UTC"}, content_type="application/json",
                        **bearer(admin_key)).status_code == 200


def test_admin_scope_key_creation_needs_step_up_other_scopes_do_not(client, owner, totp_device):
    from twig_auth.apikeys.models import ApiKey

    _, secret = totp_device(owner.user)
    web = type(client)()
    web.force_login(owner.user, backend="twig_auth.passwords.backends.EmailBackend")
    read = post_json(web, "/api/api-keys", {"name": "r", "scopes": ["read"], "environment": "live"})
    assert read.status_code == 201
    body = assert_error(post_json(web, "/api/api-keys", {"name": "a", "scopes": ["admin"], "environment": "live"}),
                        401, "mfa_required")
    assert body["step_up"] is True
    assert not ApiKey.objects.filter(name="a").exists()
    access = token_request(client, otp=oathtool(secret)).json()["access_token"]
    created = post_json(client, "/api/api-keys", {"name": "a", "scopes": ["admin"], "environment": "live"},
                        **bearer(access))
    assert created.status_code == 201, created.content
    assert ApiKey.objects.get(name="a").scopes == ["admin"]


def test_a_token_issued_in_grace_is_refused_once_the_deadline_passes_unless_enrolled(client, admin):
    from twig_auth.mfa import totp

    deadline = admin.org.memberships.get(pk=admin.pk).mfa_required_since + dt.timedelta(days=1)
    with clock.frozen(deadline - dt.timedelta(minutes=30)) as frozen:
        access = token_request(client, "admin@acme.test").json()["access_token"]
        assert claims(access)["mfa_dl"] == int(deadline.timestamp())
        assert client.get("/api/agents", **bearer(access)).status_code == 200
        frozen.advance(minutes=31)
        assert_error(client.get("/api/agents", **bearer(access)), 403, "mfa_enrollment_required")
        device = mfa_services.start_totp(user=admin.user)
        mfa_services.confirm_totp(user=admin.user, device_id=device.pk, context=_ctx(admin),
                                  code=oathtool(totp.secret_b32(device), at=clock.now().timestamp()))
        assert client.get("/api/agents", **bearer(access)).status_code == 200  # enrolled: the same token works
