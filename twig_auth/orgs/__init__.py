"""Organizations, memberships with roles, and groups."""
