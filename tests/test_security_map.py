"""docs/security.md, the OWASP ASVS 4.0.3 Level 2 map, stays true: every Level 2 requirement of V2, V3, V4, V6, V7
and V13 has exactly one row, every test it names exists, and the summary agrees with the rows."""

from __future__ import annotations

import ast
import re
from collections import Counter
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "security.md"


def _ids(prefix: str, *ranges: tuple[int, int]) -> list[str]:
    """``_ids("2.1", (1, 12))`` → 2.1.1 … 2.1.12."""
    return [f"{prefix}.{n}" for first, last in ranges for n in range(first, last + 1)]


# Level 2 requirements of OWASP ASVS 4.0.3 (4.0/docs_en/...-4.0.3-en.csv, column level2), per chapter. Left out:
# Level 3 only (2.2.4-2.2.7, 3.6.1-3.6.2, 6.2.7, 6.2.8, 6.3.3) and deleted ids (4.1.4, 7.3.2, 13.1.2, 13.2.4).
# 2.8.7 is optional ("o") at Level 2 and listed; 2.10.* are "OS assisted" at Level 2 and listed.
LEVEL_2: dict[str, list[str]] = {
    "V2": [*_ids("2.1", (1, 12)), *_ids("2.2", (1, 3)), *_ids("2.3", (1, 3)), *_ids("2.4", (1, 6)),
           *_ids("2.5", (1, 7)), *_ids("2.6", (1, 3)), *_ids("2.7", (1, 6)), *_ids("2.8", (1, 7)),
           *_ids("2.9", (1, 3)), *_ids("2.10", (1, 4))],
    "V3": ["3.1.1", *_ids("3.2", (1, 4)), *_ids("3.3", (1, 4)), *_ids("3.4", (1, 5)), *_ids("3.5", (1, 3)),
           "3.7.1"],
    "V4": ["4.1.1", "4.1.2", "4.1.3", "4.1.5", "4.2.1", "4.2.2", "4.3.1", "4.3.2", "4.3.3"],
    "V6": [*_ids("6.1", (1, 3)), *_ids("6.2", (1, 6)), "6.3.1", "6.3.2", "6.4.1", "6.4.2"],
    "V7": [*_ids("7.1", (1, 4)), "7.2.1", "7.2.2", "7.3.1", "7.3.3", "7.3.4", *_ids("7.4", (1, 3))],
    "V13": ["13.1.1", "13.1.3", "13.1.4", "13.1.5", "13.2.1", "13.2.2", "13.2.3", "13.2.5", "13.2.6", "13.3.1",
            "13.3.2", "13.4.1", "13.4.2"],
}
STATUSES = ("met", "partly", "not met", "n/a")
ROW = re.compile(r"^\|\s*(\d+\.\d+\.\d+)\s*\|(.*)\|\s*$")
TEST_REF = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


def _rows() -> list[dict[str, str]]:
    """The requirement rows of the chapter sections (``## V2 …`` to the end; the gap tables above are summaries)."""
    rows = []
    chapters = PAGE.read_text(encoding="utf-8").split("\n## V2 ", 1)[1]
    for line in chapters.splitlines():
        match = ROW.match(line)
        if not match:
            continue
        cells = [c.strip() for c in match.group(2).split("|")]
        assert len(cells) == 5, f"{match.group(1)}: expected 6 columns, got {len(cells) + 1}: {line[:120]}"
        requirement, applies, status, how, tests = cells
        rows.append({"id": match.group(1), "requirement": requirement, "applies": applies, "status": status,
                     "how": how, "tests": tests})
    return rows


def _chapter(requirement_id: str) -> str:
    return "V" + requirement_id.split(".")[0]


