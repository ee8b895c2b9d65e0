"""API key scopes, what each role may grant, and the HTTP-method default map."""

from __future__ import annotations

from django.db import models

from twig_auth.orgs.roles import Role


class Scope(models.TextChoices):
    READ = "read", "Read"
    WRITE = "write", "Write"
    EXECUTE = "execute", "Execute"
    ADMIN = "admin", "Admin"


ALL_SCOPES: tuple[str, ...] = tuple(Scope.values)

# The most a member of each role may put on a key: a key never exceeds its creator's permissions.
ROLE_SCOPES: dict[str, frozenset[str]] = {
    Role.USER: frozenset({Scope.READ, Scope.EXECUTE}),
    Role.MANAGER: frozenset({Scope.READ, Scope.WRITE, Scope.EXECUTE}),
    Role.ADMIN: frozenset(ALL_SCOPES),
    Role.SUPER_ADMIN: frozenset(ALL_SCOPES),
}

# Default scope per HTTP method for a view that declares none of its own.
METHOD_SCOPES: dict[str, str] = {
    "GET": Scope.READ, "HEAD": Scope.READ, "OPTIONS": Scope.READ,
    "POST": Scope.WRITE, "PUT": Scope.WRITE, "PATCH": Scope.WRITE, "DELETE": Scope.WRITE,
}


def allowed_for(role: str) -> frozenset[str]:
    return ROLE_SCOPES.get(role, frozenset())


def satisfies(granted: frozenset[str] | set[str], required: str) -> bool:
    """``admin`` allows every endpoint; otherwise the required scope must be granted."""
    return Scope.ADMIN in granted or required in granted
