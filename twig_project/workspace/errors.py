"""The API form of model-call errors: DRF exceptions answered as ``{"detail", "code"}`` by the project's handler.

| status | code | when |
|---|---|---|
| 409 | ``provider_key_missing`` | the agent uses its organization's key and the org has none for the provider |
| 502 | ``provider_error`` | the provider refused the key or the request, failed, or answered something unreadable |
| 503 | ``provider_not_configured`` | the agent uses Twig's key and the installation has none (``TWIG_LLM``) |
| 504 | ``provider_timeout`` | the provider did not answer within ``TWIG_LLM["timeout"]`` seconds |
"""

from __future__ import annotations

from rest_framework.exceptions import APIException

from twig_project.workspace.llm.errors import LLMError


class ProviderAPIError(APIException):
    """An :class:`~twig_project.workspace.llm.errors.LLMError` as an API answer (its status, code and detail)."""

    status_code = 502
    default_code = "provider_error"
    default_detail = "The model provider could not answer."

    def __init__(self, error: LLMError) -> None:
        self.status_code = error.status
        self.twig_code = error.code  # read by twig_auth.contrib.rest_framework.exceptions
        super().__init__(error.detail, error.code)


def as_api_error(error: LLMError) -> ProviderAPIError:
    return ProviderAPIError(error)
