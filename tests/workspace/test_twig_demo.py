"""``manage.py twig_demo``: idempotent demo data, password option."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from twig_auth.audit.models import AuditEvent
from twig_auth.authz.models import Grant
from twig_auth.orgs.models import Membership, Organization
from twig_project.workspace.models import Agent, DataSource

pytestmark = pytest.mark.django_db

EXPECTED_MEMBERS = {
    ("acme", "owner@acme.test", "super_admin"), ("acme", "admin@acme.test", "admin"),
    ("acme", "manager@acme.test", "manager"), ("acme", "user@acme.test", "user"),
    ("free-co", "owner@free.test", "super_admin"),
}


@pytest.fixture(autouse=True)
def _fast_hashing(settings):
    # The command's behaviour, not bcrypt's cost, is under test here.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _run(*args: str) -> str:
    out = StringIO()
    call_command("twig_demo", *args, stdout=out)
    return out.getvalue()


def _counts() -> tuple[int, ...]:
    return (Organization.objects.count(), get_user_model().objects.count(), Membership.objects.count(),
            Agent.objects.count(), DataSource.objects.count(), Grant.objects.count(), AuditEvent.objects.count())


def test_creates_the_contract_orgs_members_agents_and_sources():
    output = _run()
    plans = dict(Organization.objects.values_list("slug", "plan"))
    assert plans == {"acme": "enterprise", "free-co": "free"}
    members = set(Membership.objects.values_list("org__slug", "user__email", "role"))
    assert members == EXPECTED_MEMBERS
    for slug in ("acme", "free-co"):
        assert Agent.objects.filter(org__slug=slug).exists()
        assert DataSource.objects.filter(org__slug=slug).exists()
    assert all(a.config.get("faq") for a in Agent.objects.all())
    assert get_user_model().objects.get(email="user@acme.test").check_password("TwigDemo-2026!")
    assert AuditEvent.objects.filter(event="MEMBER_ADDED").count() == 5
    support = Agent.objects.get(org__slug="acme", name="Support assistant")
    grants = set(Grant.objects.values_list("user__email", "action", "resource_type", "resource_id"))
    assert grants == {("user@acme.test", "use", "agent", support.pk), ("manager@acme.test", "deploy", "agent", "*")}
    assert AuditEvent.objects.filter(event="PERMISSION_GRANTED").count() == 2
    assert "owner@acme.test" in output and "TwigDemo-2026!" in output and "/login/" in output


def test_running_twice_changes_nothing():
    _run()
    before = _counts()
    password_hashes = dict(get_user_model().objects.values_list("email", "password"))
    _run()
    assert _counts() == before
    assert dict(get_user_model().objects.values_list("email", "password")) == password_hashes


def test_password_option_updates_every_demo_password():
    _run()
    output = _run("--password", "Another-Secret-7?")
    users = get_user_model().objects.filter(twig_memberships__isnull=False).distinct()
    assert users.count() == 5
    assert all(u.check_password("Another-Secret-7?") and not u.check_password("TwigDemo-2026!") for u in users)
    assert "Another-Secret-7?" not in output


def test_weak_password_is_refused_before_anything_is_written():
    with pytest.raises(CommandError, match="too weak"):
        _run("--password", "short")
    assert _counts() == (0, 0, 0, 0, 0, 0, 0)


def test_drifted_role_is_put_back_through_the_service():
    _run()
    membership = Membership.objects.get(user__email="manager@acme.test")
    Membership.objects.filter(pk=membership.pk).update(role="user")
    _run()
    membership.refresh_from_db()
    assert membership.role == "manager"
    assert AuditEvent.objects.filter(event="ROLE_CHANGED").count() == 1


def test_demo_user_can_use_the_api(client):
    _run()
    assert client.post("/login/", {"email": "user@acme.test", "password": "TwigDemo-2026!"}).status_code == 302
    agents = client.get("/api/agents").json()
    assert [a["name"] for a in agents] == ["Support assistant"]  # only what was granted, not the HR helper
    support = agents[0]
    response = client.post("/api/query", {"agent": support["id"], "question": "Where is my refund?"},
                           content_type="application/json")
    assert response.json()["answer"] == "Refunds take 5 business days."


def test_the_demo_owner_can_open_the_admin(db, client):
    from django.core.management import call_command

    call_command("twig_demo", "--password", "Correct-Horse-9!", verbosity=0)
    response = client.post("/login/", {"email": "owner@acme.test", "password": "Correct-Horse-9!"})
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/twig_auth/auditevent/").status_code == 200