@cache
def _test_functions(path: str) -> frozenset[str]:
    file = ROOT / path
    if not file.is_file():
        return frozenset()
    tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
    return frozenset(node.name for node in tree.body
                     if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_"))


def test_the_level_2_list_has_the_size_of_asvs_4_0_3() -> None:
    assert {chapter: len(ids) for chapter, ids in LEVEL_2.items()} == {
        "V2": 54, "V3": 18, "V4": 9, "V6": 13, "V7": 12, "V13": 13}
    every = [i for ids in LEVEL_2.values() for i in ids]
    assert len(every) == len(set(every)) == 119


def test_every_level_2_requirement_has_exactly_one_row_and_no_other_id_has_one() -> None:
    counts = Counter(row["id"] for row in _rows())
    expected = {i for ids in LEVEL_2.values() for i in ids}
    assert sorted(i for i in expected if counts[i] == 0) == [], "missing rows"
    assert sorted(i for i, n in counts.items() if n > 1) == [], "ids with more than one row"
    assert sorted(set(counts) - expected) == [], "rows for ids that are not Level 2 requirements of these chapters"


def test_rows_are_in_the_chapter_order_of_the_standard() -> None:
    order = [i for ids in LEVEL_2.values() for i in ids]
    assert [row["id"] for row in _rows()] == order


def test_every_row_has_a_valid_status_and_says_whether_it_applies() -> None:
    for row in _rows():
        assert row["status"] in STATUSES, row["id"]
        assert row["applies"] in ("yes", "no"), row["id"]
        assert (row["applies"] == "no") == (row["status"] == "n/a"), f"{row['id']}: n/a exactly when it does not apply"
        assert row["requirement"] and row["how"], row["id"]


def test_met_rows_name_a_test_or_say_why_there_is_none() -> None:
    for row in _rows():
        refs = TEST_REF.findall(row["tests"])
        leftover = TEST_REF.sub("", row["tests"]).replace("<br>", "").strip()
        if refs:
            assert leftover == "", f"{row['id']}: the tests column holds only test references: {leftover!r}"
        elif row["status"] == "met":
            assert row["tests"].startswith("untested:"), f"{row['id']} is met: name a test or say 'untested: why'"
        else:
            assert row["tests"].startswith(("none:", "untested:")), f"{row['id']}: 'none: why' when no test applies"


def test_every_test_the_page_names_exists() -> None:
    refs = TEST_REF.findall(PAGE.read_text(encoding="utf-8"))
    assert len(refs) > 150
    missing = sorted({f"{path}::{name}" for path, name in refs if name not in _test_functions(path)})
    assert missing == []


def test_the_summary_counts_are_those_of_the_rows() -> None:
    text = PAGE.read_text(encoding="utf-8")
    counts: dict[str, Counter[str]] = {chapter: Counter() for chapter in LEVEL_2}
    for row in _rows():
        counts[_chapter(row["id"])][row["status"]] += 1
    for chapter, by_status in counts.items():
        match = re.search(rf"^\| {chapter} [^|]+\|" + r"\s*(\d+)\s*\|" * 5 + r"\s*$", text, re.M)
        assert match, f"no summary line for {chapter}"
        assert [int(n) for n in match.groups()] == [*(by_status[s] for s in STATUSES), len(LEVEL_2[chapter])], chapter
    total = Counter(row["status"] for row in _rows())
    match = re.search(r"^\| \*\*all\*\* \|" + r"\s*\*\*(\d+)\*\*\s*\|" * 5 + r"\s*$", text, re.M)
    assert match and [int(n) for n in match.groups()] == [*(total[s] for s in STATUSES), 119]


@pytest.mark.parametrize("status,heading", [("not met", "### Not met"), ("partly", "### Partly met")])
def test_the_gap_lists_name_exactly_the_rows_with_that_status(status: str, heading: str) -> None:
    text = PAGE.read_text(encoding="utf-8")
    section = text.split(heading, 1)[1].split("\n#", 1)[0]
    listed = set(re.findall(r"\b(\d+\.\d+\.\d+)\b", section))
    assert listed == {row["id"] for row in _rows() if row["status"] == status}
