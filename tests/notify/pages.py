"""Pages as escalation writes them, queued straight into the outbox: rows with incident refs, for the notify tests."""

from __future__ import annotations

from sqlalchemy import Engine

from app.clock import Clock
from app.db import transaction
from app.notify import outbox


def enqueue_page(
    engine: Engine,
    clock: Clock,
    *,
    phone: str,
    incident_id: int,
    code: str,
    level: str = "III",
    category: str = "fire",
    unit: str = "右安门街道",
    title: str = "某医院住院部起火",
    step: int = 1,
    channel: str = "sms",
) -> int:
    template = "voice_page" if channel == "voice" else "incident_page"
    with transaction(engine) as session:
        row = outbox.enqueue(
            session,
            outbox.message(
                clock=clock,
                channel=channel,
                to=phone,
                template=template,
                params={
                    "level": level,
                    "category": category,
                    "unit": unit,
                    "title": title,
                    "code": code,
                    "window_seconds": 300,
                },
                dedup_key=f"page:{incident_id}:street:{step}:{phone}:{channel}",
                incident_id=incident_id,
                incident_code=code,
                tier="street",
                step=step,
            ),
        )
        assert row is not None
        return row
