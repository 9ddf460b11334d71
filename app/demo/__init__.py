"""The demo data set: agencies with API keys, a city admin and a few people at each tier.

Idempotent: keys and the demo password are derived from a per-installation secret, so running
`dutyline demo` again prints the same credentials and creates nothing new.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from sqlmodel import Session, select

from app.auth import api_keys, tokens
from app.auth.models import ApiKey
from app.auth.principal import Principal
from app.clock import Clock
from app.demo import roster as roster_demo
from app.escalation.rules import service as rules_service
from app.org import agencies, people
from app.org.models import Agency, Person
from app.org.schemas import AgencyCreate, PersonCreate

ACTOR = Principal.system("demo")

AGENCIES = [
    ("110", "北京市公安局110指挥中心", "police"),
    ("119", "北京市消防救援总队119指挥中心", "fire"),
    ("120", "北京急救中心120", "ambulance"),
    ("gas", "北京燃气集团96777", "gas"),
    ("health", "北京市卫生健康委员会", "health"),
    ("122", "北京市公安局公安交通管理局122", "traffic"),
]

# (username, name, unit, roles, phone)
PEOPLE = [
    ("admin", "市应急值守管理员", "110000", ["admin"], "+8613800000000"),
    ("city.duty", "王海（市值班员）", "110000", ["duty_officer"], "+8613800000001"),
    ("city.leader", "李明（市带班领导）", "110000", ["leader"], "+8613800000002"),
    ("fengtai.admin", "丰台区值守管理员", "110106", ["unit_admin"], "+8613800000010"),
    ("fengtai.duty", "张伟（丰台区值班员）", "110106", ["duty_officer"], "+8613800000011"),
    ("fengtai.leader", "刘洋（丰台区带班领导）", "110106", ["leader"], "+8613800000012"),
    ("chaoyang.admin", "朝阳区值守管理员", "110105", ["unit_admin"], "+8613800000020"),
    ("street.duty", "陈静（右安门街道值班员）", "110106001", ["duty_officer"], "+8613800000101"),
    ("street.leader", "赵强（右安门街道带班领导）", "110106001", ["leader"], "+8613800000102"),
]

SCOPES = ["incidents:write", "incidents:read", "heartbeats:write", "webhooks:read", "webhooks:write"]


def _derived(secret: str, label: str) -> str:
    return hmac.new(secret.encode(), label.encode(), hashlib.sha256).hexdigest()


def install(session: Session, *, clock: Clock) -> str:
    """Create what is missing of the demo set and describe all of it (with credentials)."""
    secret = tokens.instance_secret(session, "demo", clock=clock)
    password = os.environ.get("DUTYLINE_DEMO_PASSWORD") or "Demo-" + _derived(secret, "password")[:10]
    lines = ["Demo installed. Sign in at /docs or the console with any of these (password below):"]
    for username, name, unit, roles, phone in PEOPLE:
        if session.exec(select(Person).where(Person.username == username)).first() is None:
            people.create(
                session,
                clock=clock,
                actor=ACTOR,
                data=PersonCreate(
                    name=name, phone=phone, unit_code=unit, roles=roles, username=username, password=password
                ),
            )
        lines.append(f"  {username:<16} {', '.join(roles):<14} {unit}  {name}")
    lines.append(f"  password: {password}")
    lines.append("Agency API keys (send as X-API-Key):")
    for code, name, kind in AGENCIES:
        agency = session.exec(select(Agency).where(Agency.code == code)).first()
        if agency is None:
            agency, _ = agencies.create(
                session, clock=clock, actor=ACTOR, data=AgencyCreate(code=code, name=name, kind=kind)
            )
        key = f"{api_keys.KEY_PREFIX}_demo{code}_{_derived(secret, 'key:' + code)[:40]}"
        if session.exec(select(ApiKey).where(ApiKey.digest == api_keys.digest(key))).first() is None:
            assert agency.id is not None
            session.add(
                ApiKey(
                    agency_id=agency.id,
                    prefix=f"demo{code}",
                    digest=api_keys.digest(key),
                    scopes=SCOPES,
                    created_at=clock.now(),
                )
            )
        lines.append(f"  {code:<7} {key}")
    session.flush()
    lines.extend(roster_demo.install(session, clock=clock))
    lines.append(_short_windows(session, clock=clock))
    return "\n".join(lines)


DEMO_WINDOW_SECONDS = 60


def _short_windows(session: Session, *, clock: Clock) -> str:
    """The demo escalates every minute instead of every 3 to 5, so a visitor sees it happen."""
    current = rules_service.current(session)
    if current.version == 1:
        document = current.model_dump(mode="json")
        for level in document["levels"].values():
            level["ack_window_seconds"] = DEMO_WINDOW_SECONDS
        current = rules_service.replace(session, clock=clock, actor=ACTOR, document=document)
    windows = sorted({rule.ack_window_seconds for rule in current.levels.values()})
    return (
        f"Response rules: version {current.version}, acknowledgement windows {windows} s (PUT /api/v1/response-rules)."
    )
