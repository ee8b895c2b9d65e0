"""API rate limits: a token bucket per principal and scope class, atomic in Redis (see ``bucket``)."""
