"""A console in Chinese that tells the truth: actors by name, delivery in Chinese, a true overall state, refusals
in Chinese next to the fields with what was typed kept, and Chinese error pages for every console path."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from app.clock import ManualClock
from app.config import Settings
from app.incidents.models import Incident
from app.main import create_app
from app.org.models import Agency
from app.roster.resolve import default_zone
from tests.factories import login
from tests.incidents.helpers import fire, key_for, staff_chain, tick
from tests.web.helpers import console_sign_in

ENGLISH = re.compile(r"[A-Za-z]{4,}")


def _post(client: TestClient, headers: dict[str, str], **overrides: object) -> dict[str, object]:
    r = client.post("/api/v1/incidents", json=fire(**overrides), headers=headers)
    assert r.status_code == 201, r.text
    body: dict[str, object] = r.json()
    return body


def _shown(html: str, css_class: str) -> list[str]:
    """The text of every element with this class (as a duty officer reads it)."""
    return [re.sub(r"<[^>]+>", "", m) for m in re.findall(rf'class="[^"]*\b{css_class}\b[^"]*"[^>]*>(.*?)</', html)]


def _agency_named(session: Session, code: str, name: str) -> None:
    agency = session.exec(select(Agency).where(Agency.code == code)).one()
    agency.name = name
    session.add(agency)
    session.commit()


def test_the_incident_page_names_actors_and_never_says_acknowledged_while_a_tier_is_paged(
    client: TestClient, session: Session, clock: ManualClock, engine: Engine
) -> None:
    staff = staff_chain(session, clock)
    key = key_for(session, clock, "119")
    _agency_named(session, "119", "119指挥中心")
    inc = _post(client, key)
    tick(engine, clock)
    csrf = console_sign_in(client, staff("district", "duty_officer").username or "")
    r = client.post(f"/console/incidents/{inc['id']}/ack", data={"csrf": csrf})
    assert r.status_code == 200, r.text
    page = r.text
    assert "agency:119" not in page and "person:" not in page
    assert "119指挥中心" in page  # the reporter, on the page and on the timeline
    district = staff("district", "duty_officer")
    assert f"丰台区 {district.name}" in _shown(page, "actor")
    # Level IV: the street and the district must both sign; only the district has.
    assert 'data-overall="partial"' in page and "部分签收" in page
    assert re.search(r'data-tier="street"[^>]*data-state="paging"', page)
    assert re.search(r'data-tier="district"[^>]*data-state="acknowledged"', page)
    # Delivery in Chinese: channel and status (the dispatcher is off in this test, so the pages are queued).
    table = page[page.index('id="notifications"') :]
    assert "短信" in table and "排队中" in table
    assert ">sms<" not in table and ">queued<" not in table
    listing = client.get("/console/incidents").text
    assert 'data-overall="partial"' in listing and "已签收" not in _shown(listing, "overall")

    # The street never answers: after its duty officer and leader, the district is told and the street is 越级.
    for _ in range(2):
        clock.advance(minutes=5)
        tick(engine, clock)
    page = client.get(f"/console/incidents/{inc['id']}").text
    assert re.search(r'data-tier="street"[^>]*data-state="passed_over"', page) and "越级" in page
    assert 'data-overall="partial"' in page
    street = staff("street", "duty_officer")
    client.cookies.clear()
    csrf = console_sign_in(client, street.username or "")
    page = client.post(f"/console/incidents/{inc['id']}/ack", data={"csrf": csrf}).text
    assert 'data-overall="acknowledged"' in page and "已签收" in _shown(page, "overall")
    assert f"右安门街道 {street.name}" in _shown(page, "actor")


def test_console_forms_refuse_in_chinese_keep_what_was_typed_and_write_nothing(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    staff = staff_chain(session, clock)
    csrf = console_sign_in(client, staff("district", "duty_officer").username or "")
    later = (clock.now() + timedelta(hours=1)).astimezone(default_zone()).strftime("%Y-%m-%dT%H:%M")
    base = {"csrf": csrf, "category": "gas", "title": "燃气泄漏", "unit_code": "110106001", "address": "右安门内大街"}
    r = client.post("/console/incidents/new", data={**base, "title": "", "deaths": "-1", "occurred_at": later})
    assert r.status_code == 422
    fields = dict(re.findall(r'data-field="([^"]+)">([^<]*)<', r.text))
    assert fields["title"] == "标题不能为空"
    assert fields["casualties.deaths"] == "死亡人数不能为负数"
    assert 'value="右安门内大街"' in r.text and 'value="-1"' in r.text  # what was typed is kept
    r = client.post("/console/incidents/new", data={**base, "occurred_at": later})
    assert r.status_code == 422
    fields = dict(re.findall(r'data-field="([^"]+)">([^<]*)<', r.text))
    assert fields["occurred_at"] == "发生时间不能晚于当前时间10分钟以上"
    assert 'value="燃气泄漏"' in r.text and f'value="{later}"' in r.text
    summary = _shown(r.text, "flash error")
    assert summary and not ENGLISH.search(summary[0])
    session.rollback()
    assert session.exec(select(Incident)).all() == []

    key = key_for(session, clock, "119")
    inc = _post(client, key)
    r = client.post(
        f"/console/incidents/{inc['id']}/reports",
        data={"csrf": csrf, "kind": "bogus", "text": "续报:已控制", "deaths": "-2"},
    )
    assert r.status_code == 422
    fields = dict(re.findall(r'data-field="([^"]+)">([^<]*)<', r.text))
    assert fields["kind"] == "类型请选择有效的选项" and fields["casualties.deaths"] == "死亡人数不能为负数"
    assert "续报:已控制" in r.text
    r = client.post(f"/console/incidents/{inc['id']}/close", data={"csrf": csrf, "reason": "结束"})
    assert r.status_code == 409 and "请先提交终报，再关闭事件" in r.text
    client.cookies.clear()
    csrf = console_sign_in(client, staff("city", "duty_officer").username or "")
    r = client.post(f"/console/incidents/{inc['id']}/ack", data={"csrf": csrf})
    assert r.status_code == 403 and "您所在的层级无需签收此事件" in r.text
    r = client.post("/console/handover", data={"csrf": csrf, "notes": "夜间巡查正常", "incoming": "nobody-here"})
    assert r.status_code == 422 and "接班人不是在职人员" in r.text
    assert ">夜间巡查正常</textarea>" in r.text and 'value="nobody-here"' in r.text
    for shown in _shown(r.text, "flash error") + _shown(r.text, "field-error"):
        assert not ENGLISH.search(shown), shown


def test_every_console_error_is_a_chinese_page_and_the_api_keeps_json(
    engine: Engine, clock: ManualClock, settings: Settings, session: Session
) -> None:
    app = create_app(settings, engine=engine, clock=clock)

    @app.get("/console/test-unexpected")
    def unexpected() -> None:
        raise RuntimeError("boom")

    staff = staff_chain(session, clock)
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/console/incidents/1", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/console/login?next=")
        console_sign_in(client, staff("street", "duty_officer").username or "")
        cases = {
            "/console/no-such-page": (404, "未找到"),
            "/console/incidents/424242": (404, "未找到"),
            "/console/incidents/abc": (422, "地址有误"),
            "/console/incidents/0": (422, "地址有误"),
            "/console/incidents/99999999999999999999": (422, "地址有误"),
            "/console/rosters?unit=110105": (403, "无权访问"),  # 朝阳区: outside the street's scope
            "/console/test-unexpected": (500, "系统出错"),
        }
        for path, (status, title) in cases.items():
            r = client.get(path)
            assert r.status_code == status, (path, r.text)
            assert r.headers["content-type"].startswith("text/html"), path
            assert f"<h1>{title}</h1>" in r.text, path
            assert not ENGLISH.search(_shown(r.text, "flash error")[0]), (path, r.text)
        csrf = console_sign_in(client, staff("street", "duty_officer").username or "")
        r = client.post("/console/incidents/new", data={"csrf": csrf, "title": "火" * 401})
        assert r.status_code == 422 and r.headers["content-type"].startswith("text/html")
        assert "<h1>提交的内容有误</h1>" in r.text and "标题不能超过400个字" in r.text
        bearer = login(client, staff("street", "duty_officer").username or "")
        api = {"/api/v1/incidents/abc": 422, "/api/v1/no-such": 404, "/api/v1/incidents/424242": 404}
        for path, status in api.items():
            r = client.get(path, headers=bearer)
            assert r.status_code == status and r.headers["content-type"].startswith("application/json"), path
            assert r.json()["code"] in ("validation_error", "not_found")


def test_the_timeline_reads_newest_first_when_asked_and_the_live_refresh_keeps_it(
    client: TestClient, session: Session, clock: ManualClock, engine: Engine
) -> None:
    staff = staff_chain(session, clock)
    inc = _post(client, key_for(session, clock, "119"))
    tick(engine, clock)
    console_sign_in(client, staff("district", "duty_officer").username or "")

    def kinds(html: str) -> list[str]:
        timeline = html[html.index('id="timeline"') :]
        return re.findall(r'<li data-kind="([a-z_]+)"', timeline[: timeline.index("</ol>")])

    oldest = client.get(f"/console/incidents/{inc['id']}").text
    assert kinds(oldest)[0] == "reported" and len(kinds(oldest)) >= 3
    assert 'href="?order=newest"' in oldest
    newest = client.get(f"/console/incidents/{inc['id']}?order=newest").text
    assert kinds(newest) == kinds(oldest)[::-1]
    assert f'data-live="/console/incidents/{inc["id"]}/live?order=newest"' in newest
    assert 'href="?order=oldest"' in newest
    live = client.get(f"/console/incidents/{inc['id']}/live?order=newest").text
    assert kinds(live) == kinds(oldest)[::-1]
    assert client.get(f"/console/incidents/{inc['id']}?order=sideways").status_code == 422
