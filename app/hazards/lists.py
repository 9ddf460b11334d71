"""Problem lists in and out: import a CSV or XLSX whose columns are the JSON field names (all rows or none, each error
naming its row, the header being row 1, and its column), export the register with the list's filters.

An export carries each hazard's `code` and some columns for people to read (unit_name, status…); importing an
export again changes nothing: a row with the code of a hazard already in the register is left as it is. Text that a
spreadsheet would run as a formula (starting with = + - @) is written with a leading apostrophe, which an import
takes off again.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException
from pydantic import ValidationError
from sqlmodel import Session, col, select

from app import audit
from app.auth.principal import Principal, authorize
from app.clock import Clock
from app.errors import DomainError, FieldError, Invalid
from app.hazards import categories, chase
from app.hazards import service as hazard_service
from app.hazards.models import Hazard, HazardEntry
from app.hazards.schemas import CREATE_FIELDS, HazardCreate, ImportResult
from app.org.models import Unit
from app.roster.resolve import zone_of

REQUIRED = (
    "unit_code",
    "venue",
    "venue_category",
    "level",
    "found_at",
    "source",
    "responsible_org",
    "responsible_person",
    "responsible_phone",
    "deadline",
)
# Columns an export adds for people to read; an import ignores them (and `code` names a hazard already in).
EXTRA = ("unit_name", "venue_category_name", "status", "plan_measures", "plan_person", "listed_tier", "closed_at")
EXPORT_COLUMNS = ("code", *CREATE_FIELDS, *EXTRA)
MAX_ROWS = 10_000
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_ERRORS = 100
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
NOT_ESCAPED = {"responsible_phone", "found_at", "deadline", "closed_at"}  # our own formats, never formulas


@dataclass(frozen=True)
class Formula:
    """A spreadsheet cell holding a formula: its value is not in the file (or not to be trusted), so it is refused."""

    text: str


@dataclass
class Sheet:
    header: list[str]
    rows: Iterator[tuple[int, list[Any]]]  # (row number, the header being row 1; values)
    letters: bool  # a spreadsheet: columns also named by letter


def _read_csv(raw: bytes) -> Sheet:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Invalid.field("file", "a CSV must be UTF-8 (or give an XLSX file)") from exc
    try:  # read whole (uploads are bounded): a csv.Error (a stray \r, a field past the module's limit) is a 422 here
        header, *body = list(csv.reader(io.StringIO(text, newline=None))) or [[]]
    except csv.Error as exc:
        raise Invalid.field("file", f"not a readable CSV: {exc}") from exc
    return Sheet([h.strip() for h in header], ((n, row) for n, row in enumerate(body, start=2)), letters=False)


def _read_xlsx(raw: bytes) -> Sheet:
    try:
        book = load_workbook(io.BytesIO(raw), read_only=True, data_only=False)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise Invalid.field("file", f"not a readable XLSX workbook ({type(exc).__name__})") from exc
    sheet = book.worksheets[0] if book.worksheets else None
    if sheet is None:
        raise Invalid.field("file", "the workbook has no sheet")
    rows = sheet.iter_rows()

    def values(cells: tuple[Any, ...]) -> list[Any]:
        return [Formula(str(c.value)) if c.data_type == "f" else c.value for c in cells]

    header = [("" if v is None else str(v)).strip() for v in values(next(rows, ()))]
    while header and header[-1] == "":
        header.pop()
    return Sheet(header, ((n, values(r)) for n, r in enumerate(rows, start=2)), letters=True)


def read(raw: bytes) -> Sheet:
    """A CSV or XLSX file (told apart by content: an XLSX is a ZIP archive)."""
    if not raw:
        raise Invalid.field("file", "the file is empty")
    return _read_xlsx(raw) if raw.startswith(b"PK\x03\x04") else _read_csv(raw)


def _unescape(value: str) -> str:
    if value.startswith("'") and value[1:2] in FORMULA_START and value[1:2] != "":
        return value[1:]
    return value


def _cell(column: str, value: Any, unit: Unit | None) -> Any:
    """A cell as the JSON field would carry it: spreadsheets give dates, times and numbers of their own."""
    if value is None:
        return None
    if column == "found_at":
        if isinstance(value, datetime) or (isinstance(value, date) and not isinstance(value, datetime)):
            moment = value if isinstance(value, datetime) else datetime.combine(value, time())
            if moment.tzinfo is None and unit is not None:
                moment = moment.replace(tzinfo=zone_of(unit))
            return moment
        text = str(value).strip()
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return text
        if parsed.tzinfo is None and unit is not None:  # a local time, in the unit's zone
            parsed = parsed.replace(tzinfo=zone_of(unit))
        return parsed
    if column == "deadline" and isinstance(value, datetime):
        return value.date()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return _unescape(text)


def _where(sheet: Sheet, row: int, column: str) -> str:
    if sheet.letters and column in sheet.header:
        return f"row {row}, column {column} ({get_column_letter(sheet.header.index(column) + 1)})"
    return f"row {row}, column {column}"


def parse(
    session: Session, *, actor: Principal, clock: Clock, raw: bytes
) -> tuple[list[hazard_service.Checked], list[str], list[FieldError]]:
    """Every row checked: the hazards to create, the codes of rows already in the register, and the problems."""
    sheet = read(raw)
    header = sheet.header
    if not any(header):
        raise Invalid.field("header", "row 1 must name the columns (" + ", ".join(CREATE_FIELDS) + ")")
    known = set(EXPORT_COLUMNS)
    unknown = [h for h in header if h not in known]
    missing = [h for h in REQUIRED if h not in header]
    duplicated = sorted({h for h in header if h and header.count(h) > 1})
    if unknown or missing or duplicated:
        why = []
        if missing:
            why.append(f"missing {', '.join(missing)}")
        if unknown:
            why.append(f"unknown {', '.join(repr(u) for u in unknown)}")
        if duplicated:
            why.append(f"twice: {', '.join(duplicated)}")
        raise Invalid.field("header", "row 1: " + "; ".join(why) + f" (columns: {', '.join(CREATE_FIELDS)})")
    units = {u.code: u for u in session.exec(select(Unit))}
    now = clock.now()
    problems: list[FieldError] = []
    checked: list[hazard_service.Checked] = []
    existing_codes: list[tuple[int, str]] = []
    count = 0

    def bad(row: int, column: str, message: str) -> None:
        problems.append(FieldError(f"rows[{row}].{column}", f"{_where(sheet, row, column)}: {message}"))

    for number, values in sheet.rows:
        cells = dict(zip(header, values, strict=False))
        if not any(v not in (None, "") for v in cells.values()):
            continue
        count += 1
        if count > MAX_ROWS:
            raise Invalid.field("file", f"at most {MAX_ROWS} rows per file")
        code = str(cells.get("code") or "").strip()
        if code:
            existing_codes.append((number, code))
            continue
        formulas = [c for c, v in cells.items() if isinstance(v, Formula)]
        for column in formulas:
            bad(number, column, "holds a formula; put its value in the cell (as text)")
        if formulas:
            continue
        unit = units.get(str(cells.get("unit_code") or "").strip())
        body = {
            column: _cell(column, cells.get(column), unit)
            for column in CREATE_FIELDS
            if column in cells and cells.get(column) not in (None, "")
        }
        try:
            data = HazardCreate.model_validate(body)
        except ValidationError as exc:
            for err in exc.errors():
                loc = [str(p) for p in err.get("loc", ())]
                message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
                column = loc[0] if loc else "row"
                if not loc and ":" in message:  # a rule over several fields names its field first
                    column, message = (part.strip() for part in message.split(":", 1))
                bad(number, column, message)
            continue
        try:
            checked.append(hazard_service.check(actor, data, unit, now=now))
        except DomainError as exc:
            for f in exc.fields or [FieldError("unit_code", exc.message)]:
                bad(number, f.field, f.message)
    if existing_codes:
        found = dict(
            session.exec(
                select(Hazard.code, Hazard.unit_id).where(col(Hazard.code).in_([c for _, c in existing_codes]))
            ).all()
        )
        by_id = {u.id: u for u in units.values()}
        for number, code in existing_codes:
            unit_id = found.get(code)
            if unit_id is None or not actor.covers(by_id[unit_id]):
                bad(number, "code", f"no hazard {code} in your scope (leave code empty for a new hazard)")
    problems.sort(key=lambda f: int(f.field.split("]")[0].removeprefix("rows[")))
    return checked, [c for _, c in existing_codes], problems


def import_file(session: Session, *, clock: Clock, actor: Principal, raw: bytes) -> ImportResult:
    """Validate every row, then register them all (or nothing: the 422 names each bad row and column)."""
    authorize(actor, "hazards:write")
    checked, unchanged, problems = parse(session, actor=actor, clock=clock, raw=raw)
    if problems:
        raise Invalid(
            f"{len(problems)} problem(s) in the file; nothing was imported. First: {problems[0].message}",
            fields=problems[:MAX_ERRORS],
        )
    if not checked and not unchanged:
        raise Invalid.field("file", "no rows to import")
    now = clock.now()
    codes = hazard_service.unique_codes(session, len(checked))
    hazards = [hazard_service.build(c, code=code, actor=actor, now=now) for c, code in zip(checked, codes, strict=True)]
    session.add_all(hazards)
    session.flush()
    entries = []
    for hazard, c in zip(hazards, checked, strict=True):
        assert hazard.id is not None
        entries.append(
            HazardEntry(
                hazard_id=hazard.id,
                at=now,
                kind="reported",
                actor=actor.actor,
                message=f"{c.unit.name}登记{'重大' if hazard.level == 'major' else '一般'}隐患（清单导入）："
                f"{hazard.venue}（{categories.name(hazard.venue_category)}），整改期限{hazard.deadline.isoformat()}",
                data={
                    "level": hazard.level,
                    "deadline": hazard.deadline.isoformat(),
                    "source": hazard.source,
                    "imported": True,
                },
            )
        )
        audit.record(
            session,
            clock=clock,
            actor=actor,
            action="hazard.import",
            object_type="hazard",
            object_id=hazard.id,
            unit_path=c.unit.path,
            after=hazard_service.snapshot(hazard),
        )
    session.add_all(entries)
    chase.plan_many(session, clock=clock, hazards=[(h, c.unit) for h, c in zip(hazards, checked, strict=True)])
    session.flush()
    return ImportResult(rows=len(checked) + len(unchanged), created=len(hazards), unchanged=len(unchanged), codes=codes)


def _escape(column: str, value: str) -> str:
    if column not in NOT_ESCAPED and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _export_values(hazard: Hazard, unit: Unit) -> list[str]:
    zone = zone_of(unit)
    values: dict[str, Any] = {
        "code": hazard.code,
        "unit_code": unit.code,
        "venue": hazard.venue,
        "venue_category": hazard.venue_category,
        "address": hazard.address,
        "description": hazard.description,
        "level": hazard.level,
        "basis": hazard.basis,
        "found_at": hazard.found_at.astimezone(zone).isoformat(),
        "source": hazard.source,
        "responsible_org": hazard.responsible_org,
        "responsible_person": hazard.responsible_person,
        "responsible_phone": hazard.responsible_phone,
        "deadline": hazard.deadline.isoformat(),
        "measures": hazard.measures,
        "unit_name": unit.name,
        "venue_category_name": categories.name(hazard.venue_category),
        "status": hazard.status,
        "plan_measures": hazard.plan_measures or "",
        "plan_person": hazard.plan_person or "",
        "listed_tier": hazard.listed_tier or "",
        "closed_at": hazard.closed_at.astimezone(zone).isoformat() if hazard.closed_at else "",
    }
    return [_escape(c, str(values[c])) for c in EXPORT_COLUMNS]


def _rows(session: Session, *, clock: Clock, actor: Principal, filters: hazard_service.Filters) -> Iterator[list[str]]:
    stmt = hazard_service.query(session, actor=actor, filters=filters, now=clock.now()).order_by(col(Hazard.id))
    hazards: Sequence[Hazard] = session.exec(stmt).all()
    units = hazard_service.units_of(session, hazards)
    for hazard in hazards:
        yield _export_values(hazard, units[hazard.unit_id])


def export_csv(session: Session, *, clock: Clock, actor: Principal, filters: hazard_service.Filters) -> str:
    """The register (with the list's filters) as CSV, importable again."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    writer.writerows(_rows(session, clock=clock, actor=actor, filters=filters))
    return out.getvalue()


def export_xlsx(session: Session, *, clock: Clock, actor: Principal, filters: hazard_service.Filters) -> bytes:
    """The same as XLSX; every cell is text, so that a spreadsheet keeps phones and codes exactly."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet("隐患清单")
    sheet.append(list(EXPORT_COLUMNS))
    for values in _rows(session, clock=clock, actor=actor, filters=filters):
        cells = []
        for value in values:
            cell = WriteOnlyCell(sheet, value=value)
            cell.data_type = "s"  # never a formula, whatever the text starts with
            cells.append(cell)
        sheet.append(cells)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
