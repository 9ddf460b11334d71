"""Problem lists in and out: a 2,000-row XLSX imported whole and exported back the same; a bad row names its row and
column and nothing is imported; CSV too; an export imported again changes nothing."""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi.testclient import TestClient
from openpyxl import Workbook, load_workbook
from openpyxl.cell import WriteOnlyCell
from sqlmodel import Session, func, select

from app.clock import ManualClock
from app.hazards.models import Hazard, HazardEntry
from app.hazards.schemas import CREATE_FIELDS
from tests.hazards.helpers import OTHER_STREET, STREET, team

STREETS = [STREET, "110106002", "110106003"]
CATEGORIES = ["hospital", "elderly_care", "gas", "ebike", "construction_site"]


def rows(n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        major = i % 7 == 0
        out.append(
            {
                "unit_code": STREETS[i % 3],
                "venue": f"场所{i:04d}",
                "venue_category": CATEGORIES[i % 5],
                "address": f"某路{i}号",
                "description": '=HYPERLINK("http://x")' if i == 5 else f"隐患描述{i}",
                "level": "major" if major else "general",
                "basis": "GB 35181-2017" if major else "",
                "found_at": f"2026-04-{1 + i % 17:02d}T09:30:00+08:00",
                "source": ["self_check", "inspection", "public_report", "hotline"][i % 4],
                "responsible_org": f"责任单位{i}",
                "responsible_person": f"责任人{i}",
                "responsible_phone": f"+86139{i:08d}",
                "deadline": f"2026-05-{1 + i % 28:02d}",
                "measures": "-立即整改" if i == 6 else "限期整改",
            }
        )
    return out


def xlsx(data: list[dict[str, Any]], header: list[str] | None = None) -> bytes:
    book = Workbook(write_only=True)
    sheet = book.create_sheet("清单")
    columns = header or list(CREATE_FIELDS)
    sheet.append(columns)
    for row in data:
        cells = []
        for c in columns:
            cell = WriteOnlyCell(sheet, value=row.get(c, ""))
            cell.data_type = "s"  # typed as text, as a person typing "=…" after an apostrophe would get
            cells.append(cell)
        sheet.append(cells)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def upload(client: TestClient, headers: dict[str, str], data: bytes, name: str = "list.xlsx") -> Any:
    return client.post("/api/v1/hazards/import", files={"file": (name, data)}, headers=headers)


def hazard_count(session: Session) -> int:
    session.commit()
    return session.exec(select(func.count()).select_from(Hazard)).one()


def test_a_2000_row_xlsx_round_trips(client: TestClient, session: Session, clock: ManualClock) -> None:
    t = team(client, session, clock)
    data = rows(2000)
    r = upload(client, t["city_admin"], xlsx(data))
    assert r.status_code == 200, r.text[:2000]
    assert (r.json()["rows"], r.json()["created"], r.json()["unchanged"]) == (2000, 2000, 0)
    assert hazard_count(session) == 2000
    assert session.exec(select(func.count()).select_from(HazardEntry)).one() == 2000

    exported = client.get("/api/v1/hazards/export?unit=110106&format=xlsx", headers=t["city_admin"])
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(io.BytesIO(exported.content), read_only=True).worksheets[0]
    table = list(sheet.iter_rows(values_only=True))
    header = list(table[0])
    back = [dict(zip(header, values, strict=True)) for values in table[1:]]
    assert len(back) == 2000
    by_venue = {b["venue"]: b for b in back}
    for row in data:
        got = by_venue[row["venue"]]
        for column in CREATE_FIELDS:
            expected = row[column]
            if column == "description" and str(expected).startswith("="):
                expected = "'" + expected  # a formula is exported as text
            if column == "measures" and str(expected).startswith("-"):
                expected = "'" + expected
            assert (got[column] or "") == expected, (row["venue"], column)
    assert by_venue["场所0000"]["status"] == "open" and by_venue["场所0000"]["unit_name"] == "右安门街道"

    again = upload(client, t["city_admin"], exported.content)  # an export imported again changes nothing
    assert again.status_code == 200, again.text[:500]
    assert (again.json()["created"], again.json()["unchanged"]) == (0, 2000)
    assert hazard_count(session) == 2000
    # Formulas were escaped on the way out and unescaped on the way in.
    session.commit()
    assert session.exec(select(Hazard.description).where(Hazard.venue == "场所0005")).one().startswith("=HYPERLINK")


def test_a_bad_row_names_its_row_and_column_and_nothing_is_imported(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    t = team(client, session, clock)
    data = [r | {"unit_code": STREET} for r in rows(30)]
    data[3]["venue_category"] = "school"  # row 5 (the header is row 1)
    data[10]["deadline"] = "2026-03-01"  # before found_at
    data[20]["unit_code"] = OTHER_STREET  # outside the inspector's street
    data[25]["responsible_phone"] = "110"
    r = upload(client, t["inspector"], xlsx(data))
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    fields = [e["field"] for e in errors]
    assert fields == ["rows[5].venue_category", "rows[12].deadline", "rows[22].unit_code", "rows[27].responsible_phone"]
    assert errors[0]["message"].startswith("row 5, column venue_category (C): unknown category")
    assert "nothing was imported" in r.json()["message"]
    assert hazard_count(session) == 0

    header = upload(client, t["inspector"], xlsx(rows(2), header=["unit_code", "venue", "colour"]))
    assert header.status_code == 422 and header.json()["errors"][0]["field"] == "header"
    assert "missing" in header.json()["message"] and "'colour'" in header.json()["message"]
    garbage = upload(client, t["inspector"], b"PK\x03\x04 not really a zip")
    assert garbage.status_code == 422 and garbage.json()["errors"][0]["field"] == "file"
    assert upload(client, t["inspector"], b"\xff\xfe\x00bad", name="x.csv").status_code == 422
    huge = upload(client, t["inspector"], b"unit_code,venue\n" + b"x" * 200_000, name="x.csv")  # past csv's field limit
    assert huge.status_code == 422 and huge.json()["errors"][0]["field"] == "file", huge.text[:300]
    assert hazard_count(session) == 0


def test_csv_import_and_filtered_csv_export(client: TestClient, session: Session, clock: ManualClock) -> None:
    t = team(client, session, clock)
    data = [r | {"unit_code": STREET} for r in rows(12)]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(CREATE_FIELDS))
    writer.writeheader()
    writer.writerows(data)
    r = upload(client, t["inspector"], ("\ufeff" + out.getvalue()).encode(), name="list.csv")
    assert r.status_code == 200, r.text
    assert r.json()["created"] == 12
    exported = client.get(f"/api/v1/hazards/export?unit={STREET}&level=major", headers=t["inspector"])
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    back = list(csv.DictReader(io.StringIO(exported.text)))
    assert sorted(b["venue"] for b in back) == ["场所0000", "场所0007"]
    assert all(b["level"] == "major" for b in back)
    refused = client.get(f"/api/v1/hazards/export?unit={OTHER_STREET}", headers=t["inspector"])
    assert refused.status_code == 403
