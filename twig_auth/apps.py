from __future__ import annotations

from django.apps import AppConfig


class TwigAuthConfig(AppConfig):
    name = "twig_auth"
    label = "twig_auth"
    verbose_name = "Twig Auth"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from twig_auth import checks  # noqa: F401  (registers the system checks)
        from twig_auth.authz import members as _authz_signals  # noqa: F401  (policy versions, cache invalidation)
        from twig_auth.authz import registry

        registry.register_builtin()
        from twig_auth.alerts import receivers as _alert_receivers  # noqa: F401
        from twig_auth.apikeys import receivers  # noqa: F401
        from twig_auth.mfa import receivers as _mfa_receivers  # noqa: F401
        from twig_auth.tokens import receivers as _token_receivers  # noqa: F401
        from twig_auth.usersessions import receivers as _session_receivers  # noqa: F401
