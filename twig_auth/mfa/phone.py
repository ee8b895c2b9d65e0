"""Phone numbers for SMS codes: parsed and validated with ``phonenumbers`` (libphonenumber), kept in E.164."""

from __future__ import annotations

import phonenumbers

from twig_auth.exceptions import InvalidInput

MESSAGE = "Enter a mobile number in international form, starting with + and the country code, e.g. +14155552671."


def normalize_phone(raw: object, field: str = "number") -> str:
    """Return ``raw`` as E.164 (``+14155552671``) or raise :class:`InvalidInput` naming ``field``."""
    text = str(raw or "").strip()
    if not text or len(text) > 32 or not text.startswith("+"):
        raise InvalidInput({field: [MESSAGE]})
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        raise InvalidInput({field: [MESSAGE]}) from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidInput({field: ["This is not a valid phone number for its country code."]})
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
