"""Import every capability's models so Django finds them under the one app label ``twig_auth``."""

from twig_auth.alerts.models import SecurityAlert
from twig_auth.apikeys.models import ApiKey, ApiKeyUsage
from twig_auth.audit.models import AuditChainHead, AuditEvent
from twig_auth.authz.models import Grant, Policy, SodRule
from twig_auth.connectors.models import OAuthToken
from twig_auth.mfa.models import SmsDevice
from twig_auth.orgs.models import Group, GroupMembership, Membership, Organization
from twig_auth.passwords.models import LoginThrottle
from twig_auth.providerkeys.models import ExternalApiKey
from twig_auth.sso.models import SsoConnection, SsoDomain
from twig_auth.tokens.models import RefreshToken
from twig_auth.usersessions.models import UserSession

__all__ = ["ApiKey", "ApiKeyUsage", "AuditChainHead", "AuditEvent", "ExternalApiKey", "Grant", "Group",
           "GroupMembership", "LoginThrottle", "Membership", "OAuthToken", "Organization", "Policy", "RefreshToken",
           "SecurityAlert", "SmsDevice", "SodRule", "SsoConnection", "SsoDomain", "UserSession"]
