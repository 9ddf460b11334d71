"""docs/reference.md stands for the code: every API operation, every message template, and the default rules
as `default_document()` has them. A change to either that the page does not follow fails here."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from app.escalation.grading import Severity
from app.escalation.rules.schemas import default_document
from app.notify import templates

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")


def _table(marker: str) -> list[list[str]]:
    """The rows of the Markdown table after `<!-- marker…`, header and rule left out, cells stripped."""
    lines = REFERENCE[REFERENCE.index(f"<!-- {marker}") :].splitlines()[1:]
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows[2:]


def test_every_api_operation_is_in_the_reference(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    operations = [f"`{method.upper()} {path}`" for path, ops in spec["paths"].items() for method in ops]
    missing = [op for op in operations if op not in REFERENCE]
    assert missing == [], f"add these to docs/reference.md (## API): {missing}"
    named = set(re.findall(r"`((?:GET|POST|PUT|PATCH|DELETE) /[^`]*)`", REFERENCE.split("## API", 1)[1]))
    assert named <= {op.strip("`") for op in operations}, f"gone from the API: {named - set(operations)}"


def test_every_message_template_is_in_the_reference() -> None:
    rows = {row[0].strip("`"): row[1] for row in _table("templates-table")}
    assert set(rows) == set(templates.TEMPLATES)
    for name, text in templates.TEMPLATES.items():
        assert rows[name] == text, name


def test_the_default_rules_are_as_the_reference_says() -> None:
    rules = default_document()
    yes = {True: "yes", False: "no"}
    for row in _table("rules-table"):
        level, lead, must, informed, window, first, follow, at_once, voice = row
        rule = rules.levels[Severity(level)]
        assert lead == rule.lead_tier.value, level
        assert must == ", ".join(t.value for t in rule.must_acknowledge), level
        assert informed == (", ".join(t.value for t in rule.informed) or "—"), level
        assert window == f"{rule.ack_window_seconds} s" and first == f"{rule.first_report_due_seconds} s", level
        assert follow == f"{rule.follow_up_interval_seconds} s", level
        assert (at_once, voice) == (yes[rule.leader_at_once], yes[rule.voice_for_leaders]), level
    assert sorted(row[0] for row in _table("rules-table")) == sorted(s.value for s in rules.levels)
    agencies = {row[0]: row[1] for row in _table("agencies-table")}
    assert agencies == {c: ", ".join(a.value for a in kinds) for c, kinds in rules.category_agencies.items()}


def test_the_readme_links_the_reference() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "(docs/reference.md" in readme
