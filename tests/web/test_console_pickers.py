"""Units are picked from the units of one's scope, never typed as codes; the server still checks what comes back."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from app.clock import ManualClock
from app.incidents.models import Incident
from app.notices.models import NoticeReceipt
from tests.duty import children, staff
from tests.factories import make_person
from tests.web.helpers import console_sign_in

CITY, DISTRICT, OTHER_DISTRICT = "110000", "110106", "110105"


def _select(page: str, name: str) -> str:
    found = re.search(rf'<select name="{name}"[^>]*>(.*?)</select>', page, re.S)
    assert found, f"a <select name={name}> on the page"
    return found.group(1)


def _codes(select: str) -> list[str]:
    return re.findall(r'<option value="(\d+)"', select)


def test_no_console_form_asks_for_a_unit_code_to_be_typed(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    staff(session, clock, [DISTRICT], login={DISTRICT})
    console_sign_in(client, f"duty_officer.{DISTRICT}")
    pages = ["/console/board", "/console/incidents/new", "/console/rosters", "/console/notices/new",
             "/console/rollcalls", "/console/hazards", "/console/hazards/new"]  # fmt: skip
    for path in pages:
        page = client.get(path)
        assert page.status_code == 200, path
        typed = re.findall(r'<input(?![^>]*type="hidden")[^>]*name="(unit|unit_code|units)"', page.text)
        assert typed == [], f"{path} asks for a unit code to be typed"
        assert 'class="unit-picker"' in page.text, f"{path} has a unit picker"


def test_the_intake_picker_offers_the_scope_and_the_server_refuses_a_unit_outside_it(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    streets = children(session, DISTRICT)
    staff(session, clock, [DISTRICT], login={DISTRICT})
    csrf = console_sign_in(client, f"duty_officer.{DISTRICT}")
    picker = _select(client.get("/console/incidents/new").text, "unit_code")
    assert _codes(picker) == [DISTRICT, *streets]  # the district, then its streets in order
    assert "<optgroup" not in picker  # one district: nothing to group
    assert f'<option value="{DISTRICT}" selected>' in picker

    form = {"csrf": csrf, "category": "fire", "title": "仓库起火", "occurred_at": "2026-04-18T11:50",
            "unit_code": f"{OTHER_DISTRICT}001"}  # fmt: skip
    refused = client.post("/console/incidents/new", data=form)
    assert 400 <= refused.status_code < 500 and "<html" in refused.text
    session.rollback()
    assert session.exec(select(func.count()).select_from(Incident)).one() == 0
    ok = client.post("/console/incidents/new", data={**form, "unit_code": streets[1]}, follow_redirects=False)
    assert ok.status_code == 303, ok.text
    session.rollback()
    assert session.exec(select(Incident)).one().unit_path.endswith(streets[1])


def test_a_city_picker_is_grouped_by_district(client: TestClient, session: Session, clock: ManualClock) -> None:
    staff(session, clock, [CITY], login={CITY})
    console_sign_in(client, f"duty_officer.{CITY}")
    picker = _select(client.get("/console/incidents/new").text, "unit_code")
    groups = re.findall(r'<optgroup label="([^"]+)">(.*?)</optgroup>', picker, re.S)
    assert len(groups) == 17 and groups[0][0] == "北京市"  # the city, then its 16 districts
    fengtai = next(body for label, body in groups if label == "丰台区")
    assert _codes(fengtai)[0] == DISTRICT and all(c.startswith(DISTRICT) for c in _codes(fengtai))
    # The roll-call's calling unit: the city and the districts; streets call no roll.
    calling = _codes(_select(client.get("/console/rollcalls").text, "unit_code"))
    assert calling[0] == CITY and len(calling) == 17 and DISTRICT in calling
    # A hazard belongs to a district or a street, never to the city itself.
    hazard = _codes(_select(client.get("/console/hazards/new").text, "unit_code"))
    assert CITY not in hazard and DISTRICT in hazard and f"{DISTRICT}001" in hazard


def test_a_street_sees_its_chain_in_the_roster_picker_and_only_itself_elsewhere(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    street = children(session, DISTRICT)[0]
    person = make_person(session, clock, unit=street, roles=["duty_officer"])
    console_sign_in(client, person.username or "")
    assert _codes(_select(client.get("/console/rosters").text, "unit")) == [CITY, DISTRICT, street]
    assert _codes(_select(client.get("/console/incidents/new").text, "unit_code")) == [street]


def test_a_notice_goes_to_the_units_picked(client: TestClient, session: Session, clock: ManualClock) -> None:
    streets = children(session, DISTRICT)
    staff(session, clock, [DISTRICT], login={DISTRICT})
    csrf = console_sign_in(client, f"duty_officer.{DISTRICT}")
    picker = _select(client.get("/console/notices/new").text, "units")
    assert _codes(picker) == streets  # below the issuer only
    r = client.post(
        "/console/notices/new",
        data={"csrf": csrf, "kind": "notice", "title": "防汛", "body": "准备", "scope": "", "minutes": "30",
              "units": [streets[0], streets[2]]},
        follow_redirects=False,
    )  # fmt: skip
    assert r.status_code == 303, r.text
    session.rollback()
    receipts = session.exec(select(NoticeReceipt)).all()
    assert len(receipts) == 2
    outside = client.post(
        "/console/notices/new",
        data={
            "csrf": csrf,
            "title": "越权",
            "body": "x",
            "scope": "",
            "minutes": "30",
            "units": [f"{OTHER_DISTRICT}001"],
        },
    )
    assert outside.status_code == 403
    session.rollback()
    assert len(session.exec(select(NoticeReceipt)).all()) == 2
