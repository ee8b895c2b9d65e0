"""Exercise sign-in, lockout, orgs and API keys with ``auth.User`` (run by test_other_user_model.py)."""

from __future__ import annotations

import contextlib
import os

import django

os.environ["DJANGO_SETTINGS_MODULE"] = "tests.support.alt_user_settings"
django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402

from twig_auth.apikeys.services import issue_api_key  # noqa: E402
from twig_auth.audit.models import AuditEvent  # noqa: E402
from twig_auth.core.context import RequestContext  # noqa: E402
from twig_auth.exceptions import AccountLocked, InvalidCredentials  # noqa: E402
from twig_auth.orgs import services  # noqa: E402
from twig_auth.passwords.services import authenticate_password  # noqa: E402

PASSWORD = "Correct-Horse-9!"


def main() -> None:
    call_command("migrate", verbosity=0)
    User = get_user_model()
    assert User._meta.label == "auth.User"
    ann = User.objects.create_user(username="ann", email="Ann@Example.test", password=PASSWORD)
    org = services.create_organization(slug="acme", name="Acme", plan="enterprise", owner=ann)
    ctx = RequestContext(ip="127.0.0.1")
    assert authenticate_password(email="ann@example.TEST", password=PASSWORD, context=ctx) == ann
    client = Client()
    response = client.post("/login/", {"email": "ann@example.test", "password": PASSWORD})
    assert response.status_code == 302, response.status_code
    assert client.get("/").status_code == 200
    for _ in range(5):
        with contextlib.suppress(InvalidCredentials):
            authenticate_password(email="ann@example.test", password="Wrong-Pass-1!", context=ctx)
    try:
        authenticate_password(email="ann@example.test", password=PASSWORD, context=ctx)
        raise AssertionError("the sixth attempt must be locked")
    except AccountLocked:
        pass
    owner = org.memberships.get(user=ann)
    _, plaintext = issue_api_key(creator=owner, name="ci", scopes=["read"], environment="live")
    response = Client().get("/api/agents", HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert response.status_code == 200, response.content
    assert AuditEvent.objects.filter(event="ACCOUNT_LOCKED", email="ann@example.test").count() == 1
    print("OK auth.User")


if __name__ == "__main__":
    main()
