"""Web sessions: the ``twig_session`` JWT cookie naming a revocable server-side session record."""
