"""Access reviews: who holds what in an org (roles, groups, grants, MFA, API keys), and inactive-member
deactivation."""
