"""Register every capability's admin screens."""

from twig_auth.apikeys import admin as _apikeys_admin  # noqa: F401
from twig_auth.audit import admin as _audit_admin  # noqa: F401
from twig_auth.authz import admin as _authz_admin  # noqa: F401  (imports the orgs admins and extends two)
from twig_auth.connectors import admin as _connectors_admin  # noqa: F401
from twig_auth.mfa import admin as _mfa_admin  # noqa: F401
from twig_auth.orgs import admin as _orgs_admin  # noqa: F401
from twig_auth.providerkeys import admin as _providerkeys_admin  # noqa: F401
from twig_auth.sso import admin as _sso_admin  # noqa: F401
from twig_auth.usersessions import admin as _sessions_admin  # noqa: F401
