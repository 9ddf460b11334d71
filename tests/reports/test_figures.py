"""The figures of the scripted month (tests/reports/scenario.py), worked out by hand and compared exactly, as JSON,
as XLSX read back with openpyxl, and as CSV."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any, cast

import openpyxl
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from app.clock import ManualClock
from tests.factories import login, signed_in
from tests.reports.scenario import CITY, DISTRICT, S1, S2, scripted_month

PERIOD = {"unit": DISTRICT, "from": "2026-11-01", "to": "2026-12-01"}


def tier(required: int, acked: int, median: float | None, p90: float | None, passed: int | None) -> dict[str, Any]:
    return {"required": required, "acknowledged": acked, "timed": acked, "ack_seconds_median": median,
            "ack_seconds_p90": p90, "passed_over": passed}  # fmt: skip


NO_TIER = tier(0, 0, None, None, 0)
NO_CITY = tier(0, 0, None, None, None)


def expected(n_streets: int) -> dict[str, dict[str, Any]]:
    """By hand. Ack seconds: A street 120, district 240; B street 720, district 360; C street 60, district 180.
    Percentiles interpolate at rank 1 + p·(n − 1): of [60, 120, 720] the median is 120 and the p90 (rank 2.8)
    120 + 0.8·600 = 600; of [180, 240, 360] 240 and 240 + 0.8·120 = 336; of [120, 720] (rank 1.5, 1.9) 420 and
    660; of [240, 360] 300 and 348."""
    vacant = n_streets - 2
    return {
        S1: {
            "incidents": {"total": 2, "by_level": {"I": 0, "II": 0, "III": 0, "IV": 2}, "first_report_late": 1,
                          "follow_up_late": 1},
            "tiers": {"street": tier(2, 2, 420.0, 660.0, 1), "district": tier(2, 2, 300.0, 348.0, 0), "city": NO_CITY},
            "rollcall": {"posts": 1, "answered": 1, "missed": 0, "vacant": 0, "pending": 0, "rate": 1.0},
            "notices": {"receipts": 1, "signed_in_time": 1, "signed_late": 0, "never_signed": 0, "pending": 0,
                        "feedback_late": 0},
            "hazards": {"found": 1, "closed": 0, "overdue": 1},
        },
        S2: {
            "incidents": {"total": 1, "by_level": {"I": 0, "II": 0, "III": 1, "IV": 0}, "first_report_late": 0,
                          "follow_up_late": 0},
            "tiers": {"street": tier(1, 1, 60.0, 60.0, 0), "district": tier(1, 1, 180.0, 180.0, 0), "city": NO_CITY},
            "rollcall": {"posts": 1, "answered": 0, "missed": 1, "vacant": 0, "pending": 0, "rate": 0.0},
            "notices": {"receipts": 1, "signed_in_time": 0, "signed_late": 1, "never_signed": 0, "pending": 0,
                        "feedback_late": 1},
            "hazards": {"found": 1, "closed": 1, "overdue": 0},
        },
        DISTRICT: {
            "incidents": {"total": 3, "by_level": {"I": 0, "II": 0, "III": 1, "IV": 2}, "first_report_late": 1,
                          "follow_up_late": 1},
            "tiers": {"street": tier(3, 3, 120.0, 600.0, 1), "district": tier(3, 3, 240.0, 336.0, 0), "city": NO_CITY},
            "rollcall": {"posts": n_streets, "answered": 1, "missed": 1, "vacant": vacant, "pending": 0, "rate": 0.5},
            "notices": {"receipts": 2, "signed_in_time": 1, "signed_late": 1, "never_signed": 0, "pending": 0,
                        "feedback_late": 1},
            "hazards": {"found": 2, "closed": 1, "overdue": 1},
        },
        "vacant street": {
            "incidents": {"total": 0, "by_level": {"I": 0, "II": 0, "III": 0, "IV": 0}, "first_report_late": 0,
                          "follow_up_late": 0},
            "tiers": {"street": NO_TIER, "district": NO_TIER, "city": NO_CITY},
            "rollcall": {"posts": 1, "answered": 0, "missed": 0, "vacant": 1, "pending": 0, "rate": None},
            "notices": {"receipts": 0, "signed_in_time": 0, "signed_late": 0, "never_signed": 0, "pending": 0,
                        "feedback_late": 0},
            "hazards": {"found": 0, "closed": 0, "overdue": 0},
        },
    }  # fmt: skip


SECTIONS = ("incidents", "tiers", "rollcall", "notices", "hazards")


def figures_of(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in SECTIONS}


def test_the_month_by_hand_as_json_xlsx_and_csv(
    client: TestClient, session: Session, clock: ManualClock, engine: Engine
) -> None:
    month = scripted_month(client, session, clock, engine)
    want = expected(len(month.streets))
    leader = login(client, f"district.leader.{DISTRICT}")
    r = client.get("/api/v1/reports/accountability", params=PERIOD, headers=leader)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["unit_code"], body["from"], body["to"], body["timezone"]) == (
        DISTRICT,
        "2026-11-01",
        "2026-12-01",
        "Asia/Shanghai",
    )
    rows = {row["unit_code"]: row for row in body["rows"]}
    # Every street of the district, by code, in code order; nothing placed at the district itself (no 本级 row).
    assert [row["unit_code"] for row in body["rows"]] == month.streets
    assert figures_of(rows[S1]) == want[S1]
    assert figures_of(rows[S2]) == want[S2]
    assert figures_of(body["total"]) == want[DISTRICT]
    for code in month.streets[2:]:
        assert figures_of(rows[code]) == want["vacant street"], code
    # Week by week (from Nov 1): A in week 0, B in week 1, C in week 2; the roll-call, notice and hazard found
    # on the 22nd in week 2 and 3; the hazard found on the 5th in week 0.
    weeks = body["weeks"]
    assert [w["start"] for w in weeks] == ["2026-11-01", "2026-11-08", "2026-11-15", "2026-11-22", "2026-11-29"]
    assert [w["incidents"]["total"] for w in weeks] == [1, 1, 1, 0, 0]
    assert [w["tiers"]["street"]["ack_seconds_median"] for w in weeks] == [120.0, 720.0, 60.0, None, None]
    assert [w["rollcall"]["posts"] for w in weeks] == [0, 0, len(month.streets), 0, 0]
    assert [w["hazards"]["found"] for w in weeks] == [1, 0, 0, 1, 0]

    # The city's report lists its 16 districts; 丰台区's row is the same as the district's own total.
    city = signed_in(client, session, clock, unit=CITY, roles=["viewer"])
    by_city = client.get("/api/v1/reports/accountability", params={**PERIOD, "unit": CITY}, headers=city).json()
    assert len(by_city["rows"]) == 16
    fengtai = next(row for row in by_city["rows"] if row["unit_code"] == DISTRICT)
    assert figures_of(fengtai) == want[DISTRICT]
    assert figures_of(by_city["total"]) == want[DISTRICT]  # nothing happened elsewhere
    # December has D only.
    december = client.get("/api/v1/reports/accountability", params={**PERIOD, "from": "2026-12-01",
                          "to": "2027-01-01"}, headers=leader).json()  # fmt: skip
    assert december["total"]["incidents"]["total"] == 1
    assert december["total"]["tiers"]["street"]["ack_seconds_median"] == 30.0

    # XLSX: one sheet per section, Chinese headers, numbers as numbers, durations as durations.
    x = client.get("/api/v1/reports/accountability", params={**PERIOD, "format": "xlsx"}, headers=leader)
    assert x.status_code == 200 and x.headers["content-type"].startswith("application/vnd.openxmlformats")
    book = openpyxl.load_workbook(io.BytesIO(x.content))
    assert book.sheetnames == ["事件与报告", "签收用时", "查岗", "通知签收", "隐患", "按周", "说明"]
    incidents = _table(book["事件与报告"])
    assert incidents[S1] == {"单位代码": S1, "单位": rows[S1]["unit_name"], "事件数": 2, "特别重大（I级）": 0,
                             "重大（II级）": 0, "较大（III级）": 0, "一般（IV级）": 2, "首报迟报": 1,
                             "续报迟报": 1}  # fmt: skip
    assert incidents[DISTRICT]["事件数"] == 3 and incidents[DISTRICT]["单位"] == "丰台区（合计）"
    sheet = book["签收用时"]
    header = [c.value for c in sheet[1]]
    assert header == [
        "单位代码",
        "单位",
        "层级",
        "须签收",
        "已签收",
        "计时",
        "签收用时中位数",
        "签收用时P90",
        "越级次数",
    ]
    by_tier = {(r[0].value, r[2].value): r for r in sheet.iter_rows(min_row=2)}
    total_street = by_tier[(DISTRICT, "街道级")]
    assert [c.value for c in total_street[3:6]] == [3, 3, 3] and total_street[8].value == 1
    for cell, seconds in ((total_street[6], 120), (total_street[7], 600)):
        assert isinstance(cell.value, timedelta), cell.value
        assert round(cell.value.total_seconds(), 3) == seconds
        assert cell.number_format == "[h]:mm:ss"
    district_s1 = by_tier[(S1, "区级")]
    waits = [c.value for c in district_s1[6:8]]
    assert all(isinstance(w, timedelta) for w in waits), waits
    assert [round(cast(timedelta, w).total_seconds(), 3) for w in waits] == [300, 348]
    assert by_tier[(S1, "市级")][6].value is None and by_tier[(S1, "市级")][8].value is None
    rollcall = _table(book["查岗"])
    assert rollcall[DISTRICT]["应答率"] == 0.5 and book["查岗"]["H2"].number_format == "0.0%"
    assert rollcall[S2] == {"单位代码": S2, "单位": rows[S2]["unit_name"], "查岗岗位数": 1, "应答": 0, "未应答": 1,
                            "空岗": 0, "待应答": 0, "应答率": 0}  # fmt: skip
    assert _table(book["通知签收"])[S2]["超时签收"] == 1 and _table(book["通知签收"])[S2]["反馈超时"] == 1
    assert _table(book["隐患"])[DISTRICT] == {"单位代码": DISTRICT, "单位": "丰台区（合计）", "发现隐患": 2,
                                             "已销号": 1, "逾期未整改": 1}  # fmt: skip
    assert [r[2].value for r in book["按周"].iter_rows(min_row=2)] == [1, 1, 1, 0, 0]

    # CSV: UTF-8 with a BOM, one row per street and the total.
    c = client.get("/api/v1/reports/accountability", params={**PERIOD, "format": "csv"}, headers=leader)
    assert c.status_code == 200 and c.headers["content-type"].startswith("text/csv")
    assert c.content.startswith(b"\xef\xbb\xbf")
    table = list(csv.DictReader(io.StringIO(c.content.decode("utf-8-sig"))))
    assert [t["单位代码"] for t in table] == [*month.streets, DISTRICT]
    s1 = next(t for t in table if t["单位代码"] == S1)
    assert (s1["事件数"], s1["街道级签收用时中位数（秒）"], s1["街道级签收用时P90（秒）"], s1["街道级越级次数"]) == (
        "2",
        "420.0",
        "660.0",
        "1",
    )
    assert (s1["市级签收用时中位数（秒）"], s1["应答率"], s1["逾期未整改"]) == ("", "1.0", "1")


def _table(sheet: Any) -> dict[str, dict[str, Any]]:
    rows = list(sheet.iter_rows(values_only=True))
    header = rows[0]
    return {str(r[0]): dict(zip(header, r, strict=True)) for r in rows[1:]}
