"""External API keys: an org's own keys for LLM providers (OpenAI, Anthropic, a custom OpenAI-compatible endpoint),
encrypted at rest with the vault, shown masked, handed to provider clients by :func:`.services.credential_for`."""
