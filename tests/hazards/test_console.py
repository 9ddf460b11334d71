"""The console's hazard pages through real HTTP: the phone report form, the hazard page's actions by role, refusals
in Chinese with nothing written, the register with its filters and statistics, import and export."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from app.clock import ManualClock
from app.hazards.models import Hazard, HazardPhoto
from tests.factories import make_person
from tests.hazards.helpers import DISTRICT, STREET, image_bytes
from tests.web.helpers import console_sign_in

FORM = {
    "unit_code": STREET,
    "venue": "右安门医院",
    "venue_category": "hospital",
    "address": "右安门外大街1号",
    "level": "major",
    "basis": "GB 35181-2017 第6.3条",
    "description": "疏散通道堵塞",
    "found_at": "2026-04-18T11:30",
    "source": "inspection",
    "responsible_org": "右安门医院",
    "responsible_person": "王院长",
    "responsible_phone": "13800138000",
    "deadline": "2026-04-25",
    "measures": "清理通道",
}


def hazards(session: Session) -> int:
    session.commit()
    return session.exec(select(func.count()).select_from(Hazard)).one()


def sign_in(client: TestClient, session: Session, clock: ManualClock, unit: str, role: str) -> str:
    person = make_person(session, clock, unit=unit, roles=[role])
    client.cookies.clear()
    return console_sign_in(client, person.username or "")


def test_report_from_the_phone_form_then_rectify_and_verify(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    csrf = sign_in(client, session, clock, STREET, "inspector")
    form_page = client.get("/console/hazards/new").text
    assert 'accept="image/*" capture="environment"' in form_page and "登记隐患" in form_page

    bad = client.post("/console/hazards/new", data={**FORM, "csrf": csrf, "deadline": "2026-04-01"})
    assert bad.status_code == 422 and "整改期限不能早于发现时间" in bad.text
    assert 'value="右安门医院"' in bad.text  # what was typed is kept
    not_photo = client.post("/console/hazards/new", data={**FORM, "csrf": csrf},
                            files={"photo": ("x.jpg", b"not an image", "image/jpeg")})  # fmt: skip
    assert not_photo.status_code == 422 and "不是 JPEG 或 PNG 图片" in not_photo.text
    assert hazards(session) == 0  # the hazard and its photo go in together or not at all

    made = client.post("/console/hazards/new", data={**FORM, "csrf": csrf},
                       files={"photo": ("site.jpg", image_bytes(), "image/jpeg")}, follow_redirects=False)  # fmt: skip
    assert made.status_code == 303, made.text
    page = client.get(made.headers["location"]).text
    assert "隐患已登记" in page and "重大" in page and "待整改" in page
    hazard_id = int(made.headers["location"].split("/")[3].split("?")[0])
    img = re.search(r'<img src="([^"]+)"', page)
    assert img and client.get(img.group(1)).headers["content-type"] == "image/jpeg"
    assert 'id="plan-form"' in page and 'id="verify-form"' not in page and 'id="listing-form"' not in page

    r = client.post(f"/console/hazards/{hazard_id}/submit", data={"csrf": csrf})
    assert r.status_code == 409 and "隐患当前为“待整改”，不能提交整改" in r.text
    plan = {"csrf": csrf, "measures": "清理并更换防火门", "person": "王院长", "funds_cny": "20000"}
    r = client.post(f"/console/hazards/{hazard_id}/plan", data=plan)
    assert r.status_code == 200 and "整改方案已保存" in r.text
    r = client.post(f"/console/hazards/{hazard_id}/submit", data={"csrf": csrf})
    assert r.status_code == 409 and "整改后照片" in r.text
    r = client.post(f"/console/hazards/{hazard_id}/photos", data={"csrf": csrf, "phase": "after"},
                    files={"file": ("after.png", image_bytes("PNG"), "image/png")})  # fmt: skip
    assert r.status_code == 200 and "照片已上传" in r.text
    r = client.post(f"/console/hazards/{hazard_id}/submit", data={"csrf": csrf, "note": "已完成"})
    assert "等待验收" in r.text

    street_leader = sign_in(client, session, clock, STREET, "leader")
    page = client.get(f"/console/hazards/{hazard_id}").text
    assert 'id="verify-form"' not in page  # a major hazard is verified by the tier above
    r = client.post(f"/console/hazards/{hazard_id}/verify", data={"csrf": street_leader, "passed": "yes"})
    assert r.status_code == 403 and "重大隐患由右安门街道的上一级验收" in r.text

    district = sign_in(client, session, clock, DISTRICT, "leader")
    page = client.get(f"/console/hazards/{hazard_id}").text
    assert 'id="verify-form"' in page and 'id="extension-form"' in page and 'id="listing-form"' in page
    r = client.post(f"/console/hazards/{hazard_id}/verify", data={"csrf": district, "passed": "no", "note": ""})
    assert r.status_code == 422 and "验收未通过时须说明原因" in r.text
    r = client.post(f"/console/hazards/{hazard_id}/verify", data={"csrf": district, "passed": "no",
                                                                 "note": "防火门闭门器仍失效"})  # fmt: skip
    assert "已退回整改" in r.text and "整改中" in r.text
    session.commit()
    assert session.exec(select(func.count()).select_from(HazardPhoto)).one() == 2


def test_register_page_filters_and_statistics(client: TestClient, session: Session, clock: ManualClock) -> None:
    csrf = sign_in(client, session, clock, STREET, "inspector")
    for venue, level, deadline in (("甲医院", "major", "2026-04-25"), ("乙车棚", "general", "2026-04-19")):
        data = {**FORM, "csrf": csrf, "venue": venue, "level": level, "deadline": deadline}
        assert client.post("/console/hazards/new", data=data, follow_redirects=False).status_code == 303
    clock.advance(days=2)
    sign_in(client, session, clock, DISTRICT, "leader")
    page = client.get("/console/hazards").text
    assert page.index("乙车棚") < page.index("甲医院")  # overdue first
    assert "逾期1天" in page
    stats_row = re.search(r'<tr data-unit="110106001">(.*?)</tr>', page, re.S)
    assert stats_row and '<td>2</td><td>0</td><td>0%</td><td><b class="gap">1</b></td><td>1</td>' in stats_row.group(1)
    only_major = client.get("/console/hazards?level=major").text
    assert "甲医院" in only_major and "乙车棚" not in only_major
    exported = client.get("/console/hazards/export?level=major&format=csv")
    assert exported.status_code == 200 and "甲医院" in exported.text and "乙车棚" not in exported.text


def test_import_errors_are_shown_by_row_in_chinese(client: TestClient, session: Session, clock: ManualClock) -> None:
    csrf = sign_in(client, session, clock, STREET, "inspector")
    header = ",".join(k for k in FORM)
    good = ",".join(v.replace(",", " ") if k != "found_at" else "2026-04-18T09:00:00+08:00" for k, v in FORM.items())
    bad = good.replace("hospital", "school")
    r = client.post("/console/hazards/import", data={"csrf": csrf},
                    files={"file": ("list.csv", f"{header}\n{good}\n{bad}\n".encode(), "text/csv")})  # fmt: skip
    assert r.status_code == 422
    assert "第3行 场所类别：不是已知的类别" in r.text and "整份文件未导入" in r.text
    assert hazards(session) == 0
    r = client.post("/console/hazards/import", data={"csrf": csrf},
                    files={"file": ("list.csv", f"{header}\n{good}\n".encode(), "text/csv")})  # fmt: skip
    assert r.status_code == 200 and "已导入 1 条隐患" in r.text
