"""System checks. Stable ids: twig_auth.E001 invalid setting, W001 unknown setting, E002 bcrypt hasher
not first, E003 password validator missing, E004 user model without an email field, W002 django-redis
cache missing in production (DEBUG off), E005 django-otp apps missing from INSTALLED_APPS, E006 the MFA
middleware missing or placed before authentication, E007 the IP allowlist middleware missing or placed before
authentication or the MFA middleware, W003 the SAML service-provider key settings unusable (unreadable, not
PEM, key and certificate not a pair, expired, or SSO_BASE_URL missing), E008 djangosaml2 installed without its
SAML session middleware (the ACS could never find its outstanding requests), E009 no VAULT_KEYS (secrets held
for users could not be encrypted), E010 an encrypted field on a model whose primary key has no default (from
the field's own check)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

from twig_auth.conf import app_settings

BCRYPT = "django.contrib.auth.hashers.BCryptSHA256PasswordHasher"
VALIDATOR = "twig_auth.passwords.validators.ComplexityValidator"
OTP_APPS = ("django_otp", "django_otp.plugins.otp_totp", "django_otp.plugins.otp_static")
MFA_MIDDLEWARE = "twig_auth.mfa.middleware.MfaEnforcementMiddleware"
IP_MIDDLEWARE = "twig_auth.netaccess.middleware.IpAllowlistMiddleware"
SAML_MIDDLEWARE = "twig_auth.sso.middleware.SamlSessionMiddleware"


@checks.register("twig_auth")
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    for key, problem in app_settings.errors():
        if problem == "is not a twig_auth setting":
            messages.append(checks.Warning(f'TWIG_AUTH["{key}"] {problem}.', id="twig_auth.W001",
                                           hint="See docs/settings.md for the settings twig_auth reads."))
        else:
            messages.append(checks.Error(f'TWIG_AUTH["{key}"] {problem}.', id="twig_auth.E001",
                                         hint="See docs/settings.md."))
    hashers = getattr(settings, "PASSWORD_HASHERS", [])
    if not hashers or hashers[0] != BCRYPT:
        messages.append(checks.Error("The first PASSWORD_HASHERS entry must be BCryptSHA256PasswordHasher.",
                                     id="twig_auth.E002", hint=f'Put "{BCRYPT}" first (bcrypt cost 12).'))
    validators = [v.get("NAME") for v in getattr(settings, "AUTH_PASSWORD_VALIDATORS", [])]
    if VALIDATOR not in validators:
        messages.append(checks.Error("The twig_auth password rules are not enabled.", id="twig_auth.E003",
                                     hint=f'Add {{"NAME": "{VALIDATOR}"}} to AUTH_PASSWORD_VALIDATORS.'))
    from django.contrib.auth import get_user_model

    User = get_user_model()
    field = User.get_email_field_name()
    if field not in {f.name for f in User._meta.get_fields()}:
        messages.append(checks.Error(f"The user model {User._meta.label} has no email field {field!r}.",
                                     id="twig_auth.E004", hint="twig_auth signs people in by email."))
    from twig_auth.core.redis import redis_configured

    if not settings.DEBUG and not redis_configured():
        messages.append(checks.Warning("No django-redis cache: lockout counters use the database and "
                                       "API-key caching is per process.", id="twig_auth.W002",
                                       hint='Configure a django_redis cache (TWIG_AUTH["REDIS_CACHE_ALIAS"]).'))
    from django.apps import apps

    missing = [a for a in OTP_APPS if not apps.is_installed(a)]
    if missing:
        messages.append(checks.Error(f"MFA needs {', '.join(missing)} in INSTALLED_APPS.", id="twig_auth.E005",
                                     hint="Add django_otp and its otp_totp and otp_static plugins (docs/mfa.md)."))
    middleware = list(getattr(settings, "MIDDLEWARE", []))
    auth = "django.contrib.auth.middleware.AuthenticationMiddleware"
    if MFA_MIDDLEWARE not in middleware or (auth in middleware
                                            and middleware.index(MFA_MIDDLEWARE) < middleware.index(auth)):
        messages.append(checks.Error("The MFA enforcement middleware is missing or runs before authentication.",
                                     id="twig_auth.E006",
                                     hint=f'Add "{MFA_MIDDLEWARE}" to MIDDLEWARE after AuthenticationMiddleware.'))
    if IP_MIDDLEWARE not in middleware or any(
            m in middleware and middleware.index(IP_MIDDLEWARE) < middleware.index(m) for m in (auth, MFA_MIDDLEWARE)):
        messages.append(checks.Error("The IP allowlist middleware is missing or runs before authentication or the "
                                     "MFA enforcement middleware.", id="twig_auth.E007",
                                     hint=f'Add "{IP_MIDDLEWARE}" to MIDDLEWARE after AuthenticationMiddleware and '
                                          f'"{MFA_MIDDLEWARE}".'))
    if apps.is_installed("djangosaml2") and not _has_saml_session_middleware(middleware):
        messages.append(checks.Error("djangosaml2 is installed but its SAML session middleware is not in MIDDLEWARE.",
                                     id="twig_auth.E008",
                                     hint=f'Add "{SAML_MIDDLEWARE}" to MIDDLEWARE (SAML sign-in needs it).'))
    from twig_auth.sso.saml_config import sp_settings_problems

    for problem in sp_settings_problems():  # settings and files only: no database access in checks
        messages.append(checks.Warning(f"SAML service provider: {problem}", id="twig_auth.W003",
                                       hint="SAML sign-in cannot work until this is fixed (docs/settings.md)."))
    if not app_settings.VAULT_KEYS:
        messages.append(checks.Error(
            'TWIG_AUTH["VAULT_KEYS"] is empty: provider keys, connector OAuth tokens and SSO client secrets '
            "cannot be encrypted.", id="twig_auth.E009",
            hint='Run `python manage.py twig_vault_keygen` and put the line it prints in TWIG_AUTH["VAULT_KEYS"] '
                 "(from the environment, never from the repository)."))
    return messages


def _has_saml_session_middleware(middleware: list[str]) -> bool:
    """djangosaml2's middleware, or a subclass of it (twig's keeps the SAML session in the cache)."""
    from django.utils.module_loading import import_string
    from djangosaml2.middleware import SamlSessionMiddleware

    for path in middleware:
        try:
            cls = import_string(path)
        except ImportError:
            continue
        if isinstance(cls, type) and issubclass(cls, SamlSessionMiddleware):
            return True
    return False
