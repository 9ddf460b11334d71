"""The board as a duty officer uses it: it leads with what waits for this tier's sign-off and the last handover,
asks for a check-in only from whoever holds a post, carries open incidents to the next shift, refreshes itself,
and every phone number dials."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.clock import ManualClock
from app.roster.models import HandoverNote
from tests.incidents.helpers import fire, key_for, staff_chain
from tests.web.helpers import console_sign_in

STREET = "110106001"


def _report(client: TestClient, session: Session, clock: ManualClock, **overrides: object) -> dict[str, object]:
    headers = key_for(session, clock, f"119-{len(overrides)}-{clock.now().timestamp()}")
    r = client.post("/api/v1/incidents", json=fire(**overrides), headers=headers)
    assert r.status_code == 201, r.text
    body: dict[str, object] = r.json()
    return body


def test_the_board_leads_with_incidents_waiting_for_this_tiers_sign_off_and_signs_there(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    staff = staff_chain(session, clock)
    inc = _report(client, session, clock)
    me = staff("street", "duty_officer")
    csrf = console_sign_in(client, me.username or "")
    page = client.get("/console/board").text
    waiting = page.index('id="waiting"')
    assert waiting < page.index('id="last-handover"') < page.index('id="chain"')  # what to act on comes first
    card = re.search(rf'<article class="incident[^"]*" data-code="{inc["code"]}".*?</article>', page, re.S)
    assert card, "the incident waiting for the street's sign-off is on the board"
    assert "签收（街道/乡镇）" in card.group(0) and 'name="back" value="board"' in card.group(0)
    assert 'data-overall="pending"' in card.group(0) and "待签收" in card.group(0)  # the true overall state

    r = client.post(f"/console/incidents/{inc['id']}/ack", data={"csrf": csrf, "back": "board"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/console/board")
    after = client.get(r.headers["location"]).text
    assert "已签收。" in after and f'data-code="{inc["code"]}"' not in after.split('id="last-handover"')[0]
    assert 'id="no-waiting"' in after

    # The city's duty officer is not required for a level-IV fire: nothing waits for them.
    console_sign_in(client, staff("city", "duty_officer").username or "")
    assert 'id="no-waiting"' in client.get("/console/board").text


def test_the_board_refreshes_itself_from_a_fragment(client: TestClient, session: Session, clock: ManualClock) -> None:
    staff = staff_chain(session, clock)
    console_sign_in(client, staff("street", "duty_officer").username or "")
    page = client.get(f"/console/board?unit={STREET}").text
    assert f'data-live="/console/board/live?unit={STREET}"' in page
    before = client.get(f"/console/board/live?unit={STREET}").text
    assert 'id="no-waiting"' in before and "<html" not in before and 'id="handover-form"' not in before
    inc = _report(client, session, clock)
    live = client.get(f"/console/board/live?unit={STREET}").text
    assert f'data-code="{inc["code"]}"' in live  # a new incident shows on the next poll, no reload
    assert client.get("/console/board/live?unit=110105").status_code == 403  # 朝阳区: outside the scope


def test_check_in_shows_only_for_ones_current_shift_and_not_once_done(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    staff = staff_chain(session, clock)
    on = staff("street", "duty_officer")
    csrf = console_sign_in(client, on.username or "")
    page = client.get("/console/board").text
    form = re.search(r'<form method="post" action="/console/check-in"[^>]*id="check-in-form">(.*?)</form>', page, re.S)
    assert form and f'name="unit_code" value="{STREET}"' in form.group(1) and 'value="duty_officer"' in form.group(1)
    r = client.post("/console/check-in", data={"csrf": csrf, "unit_code": STREET, "role": "duty_officer"})
    assert r.status_code == 200 and "已签到。" in r.text
    assert 'id="check-in-form"' not in r.text and 'id="checked-in"' in r.text

    # A street colleague with no shift now: no check-in button, just the plain fact.
    from tests.factories import make_person

    spare = make_person(session, clock, unit=STREET, roles=["duty_officer"])
    console_sign_in(client, spare.username or "")
    spare_page = client.get("/console/board").text
    assert 'action="/console/check-in"' not in spare_page and 'id="off-duty"' in spare_page


def test_the_handover_carries_open_incidents_linked_to_the_next_shift(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    staff = staff_chain(session, clock)
    inc = _report(client, session, clock)
    out = staff("street", "duty_officer")
    csrf = console_sign_in(client, out.username or "")
    page = client.get("/console/board").text
    carry = re.search(r'<fieldset class="carry" id="carry">(.*?)</fieldset>', page, re.S)
    assert carry and f'name="incidents" value="{inc["id"]}" checked' in carry.group(1)
    assert f'href="/console/incidents/{inc["id"]}"' in carry.group(1)

    # An incident id outside the viewer's scope is refused next to the list, and nothing is written.
    bad = client.post("/console/handover", data={"csrf": csrf, "notes": "x", "incidents": ["999999"]})
    assert bad.status_code == 422 and 'data-field="incidents"' in bad.text
    session.rollback()
    assert session.exec(select(HandoverNote)).all() == []

    from tests.factories import make_person

    nxt = make_person(session, clock, unit=STREET, roles=["duty_officer"], name="接班值班员")
    r = client.post(
        "/console/handover",
        data={"csrf": csrf, "notes": "夜间平稳", "open_items": "消防通道复查", "incoming": nxt.username,
              "incidents": [str(inc["id"])]},
    )  # fmt: skip
    assert r.status_code == 200 and "交接班记录已保存" in r.text
    session.rollback()
    note = session.exec(select(HandoverNote)).one()
    assert note.open_items == [f"事件 {inc['code']} {inc['title']}", "消防通道复查"]

    clock.advance(timedelta(minutes=10))
    console_sign_in(client, nxt.username or "")
    seen = client.get("/console/board").text
    handover = seen[seen.index('id="last-handover"') : seen.index('id="chain"')]
    assert "夜间平稳" in handover and "消防通道复查" in handover and "接班值班员" in handover
    assert f'<a href="/console/incidents/{inc["id"]}" data-incident="{inc["code"]}">' in handover
    assert client.get(f"/console/incidents/{inc['id']}").status_code == 200


def test_phone_numbers_are_tel_links(client: TestClient, session: Session, clock: ManualClock) -> None:
    staff = staff_chain(session, clock)
    me = staff("street", "duty_officer")
    console_sign_in(client, me.username or "")
    page = client.get("/console/board").text
    for person in (staff("street", "leader"), staff("district", "duty_officer"), staff("city", "leader")):
        assert f'<a class="phone" href="tel:{person.phone}">{person.phone}</a>' in page
    # No number is shown as bare text anywhere on the board.
    bare = re.sub(r'<a class="phone" href="tel:(\+86\d{11})">\1</a>', "", page)
    assert re.findall(r"\+86\d{11}", bare) == []
