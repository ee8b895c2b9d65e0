"""Connector OAuth: data-source connections (Google Drive, Slack, any OAuth 2.0 server) through the
authorization-code flow with PKCE, tokens encrypted at rest, single-flight refresh and RFC 7009 revocation.

* :mod:`.providers` — the providers of ``TWIG_AUTH["CONNECTOR_PROVIDERS"]`` and their validation;
* :mod:`.flow` — start a connection (state + PKCE bound to the session) and the callback view;
* :mod:`.tokens` — :func:`~.tokens.access_token_for`, refreshing once however many callers need it;
* :mod:`.revoke` — RFC 7009 revocation;
* :mod:`.services` — the write workflows and their audit events.
"""
