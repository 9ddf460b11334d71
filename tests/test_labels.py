"""One set of labels (app.labels): the copies are gone, actors are named in bulk, levels are said unambiguously."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from sqlalchemy import event
from sqlmodel import Session

from app import labels
from app.clock import ManualClock
from app.escalation.grading import Severity
from app.incidents.categories import Category
from app.notify import templates
from app.org.models import Role
from tests.factories import make_agency, make_person

APP = Path(__file__).resolve().parents[1] / "app"
CJK = re.compile(r"[\u4e00-\u9fff]")


def test_every_code_of_the_domain_enums_has_a_label() -> None:
    assert set(labels.CATEGORIES) == {c.value for c in Category}
    assert set(labels.SEVERITIES) == {s.value for s in Severity}
    assert set(labels.ROLES) == {r.value for r in Role}
    assert labels.label("delivery_statuses", "delivered") == "已送达"
    assert labels.label("channels", "sms") == "短信"
    assert labels.label("tiers", "street") == "街道/乡镇"
    assert labels.label("channels", "carrier_pigeon") == "carrier_pigeon"  # unknown codes are shown as they are
    assert labels.level("III") == "较大(III级)" and labels.level("I") == "特别重大(I级)"
    assert labels.field("casualties.deaths") == "死亡人数" and labels.field("to.units.0") == "接收单位"


def test_the_messages_use_the_same_labels() -> None:
    text = templates.render("report_overdue", {"code": "F1", "unit": "丰台区", "report": "follow_up", "due": "10:00"})
    assert "续报" in text
    assert Severity.III.label == labels.SEVERITIES["III"]


def _code(key: ast.expr | None) -> object:
    """A dict key as the code it stands for: "first", or an enum member (`ReportKind.first` → "first")."""
    if isinstance(key, ast.Constant):
        return key.value
    if isinstance(key, ast.Attribute):
        return key.attr
    return None


def _chinese_code_dicts(path: Path) -> list[int]:
    """Line numbers of dict literals mapping several lower-case codes (strings or enum members) to short Chinese
    names (a copy of a label set; flash messages and message templates are sentences, not names)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Dict) or len(node.keys) < 3:
            continue
        pairs = [
            (_code(k), v.value)
            for k, v in zip(node.keys, node.values, strict=True)
            if isinstance(v, ast.Constant) and isinstance(v.value, str)
        ]
        coded = [
            k
            for k, v in pairs
            if isinstance(k, str)
            and re.fullmatch(r"[a-z_]+", k)
            and re.fullmatch(r"[^。{}]{1,10}", v)
            and CJK.search(v)
        ]
        if len(coded) >= 3:
            found.append(node.lineno)
    return found


def test_no_module_but_labels_keeps_its_own_copy_of_a_label_set() -> None:
    copies = {
        str(p.relative_to(APP)): lines
        for p in APP.rglob("*.py")
        if p.name != "labels.py" and "simulator" not in p.parts and (lines := _chinese_code_dicts(p))
    }
    assert copies == {}


def test_actors_are_named_in_one_query_per_kind(session: Session, clock: ManualClock) -> None:
    chen = make_person(session, clock, unit="110106001", roles=["duty_officer"], name="陈静", username="street.duty")
    li = make_person(session, clock, unit="110106", roles=["leader"], name="李明")
    make_agency(session, clock, code="119", kind="fire")
    statements: list[str] = []

    def count(*args: object) -> None:
        if str(args[2]).lstrip().upper().startswith("SELECT"):
            statements.append(str(args[2]))

    bind = session.get_bind()
    event.listen(bind, "before_cursor_execute", count)
    try:
        names = labels.actors(
            session,
            [
                f"person:{chen.id}:street.duty",
                f"person:{li.id}",
                "agency:119",
                "agency:999",
                "system:escalation",
                "person:424242:gone",
                None,
            ],
        )
    finally:
        event.remove(bind, "before_cursor_execute", count)
    assert len(statements) == 2
    assert names[f"person:{chen.id}:street.duty"] == "右安门街道 陈静"
    assert names[f"person:{li.id}"] == "丰台区 李明"
    assert names["agency:119"] == "agency 119"  # the agency's own name
    assert names["agency:999"] == "对接单位 999"
    assert names["system:escalation"] == "系统(自动升级)"
    assert names["person:424242:gone"] == "gone"
    assert labels.actor(session, f"person:{chen.id}:street.duty") == "右安门街道 陈静"
