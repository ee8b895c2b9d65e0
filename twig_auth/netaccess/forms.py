"""Form fields of the IP allowlist pages: CIDR ranges typed one per line, with ``#`` comments."""

from __future__ import annotations

import ipaddress
from typing import Any

from django import forms

MAX_RANGES = 500
MAX_TEXT = 64_000


def parse_lines(text: str) -> tuple[list[str], list[str]]:
    """Return ``(ranges, errors)`` for text with one CIDR range per line.

    Blank lines and everything after ``#`` are ignored; each bad line is reported with its line number, so a
    long list can be fixed in one go. A bare address (``10.0.0.5``) is taken as a single host.
    """
    ranges: list[str] = []
    errors: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        value = line.split("#", 1)[0].strip()
        if not value:
            continue
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            errors.append(f"Line {number}: {value[:60]!r} is not an IPv4 or IPv6 range such as 192.168.1.0/24 "
                          "or 2001:db8::/64.")
            continue
        ranges.append(value)
    if len(ranges) > MAX_RANGES:
        errors.append(f"At most {MAX_RANGES} ranges; this list has {len(ranges)}.")
    return ranges, errors


class CidrLinesField(forms.CharField):
    """A textarea whose cleaned value is the list of ranges it holds (``[]`` when empty)."""

    widget = forms.Textarea

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_length", MAX_TEXT)
        kwargs.setdefault("strip", False)
        super().__init__(**kwargs)
        self.widget.attrs.update({"rows": 8, "spellcheck": "false", "autocomplete": "off",
                                  "class": "code-editor code-editor--short"})

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return "\n".join(str(v) for v in value)
        return value

    def clean(self, value: Any) -> list[str]:  # type: ignore[override]
        text = super().clean(value) or ""
        ranges, errors = parse_lines(text)
        if errors:
            raise forms.ValidationError(errors)
        return ranges
