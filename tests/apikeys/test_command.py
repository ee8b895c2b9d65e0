"""``manage.py twig_apikeys``: create prints the key once, list never prints secrets, revoke, flush."""

from __future__ import annotations

import re
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from twig_auth.apikeys.models import ApiKey, ApiKeyUsage
from twig_auth.apikeys.services import issue_api_key
from twig_auth.apikeys.usage import buffer

KEY_RE = re.compile(r"twigsk_(?:live|test)_[0-9A-Za-z]{50}")


def run(*args: str) -> str:
    out = StringIO()
    call_command("twig_apikeys", *args, stdout=out)
    return out.getvalue()


def create(*extra: str) -> str:
    return run("create", "--org", "acme", "--email", "owner@acme.test", "--name", "CI", "--scopes", "read,write",
               *extra)


def test_create_prints_the_key_once_and_it_works(client: Any, owner: Any) -> None:
    out = create("--environment", "live")

    keys = KEY_RE.findall(out)
    assert len(keys) == 1
    assert "shown only this once" in out
    key = ApiKey.objects.get()
    assert (key.name, key.scopes, key.environment, key.created_by_id) == ("CI", ["read", "write"], "live", owner.pk)
    assert client.get("/api/agents", HTTP_AUTHORIZATION=f"Bearer {keys[0]}").status_code == 200


def test_create_with_test_environment_and_expiry(owner: Any) -> None:
    out = create("--environment", "test", "--expires-at", "2030-01-31T12:00Z")

    assert KEY_RE.search(out).group(0).startswith("twigsk_test_")  # type: ignore[union-attr]
    key = ApiKey.objects.get()
    assert key.expires_at is not None and key.expires_at.isoformat() == "2030-01-31T12:00:00+00:00"


@pytest.mark.parametrize(("args", "message"), [
    (["--org", "nope"], "No organization with the slug 'nope'."),
    (["--email", "ghost@acme.test"], "ghost@acme.test is not a member of acme."),
    (["--scopes", "read,root"], "--scopes: Choose one or more of read, write, execute, admin."),
    (["--scopes", ","], "--scopes: Choose one or more of read, write, execute, admin."),
    (["--environment", "prod"], "--environment: Choose live or test."),
    (["--name", " "], "--name: Give the key a name."),
    (["--name", "n" * 101], "--name: Use at most 100 characters and no control characters."),
    (["--expires-at", "tomorrow"], "--expires-at: 'tomorrow' is not an ISO 8601 date and time"),
    (["--expires-at", "2001-01-01T00:00"], "--expires-at: Choose a moment in the future"),
    (["--org", "ac\x00me"], "--org contains control characters or is too long."),
    (["--email", "x" * 10_000], "--email contains control characters or is too long."),
])
def test_create_explains_bad_input(owner: Any, args: list[str], message: str) -> None:
    base = {"--org": "acme", "--email": "owner@acme.test", "--name": "CI", "--scopes": "read"}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    with pytest.raises(CommandError) as caught:
        run("create", *[v for pair in base.items() for v in pair])
    assert str(caught.value).startswith(message)
    assert not ApiKey.objects.exists()


def test_create_refuses_scopes_beyond_the_role(org: Any, make_member: Any) -> None:
    make_member(org, "user", email="ann@acme.test")
    with pytest.raises(CommandError, match=r"Your role \(user\) cannot create keys with the admin, write scope"):
        run("create", "--org", "acme", "--email", "ANN@acme.test", "--name", "x", "--scopes", "admin,write,read")
    assert not ApiKey.objects.exists()


def test_list_never_prints_secrets_or_hashes(owner: Any, make_org: Any, make_member: Any) -> None:
    key, plaintext = issue_api_key(creator=owner, name="deploy", scopes=["read"], environment="live")
    other = make_member(make_org("globex"), "admin", email="gus@globex.test")
    issue_api_key(creator=other, name="globex-sync", scopes=["read"], environment="test")

    out = run("list")
    assert "deploy" in out and "globex-sync" in out and f"{key.prefix}…" in out and "owner@acme.test" in out
    stored = ApiKey.objects.get(pk=key.pk).hashed_secret
    assert plaintext not in out and stored not in out and key.key_id + plaintext[-38:] not in out
    assert not KEY_RE.search(out)

    only_acme = run("list", "--org", "acme")
    assert "deploy" in only_acme and "globex-sync" not in only_acme
    assert run("list", "--org", "globex").count("\n") == 2
    with pytest.raises(CommandError, match="No organization with the slug 'nope'"):
        run("list", "--org", "nope")


def test_list_of_no_keys(db: None) -> None:
    assert run("list") == "No API keys.\n"


@pytest.mark.parametrize("how", ["pk", "key_id", "prefix", "prefix…", "full"])
def test_revoke_by_any_identifier(client: Any, owner: Any, how: str) -> None:
    key, plaintext = issue_api_key(creator=owner, name="deploy", scopes=["read"], environment="live")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {plaintext}"}
    assert client.get("/api/agents", **auth).status_code == 200
    ident = {"pk": key.pk, "key_id": key.key_id, "prefix": key.prefix, "prefix…": f"{key.prefix}…",
             "full": plaintext}[how]

    out = run("revoke", ident)

    assert f"Revoked 'deploy' ({key.prefix}…" in out and plaintext not in out
    key.refresh_from_db()
    assert key.revoked_at is not None
    response = client.get("/api/agents", **auth)
    assert response.status_code == 401 and response.json()["code"] == "invalid_api_key"
    assert "already revoked" in run("revoke", key.pk)


@pytest.mark.parametrize("ident", ["key_unknown", "twigsk_live_AAAAAAAAAAAA", "", "\x00", "k" * 10_000])
def test_revoke_unknown_key(db: None, ident: str) -> None:
    with pytest.raises(CommandError):
        run("revoke", ident)


def test_flush_writes_buffered_usage(owner: Any) -> None:
    key, _ = issue_api_key(creator=owner, name="deploy", scopes=["read"], environment="live")
    buffer.add(key.pk, "GET /api/agents", 200, "10.0.0.1")
    buffer.add(key.pk, "GET /api/agents", 200, "10.0.0.1")

    assert run("flush") == "Flushed 1 usage row.\n"
    assert ApiKeyUsage.objects.get(key=key).count == 2
    key.refresh_from_db()
    assert key.last_used_ip == "10.0.0.1"
    assert run("flush") == "Flushed 0 usage rows.\n"


def test_an_action_is_required(db: None) -> None:
    with pytest.raises(CommandError):
        run()
