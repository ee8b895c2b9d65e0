"""JWT access tokens and rotating refresh-token families for API clients."""
