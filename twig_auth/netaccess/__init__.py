"""Network access: IP parsing and allowlist matching (pure; wiring into requests lives elsewhere)."""
