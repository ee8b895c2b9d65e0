"""TOTP devices (django-otp's ``TOTPDevice``): enrollment material and atomic, replay-proof verification.

django-otp's own ``verify_token`` reads ``last_t`` and saves later, so two concurrent requests with one code
can both pass. Here the matched time step is consumed by one conditional UPDATE (``last_t < t``): exactly one
request wins, and any code at or before the last accepted step is refused.
"""

from __future__ import annotations

import base64
import io
from urllib.parse import quote, urlencode

import qrcode
import qrcode.image.svg
from django_otp.plugins.otp_totp.models import TOTPDevice

from twig_auth.conf import app_settings
from twig_auth.core import clock
from twig_auth.mfa import codes

DEFAULT_NAME = "Authenticator app"


def new_device(user: object, name: str = DEFAULT_NAME) -> TOTPDevice:
    """Create an unconfirmed device with a fresh 160-bit secret, replacing any earlier unconfirmed one."""
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    return TOTPDevice.objects.create(user=user, name=name[:64], confirmed=False, step=30, digits=6, t0=0)


def secret_b32(device: TOTPDevice) -> str:
    """The secret as authenticator apps want it typed: base32, no padding."""
    return base64.b32encode(device.bin_key).decode("ascii").rstrip("=")


def provisioning_uri(device: TOTPDevice, account: str) -> str:
    """The ``otpauth://totp/...`` URI an app scans (Key Uri Format: SHA1, 6 digits, 30 s)."""
    issuer = app_settings.MFA_TOTP_ISSUER.replace(":", "")
    label = quote(f"{issuer}:{account}", safe="@:")
    query = urlencode({"secret": secret_b32(device), "issuer": issuer, "algorithm": "SHA1",
                       "digits": device.digits, "period": device.step}, quote_via=quote)
    return f"otpauth://totp/{label}?{query}"


def qr_svg(uri: str) -> str:
    """An inline ``<svg>`` QR code of ``uri`` (no XML prologue, sized by CSS)."""
    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2)
    buffer = io.BytesIO()
    image.save(buffer)
    svg = buffer.getvalue().decode("utf-8")
    return svg[svg.index("<svg"):]


def params_of(device: TOTPDevice) -> codes.TotpParams:
    return codes.TotpParams(step=device.step, t0=device.t0, digits=device.digits, drift=device.drift)


def consume(device: TOTPDevice, code: str) -> bool:
    """Return True if ``code`` is valid now and newer than the last accepted one; record its step atomically."""
    now = clock.now()
    step = codes.totp_match(device.bin_key, code, at=now.timestamp(), params=params_of(device),
                            tolerance=app_settings.MFA_TOTP_TOLERANCE, last_t=device.last_t)
    if step is None:
        return False
    won = TOTPDevice.objects.filter(pk=device.pk, last_t__lt=step).update(last_t=step, last_used_at=now)
    if won:
        device.last_t = step
    return won == 1
