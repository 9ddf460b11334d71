"""docs/operations.md lists the texts to get approved by each provider: they must be the texts the service sends."""

from __future__ import annotations

from pathlib import Path

from app.notify.message_templates import approval_table

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def test_the_operations_guide_lists_the_texts_the_service_sends() -> None:
    table = approval_table()
    doc = DOC.read_text()
    missing = [line for line in table.splitlines() if line.startswith("| `") and line not in doc]
    assert missing == [], (
        "docs/operations.md is behind app/notify/templates.py: replace its tables under 'Templates to get approved' "
        "with the output of `python -m app.notify.message_templates`. Missing or changed rows:\n" + "\n".join(missing)
    )
