"""API keys: format and checksum, hashing, cached verification, scopes, usage, rotation."""
