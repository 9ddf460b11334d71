"""Reading and replacing the rules: the newest version, the version an incident was planned under."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app import audit
from app.auth.principal import Principal, authorize_whole_tree
from app.clock import Clock
from app.errors import Conflict, FieldError, Invalid
from app.escalation.rules.models import ResponseRules
from app.escalation.rules.schemas import RulesDocument, default_document


def _as_document(row: ResponseRules) -> RulesDocument:
    doc = RulesDocument.model_validate(row.document)
    return doc.model_copy(update={"version": row.version, "created_at": row.created_at, "created_by": row.created_by})


_NEWEST = select(ResponseRules).order_by(col(ResponseRules.version).desc()).limit(1)


def current(session: Session) -> RulesDocument:
    """The newest rules (the defaults, as version 1, until anyone replaces them)."""
    row = session.exec(_NEWEST).first()
    if row is None:
        return default_document().model_copy(update={"version": 1, "created_by": "default"})
    return _as_document(row)


def by_version(session: Session, version: int) -> RulesDocument:
    """The rules an incident was planned under. Version 1 is always the built-in defaults."""
    row = session.get(ResponseRules, version) if version > 1 else None
    if row is None:
        return default_document().model_copy(update={"version": 1, "created_by": "default"})
    return _as_document(row)


def replace(session: Session, *, clock: Clock, actor: Principal, document: dict[str, Any]) -> RulesDocument:
    """Validate and store a new version; the old ones stay for the incidents planned under them."""
    authorize_whole_tree(actor, "rules:write")
    try:
        parsed = RulesDocument.model_validate(document)
    except ValidationError as exc:
        fields = [
            FieldError(".".join(str(p) for p in e["loc"]) or "document", e["msg"].removeprefix("Value error, "))
            for e in exc.errors()
        ]
        raise Invalid(
            "the rules document is invalid: " + "; ".join(f"{f.field}: {f.message}" for f in fields[:5]), fields=fields
        ) from exc
    before = current(session)
    version = (before.version or 1) + 1
    body = parsed.model_dump(mode="json", exclude={"version", "created_at", "created_by"})
    row = ResponseRules(version=version, document=body, created_at=clock.now(), created_by=actor.actor)
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError as exc:
        raise Conflict("the rules were replaced concurrently; read them again and retry") from exc
    audit.record(
        session,
        clock=clock,
        actor=actor,
        action="rules.replace",
        object_type="response_rules",
        object_id=version,
        before={"version": before.version},
        after=body,
    )
    return _as_document(row)
