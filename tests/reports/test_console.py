"""The 问效问责 page over HTTP: the table of the scripted month, the downloads, and refusals shown in Chinese."""

from __future__ import annotations

import io
import json
import re

import openpyxl
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from app.clock import ManualClock
from tests.factories import make_person
from tests.reports.scenario import DISTRICT, S1, S2, scripted_month
from tests.web.helpers import console_sign_in

NOV = {"unit": DISTRICT, "period": "custom", "from": "2026-11-01", "to": "2026-11-30"}


def test_the_page_shows_the_month_and_downloads_it(
    client: TestClient, session: Session, clock: ManualClock, engine: Engine
) -> None:
    month = scripted_month(client, session, clock, engine)
    console_sign_in(client, f"district.leader.{DISTRICT}")
    page = client.get("/console/reports", params=NOV)
    assert page.status_code == 200, page.text
    html = page.text
    assert "问效问责" in html and "2026-11-01 至 2026-11-30" in html
    # One row per street, in code order, and the total; the picker offers the district's own subtree only.
    assert re.findall(r'<tr data-unit="(\d+)"', html) == month.streets
    assert '<option value="110106001"' in html and '<option value="110105"' not in html
    s1 = html.split(f'<tr data-unit="{S1}">')[1].split("</tr>")[0]
    assert 'data-value="420.0"' in s1 and "7分00秒" in s1  # the street's median ack time
    data = json.loads(html.split('<script type="application/json" id="report-data">')[1].split("</script>")[0])
    assert len(data["units"]) == len(month.streets) and data["units"][0] in s1
    assert data["ack"]["street"][:2] == [7.0, 1.0] and data["rates"]["rollcall"][:2] == [100.0, 0.0]
    assert data["weeks"]["incidents"] == [1, 1, 1, 0, 0]
    assert "/console/static/vendor/echarts/echarts.min.js" in html
    # The downloads carry the same period (the page's end date included: to is the day after).
    assert 'href="/console/reports/export?unit=110106&amp;from=2026-11-01&amp;to=2026-12-01&format=xlsx"' in html
    x = client.get("/console/reports/export", params={"unit": DISTRICT, "from": "2026-11-01", "to": "2026-12-01"})
    assert x.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(x.content))
    assert book["事件与报告"]["C2"].value == 2  # S1's incidents
    c = client.get("/console/reports/export", params={"unit": S2, "from": "2026-11-01", "to": "2026-12-01",
                                                      "format": "csv"})  # fmt: skip
    assert c.status_code == 200 and c.content.startswith(b"\xef\xbb\xbf") and S2.encode() in c.content
    # This month (December, the clock's): D only.
    assert client.get("/console/reports", params={"unit": DISTRICT}).status_code == 200


def test_refusals_are_chinese_and_show_no_figures(client: TestClient, session: Session, clock: ManualClock) -> None:
    street = make_person(session, clock, unit=S1, roles=["duty_officer"])
    console_sign_in(client, street.username or "")
    own = client.get("/console/reports")
    assert own.status_code == 200 and re.findall(r'<tr data-unit="(\d+)"', own.text) == [S1]
    for params, message in (
        ({"unit": DISTRICT}, "超出您的管辖范围"),
        ({"unit": "999999"}, "未知的单位代码"),
        ({"period": "custom", "from": "2026-04-31", "to": "2026-05-01"}, "起始日期：请填写有效的日期"),
        ({"period": "custom", "from": "2026-05-02", "to": "2026-05-01"}, "截止日期不能早于起始日期"),
        ({"period": "custom", "from": "2025-01-01", "to": "2026-05-01"}, "统计期间最长 400 天"),
    ):
        r = client.get("/console/reports", params=params)
        assert r.status_code == 422, (params, r.status_code)
        assert message in r.text and 'id="report-table"' not in r.text, params
    r = client.get("/console/reports/export", params={"unit": DISTRICT, "from": "2026-04-01", "to": "2026-05-01"})
    assert r.status_code == 422 and "超出您的管辖范围" in r.text
    r = client.get("/console/reports/export", params={"unit": S1, "from": "2026-04-01", "to": "x"})
    assert r.status_code == 422 and "请填写有效的统计期间" in r.text
    assert client.get("/console/reports/export", params={"unit": S1, "from": "2026-04-01", "to": "2026-05-01",
                                                         "format": "pdf"}).status_code == 422  # fmt: skip


def test_the_review_page_tells_the_chain_of_an_incident(
    client: TestClient, session: Session, clock: ManualClock, engine: Engine
) -> None:
    month = scripted_month(client, session, clock, engine)
    console_sign_in(client, f"district.leader.{DISTRICT}")
    b = month.incidents["B"]
    incident = client.get(f"/console/incidents/{b}")
    assert f'href="/console/incidents/{b}/review"' in incident.text
    page = client.get(f"/console/incidents/{b}/review")
    assert page.status_code == 200, page.text
    html = page.text
    street = html.split('<section class="card tier-chain" data-tier="street">')[1].split("</section>")[0]
    # The street's officer at 10:00, its leader at 10:05 (and the officer reminded), by SMS; then passed over.
    assert "越级" in street and "11-09 10:00:00" in street and "11-09 10:05:00" in street
    assert street.count("<td>短信</td>") >= 3 and "值班员" in street and "带班领导" in street
    assert "签收：" in street and "首次通知后 12分00秒" in street
    district = html.split('<section class="card tier-chain" data-tier="district">')[1].split("</section>")[0]
    assert "首次通知后 6分00秒" in district and "越级" not in district
    figures = html.split('id="review-figures"')[1].split("</section>")[0]
    street_row = figures.split('<tr data-tier="street">')[1].split("</tr>")[0]
    assert "12分00秒" in street_row and "越级（已告知上一级）" in street_row
    assert 'id="first-late"' in figures and '<span id="follow-up-late">1</span>' in figures
    reports = html.split('id="review-reports"')[1].split("</section>")[0]
    assert reports.count("迟报</b>") == 2 and "首报 第1号" in reports and "终报 第2号" in reports
    assert "首报逾期（迟报）" in reports and "续报逾期（迟报）" in reports
    assert "person:" not in html and "agency:" not in html  # authors and actors by name (app.labels.actors)
    a = client.get(f"/console/incidents/{month.incidents['A']}/review").text
    assert "越级（已告知上一级）" not in a and "首报按时" in a.replace("\n", "")
    # Outside the viewer's subtree: not found, in Chinese.
    other = make_person(session, clock, unit="110105", roles=["leader"])
    console_sign_in(client, other.username or "")
    refused = client.get(f"/console/incidents/{b}/review")
    assert refused.status_code == 404 and "不在您的管辖范围内" in refused.text
