"""Settings of the twig_auth reference project.

Embedded default: SQLite and the local-memory cache. Set ``DATABASE_URL`` (PostgreSQL, psycopg 3) and
``REDIS_URL`` (django-redis) to run on the production stores; ``TWIG_PRODUCTION=1`` turns on HTTPS-only
settings.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
env = os.environ.get

PRODUCTION = env("TWIG_PRODUCTION") == "1"
DEBUG = env("DJANGO_DEBUG", "0" if PRODUCTION else "1") == "1"
SECRET_KEY = env("DJANGO_SECRET_KEY") or ("" if PRODUCTION else "dev-only-insecure-key-change-me-" + "x" * 20)
if PRODUCTION and not SECRET_KEY:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("TWIG_PRODUCTION=1 needs DJANGO_SECRET_KEY (a long random string).")
ALLOWED_HOSTS = [h for h in env("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver").split(",") if h]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our static files: /api/docs works offline
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "djangosaml2",  # SAML SSO: its AuthnRequest/ACS machinery, driven per org by twig_auth.sso.saml_flow
    # OIDC SSO: allauth's OAuth/OIDC providers, driven per org by twig_auth.sso.oidc (its pages are not mounted)
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "allauth.socialaccount.providers.google",
    "allauth.socialaccount.providers.microsoft",
    "twig_auth",
    "twig_project.users",
    "twig_project.workspace",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "twig_auth.core.unavailable.DatabaseUnavailableMiddleware",  # 503 service_unavailable while the DB is down
    "twig_auth.usersessions.middleware.TwigSessionMiddleware",
    "twig_auth.sso.middleware.SamlSessionMiddleware",  # djangosaml2's SAML session (outstanding requests)
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "twig_auth.mfa.middleware.MfaEnforcementMiddleware",
    "twig_auth.netaccess.middleware.IpAllowlistMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "twig_auth.apikeys.middleware.ApiKeyUsageMiddleware",
    "allauth.account.middleware.AccountMiddleware",  # allauth's request context (its OIDC callbacks need it)
]

# djangosaml2: its own cookie for the SAML session; no django-csp here.
SAML_SESSION_COOKIE_NAME = "twig_saml_session"
SAML_CSP_HANDLER = ""

# django-allauth (OIDC SSO only): apps come from each org's SsoConnection (twig_auth.sso.oidc_adapter), every
# login ends in twig's SSO login service; allauth never signs up, links or shows its own pages.
ACCOUNT_ADAPTER = "twig_auth.sso.oidc_adapter.AccountAdapter"
SOCIALACCOUNT_ADAPTER = "twig_auth.sso.oidc_adapter.SocialAccountAdapter"
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
SOCIALACCOUNT_AUTO_SIGNUP = False
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False
SOCIALACCOUNT_STORE_TOKENS = False
SOCIALACCOUNT_LOGIN_ON_GET = False
SOCIALACCOUNT_PROVIDERS = {p: {"OAUTH_PKCE_ENABLED": True} for p in ("openid_connect", "google", "microsoft")}

ROOT_URLCONF = "twig_project.urls"
WSGI_APPLICATION = "twig_project.wsgi.application"

TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [BASE_DIR / "templates"],
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
        "twig_auth.orgs.active.context_processor",
        "twig_auth.mfa.context.context_processor",
    ]},
}]

# --- stores ----------------------------------------------------------------------------------------
if env("DATABASE_URL"):
    # Health checks: a persistent connection the server dropped (a restart) is replaced before the request uses it.
    DATABASES = {"default": dj_database_url.parse(env("DATABASE_URL"), conn_max_age=60, conn_health_checks=True)}
else:
    DATABASES = {"default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": env("SQLITE_PATH", str(BASE_DIR / "db.sqlite3")),
        # IMMEDIATE transactions take the write lock at BEGIN, so concurrent counters queue instead of failing.
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 30},
        "TEST": {"NAME": env("SQLITE_TEST_PATH", str(BASE_DIR / ".test-db.sqlite3"))},
    }}

if env("REDIS_URL"):
    CACHES = {"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": env("REDIS_URL"),
                          "KEY_PREFIX": env("CACHE_KEY_PREFIX", "twig"),
                          # A dead Redis must fail fast (twig_auth.core.outage then skips it). Never set
                          # IGNORE_EXCEPTIONS: it turns a failed read of a revocation marker into "not revoked".
                          "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.25, "SOCKET_TIMEOUT": 0.5}}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    # The local-memory cache is per process: fine for the embedded single-process default (twig_auth.W002
    # says so in `manage.py check`); rate-limit buckets are then per process too.

# --- auth ------------------------------------------------------------------------------------------
AUTH_USER_MODEL = "users.User"
AUTHENTICATION_BACKENDS = ["twig_auth.passwords.backends.EmailBackend", "twig_auth.authz.backends.AuthzBackend"]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "twig_auth.passwords.validators.ComplexityValidator"},
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "twig_auth:login"
LOGIN_REDIRECT_URL = "/"
PASSWORD_RESET_TIMEOUT = 60 * 60  # reset links expire after an hour (and are single use)



def _vault_keys() -> list[str]:
    """Keys that encrypt secrets held for users: ``TWIG_VAULT_KEYS`` ("<version>:<base64>", comma separated, newest
    first). Production refuses to start without it; a development run derives one key from SECRET_KEY so the
    demo works out of the box and its stored secrets survive restarts."""
    configured = [k.strip() for k in env("TWIG_VAULT_KEYS", "").split(",") if k.strip()]
    if configured or PRODUCTION:
        if not configured:
            from django.core.exceptions import ImproperlyConfigured

            raise ImproperlyConfigured("TWIG_PRODUCTION=1 needs TWIG_VAULT_KEYS (python manage.py twig_vault_keygen).")
        return configured
    import base64
    import hashlib

    return ["1:" + base64.b64encode(hashlib.sha256(b"twig-vault-development:" + SECRET_KEY.encode()).digest()).decode()]


TWIG_AUTH: dict = {"API_MODE": env("TWIG_API_MODE", "live"), "VAULT_KEYS": _vault_keys()}

# --- API -------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "twig_auth.contrib.rest_framework.authentication.ApiKeyAuthentication",
        "twig_auth.contrib.rest_framework.authentication.JwtAuthentication",
        "twig_auth.contrib.rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["twig_auth.contrib.rest_framework.throttling.ScopeRateThrottle"],
    "EXCEPTION_HANDLER": "twig_auth.contrib.rest_framework.exceptions.exception_handler",
    "DEFAULT_PARSER_CLASSES": ["twig_auth.contrib.rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "twig_auth.contrib.rest_framework.schema.TwigAutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer",
                                 "rest_framework.renderers.BrowsableAPIRenderer"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Twig reference API",
    "DESCRIPTION": "Agents, data sources, interactions and query/chat, secured by twig_auth.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- language models ("use my key") ---------------------------------------------------------------
# Agents whose model uses Twig's key call these; agents using the org's own key call the same base URLs (a
# custom endpoint: the URL stored with the key). An empty api_key: 503 provider_not_configured for Twig's key.
TWIG_LLM = {
    "openai": {"base_url": env("TWIG_OPENAI_BASE_URL", "https://api.openai.com/v1"),
               "api_key": env("TWIG_OPENAI_API_KEY", "")},
    "anthropic": {"base_url": env("TWIG_ANTHROPIC_BASE_URL", "https://api.anthropic.com"),
                  "api_key": env("TWIG_ANTHROPIC_API_KEY", "")},
    "timeout": float(env("TWIG_LLM_TIMEOUT", "30")),  # seconds to wait for an answer
    "connect_timeout": float(env("TWIG_LLM_CONNECT_TIMEOUT", "5")),  # seconds to connect
    "max_tokens": 1024,  # the reply cap Anthropic requires
}

# --- the rest --------------------------------------------------------------------------------------
EMAIL_BACKEND = env("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = "Twig <no-reply@twig.test>"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
SESSION_ENGINE = "twig_auth.usersessions.engine"
SESSION_COOKIE_NAME = "twig_session"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

if PRODUCTION:
    SECURE_SSL_REDIRECT = True
    SECURE_HSTS_SECONDS = 31536000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # Preload asks browsers to ship the HTTPS-only rule built in; opt out while trying a new domain.
    SECURE_HSTS_PRELOAD = env("DJANGO_HSTS_PRELOAD", "1") == "1"
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "twig_auth.core.logging.RedactSecretsFilter"}},
    # UTC timestamps on every line (ASVS 7.1.4); the redact filter also escapes line breaks (no forged lines)
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["redact"], "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "WARNING")},
    "loggers": {"twig_auth": {"level": env("TWIG_LOG_LEVEL", "INFO"), "propagate": True}},
}
