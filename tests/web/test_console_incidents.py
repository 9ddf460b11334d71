"""Incident pages over plain HTTP: the list, acknowledge, reports that re-grade, lifecycle, and 接报 validation."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from app.clock import ManualClock
from app.config import Settings
from app.incidents.models import Incident
from app.main import create_app
from tests.factories import make_person
from tests.incidents.helpers import fire, key_for, staff_chain
from tests.web.helpers import console_sign_in


def _post_incident(client: TestClient, session: Session, clock: ManualClock, **overrides: object) -> dict[str, object]:
    headers = key_for(session, clock, "119")
    r = client.post("/api/v1/incidents", json=fire(**overrides), headers=headers)
    assert r.status_code == 201, r.text
    body: dict[str, object] = r.json()
    return body


def test_list_is_sorted_by_level_then_age_and_offers_ack(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    staff = staff_chain(session, clock)
    minor = _post_incident(client, session, clock, external_id="a", title="小火情")
    clock.advance(minutes=1)
    headers = key_for(session, clock, "120", kind="ambulance")
    grave = client.post(
        "/api/v1/incidents",
        json=fire(
            external_id="b", title="重大火情", casualties={"deaths": 12, "injuries": 0, "trapped": 0, "missing": 0}
        ),
        headers=headers,
    ).json()
    assert staff("street", "duty_officer").username
    csrf = console_sign_in(client, staff("street", "duty_officer").username or "")
    page = client.get("/console/incidents").text
    codes = re.findall(r'data-code="([A-Z0-9]+)"', page)
    assert codes == [grave["code"], minor["code"]]
    assert "sev-II" in page and "sev-IV" in page
    assert page.count("签收（街道/乡镇）") == 2
    r = client.post(
        f"/console/incidents/{minor['id']}/ack", data={"csrf": csrf, "back": "list"}, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"].startswith("/console/incidents?")
    fragment = client.get("/console/incidents/live").text
    assert fragment.count("签收（街道/乡镇）") == 1
    assert "已签收" in fragment


def test_ack_refused_for_someone_not_on_a_required_tier(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    staff = staff_chain(session, clock)
    inc = _post_incident(client, session, clock)
    console_sign_in(client, staff("city", "duty_officer").username or "")
    page = client.get(f"/console/incidents/{inc['id']}").text
    assert "签收（" not in page  # level IV: the city is not required
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf
    r = client.post(f"/console/incidents/{inc['id']}/ack", data={"csrf": csrf.group(1)})
    assert r.status_code == 403 and "您所在的层级无需签收此事件" in r.text


def test_follow_up_that_raises_the_level_makes_the_city_required(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    staff = staff_chain(session, clock)
    inc = _post_incident(client, session, clock)
    csrf = console_sign_in(client, staff("district", "duty_officer").username or "")
    page = client.get(f"/console/incidents/{inc['id']}").text
    assert 'data-tier="city"' not in page or 'data-tier="city" data-required="no"' in page
    r = client.post(
        f"/console/incidents/{inc['id']}/reports",
        data={"csrf": csrf, "kind": "first", "text": "现场死亡 2 人", "deaths": "2"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    r = client.post(
        f"/console/incidents/{inc['id']}/reports",
        data={"csrf": csrf, "kind": "follow_up", "text": "死亡人数升至 12 人", "deaths": "12", "injuries": ""},
    )
    assert r.status_code == 200 and "报告已提交" in r.text
    assert 'data-tier="city" data-required="yes"' in r.text
    assert 'data-severity="II"' in r.text and "续报 第1次" in r.text
    bad = client.post(
        f"/console/incidents/{inc['id']}/reports",
        data={"csrf": csrf, "kind": "follow_up", "text": "x", "deaths": "-3"},
    )
    assert bad.status_code == 422 and 'data-field="casualties.deaths"' in bad.text


def test_escalate_resolve_and_close_from_the_page(client: TestClient, session: Session, clock: ManualClock) -> None:
    staff = staff_chain(session, clock)
    inc = _post_incident(client, session, clock)
    csrf = console_sign_in(client, staff("street", "leader").username or "")
    r = client.post(f"/console/incidents/{inc['id']}/escalate", data={"csrf": csrf, "reason": ""})
    assert r.status_code == 422 and 'data-field="reason"' in r.text
    r = client.post(f"/console/incidents/{inc['id']}/escalate", data={"csrf": csrf, "reason": "需要区里支援"})
    assert r.status_code == 200 and "已上报上一级" in r.text
    r = client.post(f"/console/incidents/{inc['id']}/close", data={"csrf": csrf, "reason": "结束"})
    assert r.status_code == 409  # no final report yet
    r = client.post(f"/console/incidents/{inc['id']}/resolve", data={"csrf": csrf, "reason": "明火扑灭"})
    assert r.status_code == 200 and "已标记处置完毕" in r.text
    client.post(f"/console/incidents/{inc['id']}/reports", data={"csrf": csrf, "kind": "final", "text": "终报"})
    r = client.post(f"/console/incidents/{inc['id']}/close", data={"csrf": csrf, "reason": "结束"})
    assert r.status_code == 200 and "事件已关闭" in r.text
    session.rollback()
    closed = session.get(Incident, inc["id"])
    assert closed is not None and closed.status == "closed"


def _hidden_fields(page: str, form: str) -> dict[str, str]:
    """The hidden fields a browser would post with the form `form` (a CSS selector: "#report-form", "form.ack")."""
    attr, value = ("id", form[1:]) if form.startswith("#") else ("class", form.split(".", 1)[1])
    match = re.search(rf'<form [^>]*{attr}="[^"]*{value}[^"]*".*?</form>', page, re.DOTALL)
    assert match, form
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', match.group(0)))


def test_a_form_post_keeps_the_order_the_viewer_reads_the_timeline_in(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    staff = staff_chain(session, clock)
    inc = _post_incident(client, session, clock)
    console_sign_in(client, staff("street", "duty_officer").username or "")
    url = f"/console/incidents/{inc['id']}"
    page = client.get(url, params={"order": "newest"}).text
    for form, act, data in (
        ("form.ack", "ack", {}),
        ("#report-form", "reports", {"kind": "first", "text": "明火已控制"}),
        ("#escalate-form", "escalate", {"reason": "需要区里支援"}),
    ):
        r = client.post(f"{url}/{act}", data=_hidden_fields(page, form) | data, follow_redirects=False)
        assert r.status_code == 303, r.text
        assert r.headers["location"].startswith(f"{url}?order=newest&msg="), form
        page = client.get(r.headers["location"]).text
        assert 'data-order="newest"' in page
    # A refused post shows the page again in the same order.
    r = client.post(f"{url}/resolve", data=_hidden_fields(page, "#resolve-form") | {"reason": ""})
    assert r.status_code == 422 and 'data-order="newest"' in r.text
    # Oldest first stays the plain address.
    page = client.get(url).text
    r = client.post(f"{url}/escalate", data=_hidden_fields(page, "#escalate-form") | {"reason": "再次上报"},
                    follow_redirects=False)  # fmt: skip
    assert r.headers["location"].startswith(f"{url}?msg=")


def test_intake_form_validates_like_the_api(client: TestClient, session: Session, clock: ManualClock) -> None:
    staff = staff_chain(session, clock)
    csrf = console_sign_in(client, staff("district", "duty_officer").username or "")
    form = client.get("/console/incidents/new").text
    assert 'value="110106"' in form
    base = {
        "csrf": csrf,
        "category": "gas",
        "title": "燃气泄漏",
        "unit_code": "110106001",
        "occurred_at": "2026-04-18T11:50",
        "deaths": "0",
        "injuries": "abc",
    }
    r = client.post("/console/incidents/new", data={**base, "title": ""})
    assert r.status_code == 422
    assert 'data-field="title"' in r.text and 'data-field="casualties.injuries"' in r.text
    assert session.exec(select(Incident)).all() == []
    r = client.post("/console/incidents/new", data={**base, "injuries": "0", "unit_code": "110105001"})
    assert r.status_code == 403  # 朝阳区: outside 丰台区
    r = client.post("/console/incidents/new", data={**base, "injuries": "0", "unit_code": "999999"})
    assert r.status_code == 404 and 'data-field="unit_code"' in r.text
    r = client.post("/console/incidents/new", data={**base, "injuries": "0"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    session.rollback()
    inc = session.exec(select(Incident)).one()
    assert inc.occurred_at.isoformat() == "2026-04-18T03:50:00+00:00"
    page = client.get(r.headers["location"]).text
    assert "事件已登记" in page and "燃气泄漏" in page


def test_simulator_inbox_page_is_off_by_default_and_for_admins_only(
    client: TestClient, session: Session, clock: ManualClock, engine: Engine, settings: Settings
) -> None:
    staff = staff_chain(session, clock)
    admin = make_person(session, clock, unit="110000", roles=["admin"])
    console_sign_in(client, admin.username or "")
    assert client.get("/console/simulator").status_code == 404  # DUTYLINE_SIMULATOR is off by default
    on = settings.model_copy(update={"simulator": "on"})
    with TestClient(create_app(on, engine=engine, clock=clock)) as demo:
        console_sign_in(demo, staff("street", "duty_officer").username or "")
        r = demo.get("/console/simulator")
        assert r.status_code == 403 and "仅限系统管理员" in r.text
        demo.cookies.clear()
        console_sign_in(demo, admin.username or "")
        r = demo.get("/console/simulator")
        assert r.status_code == 200 and 'data-sim="/sim/messages"' in r.text
