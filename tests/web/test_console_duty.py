"""Roll-call and notice pages over plain HTTP: start a roll-call and answer it, issue a notice, sign, feed back,
forward; refusals shown in Chinese next to the form, nothing written."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from app.clock import ManualClock
from app.notices.models import Notice
from app.rollcall.models import RollCall
from tests.duty import children, staff
from tests.web.helpers import console_sign_in

CITY, DISTRICT = "110000", "110106"


def test_a_roll_call_from_the_console_and_its_results(client: TestClient, session: Session, clock: ManualClock) -> None:
    streets = children(session, DISTRICT)
    staff(session, clock, [DISTRICT, streets[0]], login={DISTRICT, streets[0]})
    csrf = console_sign_in(client, f"duty_officer.{DISTRICT}")
    page = client.get("/console/rollcalls")
    assert page.status_code == 200 and "发起查岗" in page.text and "暂无查岗记录" in page.text
    # 0 minutes is outside the window: refused in Chinese next to the field, nothing written.
    bad = client.post("/console/rollcalls", data={"csrf": csrf, "scope": "children", "roles": "duty_officer",
                                                   "minutes": "0"})  # fmt: skip
    assert bad.status_code == 422 and "应答时限须在1分钟至24小时" in bad.text
    session.commit()
    assert session.exec(select(func.count()).select_from(RollCall)).one() == 0
    r = client.post(
        "/console/rollcalls",
        data={"csrf": csrf, "scope": "children", "roles": ["duty_officer", "leader"], "minutes": "5", "note": "夜查"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    detail = client.get(r.headers["location"]).text
    assert "已发起查岗" in detail and "夜查" in detail
    posts = 2 * len(streets)
    figures = dict(re.findall(r'data-k="(\w+)"[^>]*>([^<]+)<', detail))
    assert figures["posts"] == str(posts) and figures["vacant"] == str(posts - 2) and figures["pending"] == "2"
    rc_id = int(r.headers["location"].split("?")[0].rsplit("/", 1)[1])

    # The street's duty officer sees the button, answers, and the results say so.
    street_csrf = console_sign_in(client, f"duty_officer.{streets[0]}")
    mine = client.get(f"/console/rollcalls/{rc_id}").text
    assert "确认在岗" in mine
    done = client.post(f"/console/rollcalls/{rc_id}/answer", data={"csrf": street_csrf})
    assert done.status_code == 200 and "已确认在岗" in done.text
    live = client.get(f"/console/rollcalls/{rc_id}/live").text
    row = re.search(rf'<tr data-unit="{streets[0]}" data-role="duty_officer" data-state="(\w+)"', live)
    assert row and row.group(1) == "answered" and "控制台" in live
    assert 'id="my-answer"' not in client.get(f"/console/rollcalls/{rc_id}").text


def test_issue_sign_feed_back_and_forward_from_the_console(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    staff(session, clock, [CITY, DISTRICT], login={CITY, DISTRICT})
    csrf = console_sign_in(client, f"duty_officer.{CITY}")
    empty = client.post("/console/notices/new", data={"csrf": csrf, "title": "防汛", "body": "准备", "scope": "",
                                                       "minutes": "30"})  # fmt: skip
    assert empty.status_code == 422 and "接收单位" in empty.text
    session.commit()
    assert session.exec(select(func.count()).select_from(Notice)).one() == 0
    r = client.post(
        "/console/notices/new",
        data={"csrf": csrf, "kind": "notice", "title": "关于加强汛期值守的通知", "body": "严格落实领导带班。",
              "scope": "children", "minutes": "30"},
        follow_redirects=False,
    )  # fmt: skip
    assert r.status_code == 303, r.text
    detail = client.get(r.headers["location"]).text
    assert "已下发" in detail and "关于加强汛期值守的通知" in detail and detail.count('data-state="pending"') == 16
    notice_id = int(r.headers["location"].split("?")[0].rsplit("/", 1)[1])
    assert "关于加强汛期值守的通知" in client.get("/console/notices/sent").text

    district_csrf = console_sign_in(client, f"duty_officer.{DISTRICT}")
    inbox = client.get("/console/notices").text
    assert "关于加强汛期值守的通知" in inbox and "待签收" in inbox
    signed = client.post(f"/console/notices/{notice_id}/sign", data={"csrf": district_csrf})
    assert signed.status_code == 200 and "已签收。" in signed.text
    empty_feedback = client.post(f"/console/notices/{notice_id}/feedback", data={"csrf": district_csrf, "text": " "})
    assert empty_feedback.status_code == 422 and "请填写落实情况" in empty_feedback.text
    fed = client.post(f"/console/notices/{notice_id}/feedback", data={"csrf": district_csrf, "text": "已部署到各街道"})
    assert fed.status_code == 200 and "反馈已提交" in fed.text and "已部署到各街道" in fed.text
    fwd = client.post(f"/console/notices/{notice_id}/forward", data={"csrf": district_csrf, "scope": "children"})
    assert fwd.status_code == 200 and "已转发至下级单位" in fwd.text and "（转发）" in fwd.text
    again = client.post(f"/console/notices/{notice_id}/forward", data={"csrf": district_csrf, "scope": "children"})
    assert again.status_code == 422
