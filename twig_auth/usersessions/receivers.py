"""Apply the concurrent-session limit when someone signs in."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from twig_auth.core.http import client_ip
from twig_auth.usersessions.policy import enforce_max_concurrent


@receiver(user_logged_in, dispatch_uid="twig_auth.usersessions.max_concurrent")
def _limit_sessions(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if request is not None and getattr(request, "session", None) is not None:
        enforce_max_concurrent(user, ip=client_ip(request))
