"""Private helpers shared by the capabilities: clock, client IP, request context, crypto, Redis."""
