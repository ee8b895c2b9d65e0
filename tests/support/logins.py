"""The outcome of one password check through the service, as a word tests can compare lists of."""

from __future__ import annotations

from twig_auth.core.context import RequestContext
from twig_auth.exceptions import AccountLocked, InvalidCredentials
from twig_auth.passwords.services import authenticate_password

CONTEXT = RequestContext(ip="203.0.113.7", user_agent="pytest")


def login_outcome(email: str, password: str = "Wrong-Pass-1!", context: RequestContext = CONTEXT) -> str:
    """Return ``"ok"``, ``"invalid"`` or ``"locked"``."""
    try:
        authenticate_password(email=email, password=password, context=context)
    except AccountLocked:
        return "locked"
    except InvalidCredentials:
        return "invalid"
    return "ok"
