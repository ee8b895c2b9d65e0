"""Reading the step-up prompt in tests: the original POST it re-posts after the code."""

from __future__ import annotations

import html
import re
from typing import Any

from tests.pages.conftest import text

CODE = "twig_step_up_code"


def replayed(response: Any) -> dict[str, list[str]]:
    """The hidden fields of the prompt's code form (the original POST), ready to post again."""
    form = re.search(rf'<form[^>]*>(?:(?!</form>).)*name="{CODE}"(?:(?!</form>).)*</form>', text(response), re.S)
    assert form, "no step-up code form on the page"
    fields: dict[str, list[str]] = {}
    for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form.group(0)):
        if name != "csrfmiddlewaretoken":
            fields.setdefault(html.unescape(name), []).append(html.unescape(value))
    return fields
