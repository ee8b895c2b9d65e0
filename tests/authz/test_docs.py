"""docs/authorization.md prints the role matrix from twig_auth/authz/matrix.py; the two never drift apart."""

from __future__ import annotations

import json
import re
from pathlib import Path

from twig_auth.authz import registry
from twig_auth.authz.matrix import ROLE_PERMISSIONS, Permission, matrix_markdown
from twig_auth.authz.policy_language import validate_policy

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGE = DOCS / "authorization.md"
START, END = "<!-- matrix:start -->\n", "<!-- matrix:end -->"


def test_the_page_holds_exactly_the_generated_matrix() -> None:
    text = PAGE.read_text()
    assert text.count(START) == 1 and text.count(END) == 1
    between = text.split(START, 1)[1].split(END, 1)[0]
    assert between == matrix_markdown(), (
        "docs/authorization.md is out of date: replace the text between the matrix markers with matrix_markdown()")


def test_the_matrix_names_every_permission_role_and_resource_type() -> None:
    table = matrix_markdown()
    for permission in Permission:
        row = next(line for line in table.splitlines() if line.startswith(f"| `{permission.value}` |"))
        marks = [cell.strip() for cell in row.strip("|").split("|")[2:]]
        assert marks == ["✓" if permission in ROLE_PERMISSIONS[r] else "" for r in
                         ("user", "manager", "admin", "super_admin")], permission
    for name in registry.all_types():
        assert f"| `{name}` |" in table
    # billing and deleting the org: super_admin only
    assert "| `org.billing` | billing |  |  |  | ✓ |" in table
    assert "| `agent` | — | `view`, `use`, `edit` |" in table  # a user holds nothing by role
    assert "| `agent` | `view`, `use`, `edit`, `manage`, `deploy` |" in table and "| `deploy` |" in table


def test_every_json_policy_example_in_the_page_is_valid() -> None:
    blocks = re.findall(r"```json\n(.*?)```", PAGE.read_text(), re.S)
    policies = [json.loads(b) for b in blocks if '"policy"' in b]
    assert len(policies) >= 5
    for document in policies:
        validate_policy(document, resource_types=registry.actions_by_type())


def test_the_index_links_the_page() -> None:
    assert "(authorization.md)" in (DOCS / "index.md").read_text()
