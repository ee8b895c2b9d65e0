"""The HTTP calls of connectors: token endpoint, revocation endpoint and the provider's API probe.

Every call has a timeout (``CONNECTOR_HTTP_TIMEOUT``), follows no redirect (a token endpoint that redirects
is misconfigured, and following it could send the client secret elsewhere), reads at most :data:`MAX_BYTES`
and ignores proxy settings for loopback providers. Failures become :class:`HttpFailure` with a short reason
that never quotes the provider's body (it may echo a token).
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus, urlencode, urlsplit

from twig_auth.connectors.providers import Provider, _is_loopback

MAX_BYTES = 1_000_000
USER_AGENT = "twig-auth-connectors/1"


class HttpFailure(Exception):
    """The provider could not be reached or answered something unusable (no status, a timeout, a redirect)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: bytes = field(repr=False)

    def json(self) -> dict[str, Any] | None:
        """The body as a JSON object, or None when it is not one."""
        try:
            value = json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None
        return value if isinstance(value, dict) else None


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        return None  # the 3xx reaches the caller as an HTTPError and is refused there


def _timeout() -> float:
    from twig_auth.conf import app_settings

    return float(app_settings.CONNECTOR_HTTP_TIMEOUT)


def send(url: str, *, data: dict[str, str] | None = None, headers: dict[str, str] | None = None) -> HttpAnswer:
    """POST ``data`` form-encoded to ``url`` (GET without data); return the status and body, whatever the status.

    Raise :class:`HttpFailure` when there is no usable answer (unreachable, timeout, redirect, too large).
    """
    host = urlsplit(url).hostname or ""
    handlers: list[Any] = [_NoRedirects()]
    if _is_loopback(host):
        handlers.append(urllib.request.ProxyHandler({}))
    opener = urllib.request.build_opener(*handlers)
    body = urlencode(data).encode("ascii") if data is not None else None
    request = urllib.request.Request(  # noqa: S310  (provider URLs are https, or http on loopback: validated)
        url, data=body, method="POST" if body is not None else "GET",
        headers={"Accept": "application/json", "User-Agent": USER_AGENT, **(headers or {})})
    if body is not None:
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
    timeout = _timeout()
    try:
        with opener.open(request, timeout=timeout) as response:
            status, payload = response.status, response.read(MAX_BYTES + 1)
    except urllib.error.HTTPError as exc:
        if 300 <= exc.code < 400:
            raise HttpFailure(f"the provider answered a redirect (HTTP {exc.code})") from None
        try:
            status, payload = exc.code, exc.read(MAX_BYTES + 1)
        except OSError:
            status, payload = exc.code, b""
    except TimeoutError:
        raise HttpFailure(f"the provider did not answer within {timeout:g} seconds") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError):
            raise HttpFailure(f"the provider did not answer within {timeout:g} seconds") from None
        raise HttpFailure(f"the provider could not be reached ({type(reason).__name__})") from None
    if len(payload) > MAX_BYTES:
        raise HttpFailure("the provider's answer is too large")
    return HttpAnswer(status=status, body=payload)


def client_auth(provider: Provider, data: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """Return ``(form, headers)`` authenticating the client as the provider expects (RFC 6749 §2.3.1)."""
    if provider.token_endpoint_auth_method == "client_secret_post":
        return {**data, "client_id": provider.client_id, "client_secret": provider.client_secret}, {}
    # client_secret_basic: both parts form-urlencoded first (RFC 6749 §2.3.1), then base64
    pair = f"{quote_plus(provider.client_id)}:{quote_plus(provider.client_secret)}"
    return dict(data), {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode("ascii")}
