"""Per-org single sign-on: SAML and OIDC connections, verified email domains, the SP side of SAML."""
