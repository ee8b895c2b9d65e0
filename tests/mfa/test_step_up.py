"""Sensitive page actions need a second factor verified in the last 5 minutes: creating an API key with the
``admin`` scope, changing the org's security settings, changing a member's role in the Django admin.

Each is driven through the Django test client with real oathtool codes: the prompt appears instead of the
action and nothing is written; a wrong code is a 400 (audited ``MFA_FAILURE``); the prompt's own hidden
fields, re-posted with the right code, complete the action; no prompt for 5 minutes, a prompt again after.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from tests.conftest import oathtool
from tests.mfa.prompt import replayed
from tests.pages.conftest import field_errors, text
from twig_auth.apikeys.models import ApiKey
from twig_auth.audit.models import AuditEvent
from twig_auth.core import clock
from twig_auth.orgs.models import Membership, Organization

CODE = "twig_step_up_code"
API_KEYS = "/settings/api-keys/"
SECURITY = "/settings/security/"
KEY_RE = re.compile(r"twigsk_(?:live|test)_[0-9A-Za-z]{50}")
SECURITY_FORM = {"session_timeout": "12", "session_timeout_unit": "hours", "session_max_concurrent": "5",
                 "session_ip_binding": "on", "lockout_max_attempts": "8", "lockout_window": "30",
                 "lockout_lock": "60", "mfa_admins": "on", "mfa_grace_days": "14"}


@dataclass
class Sensitive:
    """One sensitive action: where it is posted, with what, and how to tell it happened."""

    action: str
    url: str
    data: dict[str, Any]
    done: Callable[[], bool]
    success_status: int


@pytest.fixture
def member(org: Organization, make_member: Callable[..., Membership]) -> Membership:
    return make_member(org, "user", email="ann@acme.test")


@pytest.fixture
def sensitive(org: Organization, owner: Membership, member: Membership) -> dict[str, Sensitive]:
    owner.user.is_staff = True
    owner.user.is_superuser = True
    owner.user.save(update_fields=["is_staff", "is_superuser"])

    def session_saved() -> bool:
        return bool((Organization.objects.get(pk=org.pk).settings or {}).get("session"))

    return {
        "admin_api_key": Sensitive(
            "create an API key with the admin scope", API_KEYS,
            {"name": "Ops robot", "scopes": ["read", "admin"], "environment": "live", "expires_at": ""},
            lambda: ApiKey.objects.filter(name="Ops robot", scopes=["read", "admin"]).exists(), 200),
        "security_settings": Sensitive(
            "change the organization&#x27;s security settings", SECURITY, SECURITY_FORM, session_saved, 302),
        "member_role": Sensitive(
            "change a member&#x27;s role", f"/admin/twig_auth/membership/{member.pk}/change/",
            {"role": "manager", "attributes": "{}"},
            lambda: Membership.objects.get(pk=member.pk).role == "manager", 302),
    }


ACTIONS = ["admin_api_key", "security_settings", "member_role"]



def wrong_code(secret: str) -> str:
    right = oathtool(secret, at=clock.now().timestamp())
    return "000000" if right != "000000" else "111111"


def is_prompt(response: Any, what: Sensitive) -> bool:
    body = text(response)
    return f'name="{CODE}"' in body and f"To {what.action}," in body


@pytest.fixture
def signed_in(owner: Membership, logged_in: Callable[[Any], Client]) -> Client:
    return logged_in(owner.user)


@pytest.mark.parametrize("name", ACTIONS)
def test_the_prompt_replaces_the_action_and_a_right_code_completes_it(
        name: str, sensitive: dict[str, Sensitive], owner: Membership, signed_in: Client, totp_device: Any) -> None:
    what = sensitive[name]
    _, secret = totp_device(owner.user)

    prompt = signed_in.post(what.url, what.data)

    assert prompt.status_code == 200
    assert is_prompt(prompt, what)
    assert "no-store" in prompt["Cache-Control"]
    assert not what.done()
    fields = replayed(prompt)
    assert fields == {k: v if isinstance(v, list) else [v] for k, v in what.data.items()}

    response = signed_in.post(what.url, {**fields, CODE: oathtool(secret)})

    assert response.status_code == what.success_status, text(response)[:800]
    assert what.done()
    assert not AuditEvent.objects.filter(event="MFA_FAILURE").exists()


@pytest.mark.parametrize("name", ACTIONS)
def test_a_wrong_code_is_refused_and_nothing_is_written(
        name: str, sensitive: dict[str, Sensitive], owner: Membership, signed_in: Client, totp_device: Any) -> None:
    what = sensitive[name]
    _, secret = totp_device(owner.user)
    fields = replayed(signed_in.post(what.url, what.data))

    response = signed_in.post(what.url, {**fields, CODE: wrong_code(secret)})

    assert response.status_code == 400
    assert is_prompt(response, what)
    assert "That code is not right" in text(response)
    assert replayed(response) == fields  # the user can simply try again
    assert not what.done()
    failure = AuditEvent.objects.get(event="MFA_FAILURE")
    assert failure.user_id == owner.user_id and failure.details["purpose"] == "step_up"
    assert wrong_code(secret) not in str(failure.details)

    empty = signed_in.post(what.url, {**fields, CODE: ""})
    assert empty.status_code == 400 and not what.done()


@pytest.mark.parametrize("name", ACTIONS)
def test_a_user_without_a_second_factor_is_told_to_set_one_up(
        name: str, sensitive: dict[str, Sensitive], signed_in: Client) -> None:
    what = sensitive[name]

    response = signed_in.post(what.url, what.data)
    with_a_code = signed_in.post(what.url, {**what.data, CODE: "123456"})

    assert response.status_code == 403
    assert "you need two-factor authentication" in text(response)
    assert 'href="/settings/mfa/?next=' in text(response)
    assert f'name="{CODE}"' not in text(response)
    assert with_a_code.status_code == 403
    assert not what.done()


@pytest.mark.parametrize("name", ACTIONS)
def test_no_prompt_for_five_minutes_then_a_prompt_again(
        name: str, sensitive: dict[str, Sensitive], owner: Membership, signed_in: Client, totp_device: Any) -> None:
    what = sensitive[name]
    _, secret = totp_device(owner.user)
    with clock.frozen() as frozen:
        fields = replayed(signed_in.post(what.url, what.data))
        assert signed_in.post(what.url, {**fields, CODE: oathtool(secret, at=frozen.current.timestamp())}) \
            .status_code == what.success_status
        undo(name, what)

        frozen.advance(minutes=4, seconds=59)
        response = signed_in.post(what.url, what.data)
        assert response.status_code == what.success_status, text(response)[:500]
        assert what.done()
        undo(name, what)

        frozen.advance(seconds=2)
        response = signed_in.post(what.url, what.data)
        assert response.status_code == 200 and is_prompt(response, what)
        assert not what.done()


def undo(name: str, what: Sensitive) -> None:
    """Put things back (through the ORM: the point is only that the next POST changes something again)."""
    if name == "admin_api_key":
        ApiKey.objects.filter(name="Ops robot").delete()
    elif name == "security_settings":
        Organization.objects.filter(slug="acme").update(settings={})
        from twig_auth.orgs.policy import forget_cached

        forget_cached()
    else:
        Membership.objects.filter(role="manager").update(role="user")
    assert not what.done()


def test_the_stepped_up_fixture_skips_the_prompt(sensitive: dict[str, Sensitive], signed_in: Client,
                                                   stepped_up: Callable[[], Client]) -> None:
    stepped_up()
    for what in sensitive.values():
        response = signed_in.post(what.url, what.data)
        assert response.status_code == what.success_status
        assert what.done()


# --- what does not prompt -----------------------------------------------------------------------------


def test_keys_without_the_admin_scope_need_no_second_factor(owner: Membership, signed_in: Client) -> None:
    response = signed_in.post(API_KEYS, {"name": "Reader", "scopes": ["read", "write", "execute"],
                                         "environment": "live", "expires_at": ""})

    assert response.status_code == 200
    assert len(set(KEY_RE.findall(text(response)))) == 1
    assert ApiKey.objects.get().scopes == ["read", "write", "execute"]


def test_refusals_come_before_the_prompt(org: Organization, owner: Membership, member: Membership,
                                         signed_in: Client, logged_in: Callable[[Any], Client],
                                         totp_device: Any) -> None:
    totp_device(owner.user)
    past = signed_in.post(API_KEYS, {"name": "Old", "scopes": ["admin"], "environment": "live",
                                     "expires_at": "2001-01-01T00:00"})
    assert past.status_code == 200 and field_errors(past, "expires_at")
    assert f'name="{CODE}"' not in text(past)

    defaults = {"session_timeout": "7", "session_timeout_unit": "days", "session_renew": "on",
                "session_max_concurrent": "3", "lockout_max_attempts": "5", "lockout_window": "15",
                "lockout_lock": "15", "mfa_admins": "on", "mfa_grace_days": "7"}
    unchanged = signed_in.post(SECURITY, defaults, follow=True)
    assert "Nothing changed." in text(unchanged)

    bad = signed_in.post(SECURITY, {**SECURITY_FORM, "session_max_concurrent": "0"})
    assert bad.status_code == 200 and field_errors(bad, "session_max_concurrent") == ["Must be between 1 and 100."]
    assert f'name="{CODE}"' not in text(bad)

    totp_device(member.user)
    beyond_role = logged_in(member.user).post(API_KEYS, {"name": "Sneaky", "scopes": ["admin"],
                                                         "environment": "live", "expires_at": ""})
    assert beyond_role.status_code == 403
    assert field_errors(beyond_role, "scopes") == ["Your role (user) cannot create keys with the admin scope."]
    assert not ApiKey.objects.exists() and not (Organization.objects.get(pk=org.pk).settings or {}).get("session")


def test_other_admin_edits_of_a_member_need_no_second_factor(sensitive: dict[str, Sensitive], member: Membership,
                                                             signed_in: Client, totp_device: Any,
                                                             owner: Membership) -> None:
    totp_device(owner.user)
    url = sensitive["member_role"].url

    response = signed_in.post(url, {"role": "user", "attributes": '{"department": "support"}'})

    assert response.status_code == 302
    assert Membership.objects.get(pk=member.pk).attributes == {"department": "support"}


def test_a_recovery_code_also_completes_the_action(sensitive: dict[str, Sensitive], owner: Membership,
                                                   signed_in: Client, totp_device: Any) -> None:
    from twig_auth.mfa import recovery

    totp_device(owner.user)
    codes = recovery.generate(owner.user)
    what = sensitive["admin_api_key"]
    fields = replayed(signed_in.post(what.url, what.data))

    response = signed_in.post(what.url, {**fields, CODE: codes[0]})

    assert response.status_code == 200 and what.done()
    assert recovery.remaining(owner.user) == len(codes) - 1
