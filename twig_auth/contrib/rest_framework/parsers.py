"""A JSON parser that answers 400 instead of 500 to hostile bodies.

DRF's parser reads the whole body however large it is and lets ``RecursionError`` (``[[[[…``) escape as a
server error. This one refuses bodies above ``DATA_UPLOAD_MAX_MEMORY_SIZE`` and too-deep documents with a
``ParseError`` (400 ``invalid``).
"""

from __future__ import annotations

import codecs
import json
from typing import Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError

DEFAULT_MAX_BYTES = 2_621_440


def _reject_constant(token: str) -> Any:
    raise ValueError(f"{token} is not valid JSON.")


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict[str, Any] | None = None) -> Any:
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        limit = getattr(settings, "DATA_UPLOAD_MAX_MEMORY_SIZE", None) or DEFAULT_MAX_BYTES
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise ParseError(f"The request body is larger than {limit} bytes.")
        try:
            text = codecs.decode(raw, encoding)
            return json.loads(text, parse_constant=_reject_constant)
        except RecursionError as exc:
            raise ParseError("JSON parse error - the document is nested too deeply.") from exc
        except (ValueError, LookupError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
