"""The contract's password rules as one Django validator that reports every violated rule at once."""

from __future__ import annotations

import unicodedata
from typing import Any

from django.core.exceptions import ValidationError

from twig_auth.conf import app_settings


def password_problems(password: str) -> list[ValidationError]:
    """Return one error per rule ``password`` breaks (empty when it is acceptable)."""
    problems: list[ValidationError] = []
    min_length, max_length = app_settings.PASSWORD_MIN_LENGTH, app_settings.PASSWORD_MAX_LENGTH
    if len(password) < min_length:
        problems.append(ValidationError(f"Use at least {min_length} characters.", code="password_too_short"))
    if len(password) > max_length:
        problems.append(ValidationError(f"Use at most {max_length} characters.", code="password_too_long"))
    if "\x00" in password:
        problems.append(ValidationError("The password cannot contain a null character.",
                                        code="password_invalid_character"))
    if app_settings.PASSWORD_REQUIRE_CLASSES:
        if not any(c.isupper() for c in password):
            problems.append(ValidationError("Add an uppercase letter.", code="password_no_upper"))
        if not any(c.islower() for c in password):
            problems.append(ValidationError("Add a lowercase letter.", code="password_no_lower"))
        if not any(c.isdigit() for c in password):
            problems.append(ValidationError("Add a digit.", code="password_no_digit"))
        if not any(_is_special(c) for c in password):
            problems.append(ValidationError("Add a special character such as ! ? # or %.",
                                            code="password_no_special"))
    return problems


def _is_special(char: str) -> bool:
    """Punctuation and symbols count as special; letters, digits, spaces and control characters do not."""
    return unicodedata.category(char)[0] in ("P", "S")


class ComplexityValidator:
    """Django ``AUTH_PASSWORD_VALIDATORS`` entry enforcing the twig_auth password rules."""

    def validate(self, password: str, user: Any = None) -> None:
        problems = password_problems(password)
        if problems:
            raise ValidationError(problems)

    def get_help_text(self) -> str:
        return (f"At least {app_settings.PASSWORD_MIN_LENGTH} characters, with an uppercase letter, "
                "a lowercase letter, a digit and a special character.")
