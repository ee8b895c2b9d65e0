"""Password rules, lockout, and the password login workflow."""
