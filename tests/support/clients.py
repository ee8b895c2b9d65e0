"""A test client signed in as a member, with a fresh second factor unless told otherwise."""

from __future__ import annotations

from typing import Any

from django.test import Client

from twig_auth.mfa import stepup


def signed_in(membership: Any, *, step_up: bool = True) -> Client:
    client = Client()
    client.force_login(membership.user, backend="twig_auth.passwords.backends.EmailBackend")
    if step_up:
        session = client.session
        stepup.mark_verified(session)
        session.save()
    return client
