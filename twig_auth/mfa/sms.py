"""SMS gateways: where a text message goes. Chosen by ``TWIG_AUTH["MFA_SMS_GATEWAY"]`` (a class path).

A gateway is any class with ``send(to, body)`` that raises :class:`GatewayError` when the provider refuses.
Two ship here:

- :class:`ConsoleGateway` (default) prints the message to standard output: for development and tests. It
  is the only place a code is ever written out.
- :class:`TwilioGateway` posts to a Twilio-compatible Messages API (``TWIG_AUTH["MFA_TWILIO"]``). Its errors
  and logs name the provider's status, never the message body.
"""

from __future__ import annotations

import base64
import json
import logging
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Protocol

from django.utils.module_loading import import_string

logger = logging.getLogger("twig_auth.mfa.sms")


class GatewayError(Exception):
    """The provider did not accept the message. The text never contains the message body."""


class SmsGateway(Protocol):
    def send(self, to: str, body: str) -> None: ...


class ConsoleGateway:
    """Print each message to standard output as ``[sms to +14155552671] Your Twig code is 123456 …``."""

    def send(self, to: str, body: str) -> None:
        sys.stdout.write(f"[sms to {to}] {body}\n")
        sys.stdout.flush()


class TwilioGateway:
    """POST ``{BASE_URL}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json`` with HTTP Basic auth and the form
    fields ``To``, ``From`` and ``Body``; a 2xx answer is success. Works with Twilio and with services that
    speak its API."""

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        from twig_auth.conf import app_settings

        opts = options if options is not None else app_settings.MFA_TWILIO
        missing = [k for k in ("ACCOUNT_SID", "AUTH_TOKEN", "FROM") if not opts.get(k)]
        if missing:
            raise GatewayError(f"TWIG_AUTH['MFA_TWILIO'] is missing {', '.join(missing)}.")
        self.sid, self.token, self.sender = opts["ACCOUNT_SID"], opts["AUTH_TOKEN"], opts["FROM"]
        self.base = str(opts.get("BASE_URL") or "https://api.twilio.com").rstrip("/")
        self.timeout = float(opts.get("TIMEOUT", 10))

    def send(self, to: str, body: str) -> None:
        url = f"{self.base}/2010-04-01/Accounts/{urllib.parse.quote(self.sid, safe='')}/Messages.json"
        data = urllib.parse.urlencode({"To": to, "From": self.sender, "Body": body}).encode()
        credentials = base64.b64encode(f"{self.sid}:{self.token}".encode()).decode()
        request = urllib.request.Request(url, data=data, method="POST", headers={  # noqa: S310 (https or test URL)
            "Authorization": f"Basic {credentials}", "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                status = response.status
                payload = response.read(65536)
        except urllib.error.HTTPError as exc:
            raise GatewayError(f"SMS provider answered HTTP {exc.code}: {_provider_message(exc.read(4096))}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise GatewayError(f"SMS provider unreachable: {type(exc).__name__}") from None
        if not 200 <= status < 300:
            raise GatewayError(f"SMS provider answered HTTP {status}: {_provider_message(payload)}")


def _provider_message(payload: bytes) -> str:
    """The provider's error ``message`` (Twilio's JSON shape), shortened; never our request body."""
    try:
        message = json.loads(payload or b"{}").get("message", "")
    except (ValueError, AttributeError):
        message = ""
    return str(message)[:200] or "no details"


_gateway: SmsGateway | None = None


def get_gateway() -> SmsGateway:
    """Return the configured gateway, built once (until ``TWIG_AUTH`` changes)."""
    global _gateway
    if _gateway is None:
        from twig_auth.conf import app_settings

        _gateway = import_string(app_settings.MFA_SMS_GATEWAY)()
    return _gateway


def reset() -> None:
    global _gateway
    _gateway = None
