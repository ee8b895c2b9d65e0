"""djangosaml2's SAML session (the outstanding AuthnRequests, in its own SameSite=None cookie so the IdP's
cross-site POST carries it), kept in the cache rather than in twig's session engine: it is anonymous and
short-lived, and must not show up as a user session."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from djangosaml2.middleware import SamlSessionMiddleware as BaseSamlSessionMiddleware


class SamlSessionMiddleware(BaseSamlSessionMiddleware):
    def __init__(self, get_response: Any) -> None:
        super().__init__(get_response)
        self.SessionStore = import_module("django.contrib.sessions.backends.cache").SessionStore
