"""One set of labels (app.labels): the copies are gone, actors are named in bulk, levels are said unambiguously, and
Chinese text is punctuated full-width."""

from __future__ import annotations

import ast
import io
import re
import tokenize
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
    assert labels.level("III") == "较大（III级）" and labels.level("I") == "特别重大（I级）"
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


HALF_WIDTH = re.compile(r"[(),:;?]")
# Not punctuation of a sentence: a time (08:30), a URL, the input format "时:分" a refusal asks for.
NOT_PUNCTUATION = re.compile(r"\d:\d|://|时:分")
ENGLISH = re.compile(r"[A-Za-z]+[ ,;:]+[A-Za-z]{2,}")  # an English sentence that glosses a term in Chinese


def _half_width(text: str) -> bool:
    return bool(CJK.search(text)) and bool(HALF_WIDTH.search(NOT_PUNCTUATION.sub("", text)))


def _python_texts(path: Path) -> list[tuple[int, str]]:
    """The Chinese string literals of a module as a person reads them (placeholders left out): not docstrings, not
    raw strings (patterns), not English sentences."""
    source = path.read_text()
    docstrings = {
        (node.body[0].lineno, node.body[0].col_offset)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    texts = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type != tokenize.STRING or token.start in docstrings:
            continue
        prefix = re.match(r"[a-zA-Z]*", token.string)
        if prefix and "r" in prefix.group(0).lower():
            continue
        shown = re.sub(r"\{[^{}]*\}", "", token.string)
        if not ENGLISH.search(shown):
            texts.append((token.start[0], shown))
    return texts


def _template_texts(path: Path) -> list[tuple[int, str]]:
    """A template's lines as a person reads them: markup and Jinja tags left out, the attributes a person reads
    (confirm prompts, placeholders, titles) kept."""
    texts = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        read = re.findall(r'(?:data-confirm|placeholder|title|aria-label)="([^"]*)"', line)
        quoted = re.findall(r"'([^']*)'", " ".join(re.findall(r"\{\{.*?\}\}|\{%.*?%\}", line)))
        text = re.sub(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", "", line)
        texts += [(n, t) for t in [re.sub(r"<[^>]*>", "", text), *read, *quoted] if not ENGLISH.search(t)]
    return texts


def test_chinese_text_is_punctuated_full_width() -> None:
    found = [
        f"{p.relative_to(APP)}:{n}: {text.strip()}"
        for p in sorted(APP.rglob("*"))
        if "simulator" not in p.parts  # the simulators answer in their providers' own words
        for n, text in (_python_texts(p) if p.suffix == ".py" else _template_texts(p) if p.suffix == ".html" else [])
        if _half_width(text)
    ]
    assert found == []
    assert labels.level("III") == "较大（III级）" == templates.grade("III")


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
    assert names["system:escalation"] == "系统（自动升级）"
    assert names["person:424242:gone"] == "gone"
    assert labels.actor(session, f"person:{chen.id}:street.duty") == "右安门街道 陈静"
