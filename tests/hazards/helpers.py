"""Hazard scenarios: people at 右安门街道 and above, a hazard body, images to upload."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from PIL import Image
from sqlmodel import Session

from app.clock import ManualClock
from app.org.models import Person
from tests.factories import login, make_person

STREET = "110106001"  # 右安门街道, 丰台区
OTHER_STREET = "110106002"
DISTRICT = "110106"
OTHER_DISTRICT = "110105"
CITY = "110000"


@dataclass
class Team:
    """Signed-in headers by name (inspector and leader of the street, leader of the district, of the city…); signed in
    again when the test's clock has moved past the token's lifetime."""

    client: TestClient
    clock: ManualClock
    usernames: dict[str, str]
    people: dict[str, Person]
    tokens: dict[str, tuple[datetime, dict[str, str]]]

    def __getitem__(self, name: str) -> dict[str, str]:
        got = self.tokens.get(name)
        if got is None or self.clock.now() - got[0] > timedelta(minutes=20):
            got = (self.clock.now(), login(self.client, self.usernames[name]))
            self.tokens[name] = got
        return got[1]


def team(client: TestClient, session: Session, clock: ManualClock) -> Team:
    people = {
        "inspector": (STREET, ["inspector"]),
        "street_leader": (STREET, ["leader"]),
        "street_admin": (STREET, ["unit_admin"]),
        "street_duty": (STREET, ["duty_officer"]),
        "other_inspector": (OTHER_STREET, ["inspector"]),
        "district_leader": (DISTRICT, ["leader"]),
        "other_district_leader": (OTHER_DISTRICT, ["leader"]),
        "city_leader": (CITY, ["leader"]),
        "city_admin": (CITY, ["admin"]),
    }
    made = {}
    for name, (unit, roles) in people.items():
        made[name] = make_person(session, clock, unit=unit, roles=roles, username=f"hz.{name}")
    return Team(client, clock, {n: p.username or "" for n, p in made.items()}, made, {})


def hazard_body(clock: ManualClock, **overrides: Any) -> dict[str, Any]:
    found = clock.now()
    body: dict[str, Any] = {
        "unit_code": STREET,
        "venue": "右安门医院",
        "venue_category": "hospital",
        "address": "右安门外大街1号",
        "description": "住院部疏散通道堆放杂物,防火门常闭失效",
        "level": "major",
        "basis": "《重大火灾隐患判定方法》GB 35181-2017 第6.3条",
        "found_at": found.isoformat(),
        "source": "inspection",
        "responsible_org": "右安门医院",
        "responsible_person": "王院长",
        "responsible_phone": "13800138000",
        "deadline": (found.astimezone(clock_zone()).date() + timedelta(days=7)).isoformat(),
        "measures": "清理通道,修复防火门",
    }
    body.update(overrides)
    return body


def clock_zone() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo("Asia/Shanghai")


def image_bytes(kind: str = "JPEG", size: tuple[int, int] = (64, 48), exif: Any = None) -> bytes:
    out = io.BytesIO()
    image = Image.new("RGB", size, (180, 40, 40))
    if exif is not None:
        image.save(out, kind, exif=exif.tobytes())
    else:
        image.save(out, kind)
    return out.getvalue()


def create(client: TestClient, headers: dict[str, str], clock: ManualClock, **overrides: Any) -> dict[str, Any]:
    r = client.post("/api/v1/hazards", json=hazard_body(clock, **overrides), headers=headers)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def photo(
    client: TestClient, headers: dict[str, str], hazard_id: int, phase: str = "after", data: bytes | None = None
) -> Any:
    return client.post(
        f"/api/v1/hazards/{hazard_id}/photos",
        files={"file": ("photo.jpg", data if data is not None else image_bytes(), "image/jpeg")},
        data={"phase": phase},
        headers=headers,
    )
