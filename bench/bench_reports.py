"""Accountability reports (问效问责) over a year of history on one database.

The history, inserted in bulk: 20,000 incidents over Beijing's 343 streets (levels IV 80 %, III 15 %, II 4 %,
I 1 %) with their tier rows (street and district required, the city too at II and I, informed at III), their
pages (a `page` timeline entry per post paged: the duty officer, and the leader when the first window passed),
acknowledgements (30 s to 15 min; 5 % never), the tiers passed over (10 % of street and district tiers), first
and final reports (10 % late, with the 迟报 marks); 100,000 roll-call entries (districts calling the roll of their
streets' two posts), 50,000 notice receipts (districts' notices to their streets) and 50,000 hazards.

Figures (p50/p99 over many rounds, each next to a same-run baseline: the bare aggregate query over the same rows,
one GROUP BY per child of the incidents' tier rows of the period):
  1. the city's monthly report for its 16 districts (app.reports.service.accountability: every section per
     district, the total and the weeks), target p99 < 500 ms;
  2. a district's monthly report for its streets, target p99 < 200 ms;
  3. the city's XLSX for the whole year (the report and app.reports.export.to_xlsx), target < 5 s.

    BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/acct python bench/bench_reports.py
    python bench/bench_reports.py              # a temporary SQLite file (smaller figures are not the target)
"""

from __future__ import annotations

import logging
import os
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, insert, text
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from app import migrate
from app.auth.principal import Principal
from app.clock import ManualClock
from app.db import make_engine, reader
from app.hazards.models import Hazard
from app.incidents.models import Incident, IncidentTier, Report, TimelineEntry
from app.notices.models import Notice, NoticeReceipt
from app.org import units as unit_service
from app.org.models import Tier, Unit
from app.reports import export, sql
from app.reports import service as report_service
from app.rollcall.models import RollCall, RollCallEntry
from bench.benchlib import database, load_average, percentile

SEED = 417
INCIDENTS = int(os.environ.get("BENCH_INCIDENTS", "20000"))
ENTRIES = int(os.environ.get("BENCH_ROLLCALL_ENTRIES", "100000"))
RECEIPTS = int(os.environ.get("BENCH_RECEIPTS", "50000"))
HAZARDS = int(os.environ.get("BENCH_HAZARDS", "50000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "100"))
YEAR_START = datetime(2025, 11, 30, 16, 0, tzinfo=UTC)  # 2025-12-01 00:00 in Beijing
YEAR = timedelta(days=365)
NOW = YEAR_START + YEAR + timedelta(hours=2)
MONTHS = [(date(2025 + (11 + m) // 12, (11 + m) % 12 + 1, 1)) for m in range(12)]  # Dec 2025 … Nov 2026


def _at(rng: random.Random) -> datetime:
    return YEAR_START + timedelta(seconds=rng.randrange(int(YEAR.total_seconds())))


def _bulk(session: Session, model: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), 5000):
        session.execute(insert(model), rows[start : start + 5000])


def populate(session: Session, rng: random.Random) -> tuple[Unit, list[Unit], list[Unit]]:
    unit_service.load_units(session, unit_service.read_units_file(unit_service.default_data_path()))
    units = list(session.exec(select(Unit).order_by(col(Unit.path))))
    city = next(u for u in units if u.tier == Tier.city)
    districts = [u for u in units if u.tier == Tier.district]
    streets = [u for u in units if u.tier == Tier.street]
    by_id = {u.id: u for u in units}
    streets_of = {d.id: [s for s in streets if s.parent_id == d.id] for d in districts}
    session.commit()

    incidents, tiers, entries, reports = [], [], [], []
    tier_id = entry_id = report_id = 0
    for n in range(1, INCIDENTS + 1):
        street = rng.choice(streets)
        district = by_id[street.parent_id]
        level = rng.choices(["IV", "III", "II", "I"], weights=[80, 15, 4, 1])[0]
        at = _at(rng)
        late_first = rng.random() < 0.1
        incidents.append({
            "id": n, "code": f"B{n:07d}", "source": "agency:119", "external_id": f"b-{n}", "category": "fire",
            "title": "火情", "description": "", "unit_id": street.id, "unit_path": street.path, "address": "",
            "occurred_at": at, "deaths": 0, "serious_injuries": 0, "trapped": 0, "missing": 0,
            "economic_loss_cny": 0, "sensitive": False, "reported_severity": level, "computed_severity": "IV",
            "manual_severity": None, "severity": level, "lead_tier": "district" if level in ("III", "IV") else "city",
            "rules_version": 1, "status": "closed", "created_at": at, "updated_at": at,
            "first_report_at": at + timedelta(hours=7 if late_first else 1), "report_due_at": None,
            "overdue_notified_for": None, "resolved_at": at + timedelta(hours=8), "closed_at": at + timedelta(hours=9),
        })  # fmt: skip
        chain = [(Tier.street, street), (Tier.district, district), (Tier.city, city)]
        for tier, unit in chain:
            required = tier != Tier.city or level in ("I", "II")
            informed = tier == Tier.city and level == "III"
            tier_id += 1
            passed = required and tier != Tier.city and rng.random() < 0.1
            step = 2 if passed else (rng.choice([0, 0, 0, 1]) if required else -1)
            acked = at + timedelta(seconds=rng.randrange(30, 900)) if required and rng.random() > 0.05 else None
            tiers.append({
                "id": tier_id, "incident_id": n, "tier": tier, "unit_id": unit.id, "required": required,
                "informed": informed, "step": step, "next_step_at": None, "notices": None, "notice_at": None,
                "escalated_from": None, "required_at": at if required else None, "required_because": None,
                "acknowledged_at": acked, "acknowledged_by_id": None,
                "acknowledged_by_name": "值班员" if acked else None, "acknowledged_via": "sms" if acked else None,
            })  # fmt: skip
            if required:
                for k in range(min(step, 1) + 1):
                    entry_id += 1
                    entries.append({"id": entry_id, "incident_id": n, "at": at + timedelta(minutes=5 * k),
                                    "kind": "page", "actor": "system", "tier": tier, "message": "通知",
                                    "data": {"step": k}})  # fmt: skip
        if late_first:
            entry_id += 1
            entries.append({"id": entry_id, "incident_id": n, "at": at + timedelta(hours=6), "kind": "late",
                            "actor": "system", "tier": "district", "message": "首报逾期(迟报)",
                            "data": {"report": "first", "due_at": (at + timedelta(hours=6)).isoformat()}})  # fmt: skip
        for number, kind in ((1, "first"), (2, "final")):
            report_id += 1
            reports.append({"id": report_id, "incident_id": n, "kind": kind, "number": number, "text": "报告",
                            "figures": None, "author": "agency:119", "at": at + timedelta(hours=number),
                            "late": late_first and kind == "first"})  # fmt: skip
    _bulk(session, Incident, incidents)
    _bulk(session, IncidentTier, tiers)
    _bulk(session, TimelineEntry, entries)
    _bulk(session, Report, reports)
    session.commit()

    calls: list[dict[str, Any]] = []
    call_entries: list[dict[str, Any]] = []
    n_calls = 0
    while len(call_entries) < ENTRIES:
        n_calls += 1
        district = rng.choice(districts)
        at = _at(rng)
        calls.append({"id": n_calls, "code": f"R{n_calls:06d}", "unit_id": district.id, "unit_path": district.path,
                      "scope": "children", "roles": ["duty_officer", "leader"], "answer_within_seconds": 300,
                      "note": "", "started_at": at, "due_at": at + timedelta(minutes=5), "started_by": "bench",
                      "schedule_id": None, "told_at": at + timedelta(minutes=6)})  # fmt: skip
        for s in streets_of[district.id]:
            for role in ("duty_officer", "leader"):
                state = rng.choices(["answered", "missed", "vacant"], weights=[90, 7, 3])[0]
                answered = state == "answered"
                call_entries.append({"roll_call_id": n_calls, "unit_id": s.id, "role": role, "person_id": None,
                                     "person_name": None, "state": state, "channel": "sms" if answered else None,
                                     "answered_at": at + timedelta(seconds=60) if answered else None})  # fmt: skip
    _bulk(session, RollCall, calls)
    _bulk(session, RollCallEntry, call_entries[:ENTRIES])

    notices: list[dict[str, Any]] = []
    receipts: list[dict[str, Any]] = []
    n_notices = 0
    while len(receipts) < RECEIPTS:
        n_notices += 1
        district = rng.choice(districts)
        at = _at(rng)
        notices.append({"id": n_notices, "code": f"N{n_notices:06d}", "kind": "notice", "title": "通知", "body": "",
                        "unit_id": district.id, "unit_path": district.path, "to": {"scope": "children"},
                        "sign_within_seconds": 1800, "feedback_due_at": at + timedelta(hours=4), "incident_id": None,
                        "color": None, "status": "active", "version": 1, "issued_by": "bench", "created_at": at,
                        "updated_at": at, "cancelled_at": None})  # fmt: skip
        for s in streets_of[district.id]:
            delay = rng.choice([300, 900, 1500, 2400, None])
            receipts.append({"notice_id": n_notices, "unit_id": s.id, "unit_path": s.path, "parent_id": None,
                             "state": "signed" if delay else "overdue", "due_at": at + timedelta(seconds=1800),
                             "signed_at": at + timedelta(seconds=delay) if delay else None, "signed_by_id": None,
                             "signed_by_name": None, "signed_via": None, "signed_version": 1 if delay else None,
                             "feedback": None, "feedback_at": None, "feedback_by_name": None,
                             "feedback_late": rng.random() < 0.2, "forwarded": False, "created_at": at,
                             "issuer_told_at": None})  # fmt: skip
    _bulk(session, Notice, notices)
    _bulk(session, NoticeReceipt, receipts[:RECEIPTS])

    hazards = []
    for n in range(1, HAZARDS + 1):
        street = rng.choice(streets)
        found = _at(rng)
        due = found + timedelta(days=rng.randrange(3, 60))
        status = rng.choice(["open", "rectifying", "rectifying", "submitted", "closed", "closed", "closed"])
        hazards.append({
            "code": f"H{n:07d}", "unit_id": street.id, "unit_path": street.path, "city_code": city.code,
            "district_code": by_id[street.parent_id].code, "street_code": street.code, "venue": "场所",
            "venue_category": "hospital", "address": "", "description": "", "level": "general", "basis": "",
            "found_at": found, "source": "inspection", "responsible_org": "单位", "responsible_person": "负责人",
            "responsible_phone": "13800138000", "deadline": due.date(), "due_at": due, "measures": "",
            "status": status, "reported_by": "bench", "created_at": found, "updated_at": found,
            "closed_at": found + timedelta(days=2) if status == "closed" else None, "failed_verifications": 0,
        })  # fmt: skip
    _bulk(session, Hazard, hazards)
    session.commit()
    return city, districts, streets


def measure(label: str, work: Callable[[], object], rounds: int = ROUNDS) -> tuple[float, float]:
    work()  # warm the statement caches and the database's buffers
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        work()
        times.append((time.perf_counter() - began) * 1000)
    p50, p99 = percentile(times, 0.5), percentile(times, 0.99)
    print(f"  {label:<62} p50 {p50:8.2f} ms   p99 {p99:8.2f} ms")
    return p50, p99


def main() -> None:
    logging.disable(logging.WARNING)
    url, drop = database("reports")
    try:
        migrate.upgrade(url)
        engine = make_engine(url)
        rng = random.Random(SEED)
        began = time.perf_counter()
        with Session(engine, expire_on_commit=False) as session:
            city, districts, _streets = populate(session, rng)
        print(
            f"{engine.dialect.name}: {INCIDENTS} incidents (with tiers, pages, acks, reports), {ENTRIES} roll-call "
            f"entries, {RECEIPTS} notice receipts, {HAZARDS} hazards loaded in {time.perf_counter() - began:.1f} s"
        )
        if engine.dialect.name == "postgresql":  # what autovacuum would have done by now: statistics, visibility map
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE"))
        admin = Principal.system("bench")
        clock = ManualClock(NOW)
        read = reader(engine)

        def month() -> report_service.Period:
            first = rng.choice(MONTHS)
            return report_service.Period(first, (first + timedelta(days=32)).replace(day=1))

        def report_of(pick: Callable[[], Unit]) -> Callable[[], None]:
            def run() -> None:
                with Session(read) as s:
                    report_service.accountability(s, clock=clock, actor=admin, unit=pick(), period=month())

            return run

        def bare(pick: Callable[[], Unit]) -> Callable[[], None]:
            """The bare aggregate: the period's incident tier rows counted per child, one GROUP BY."""

            def run() -> None:
                unit = pick()
                with Session(read) as s:
                    children = report_service.children_of(s, unit)
                    period = month()
                    start = datetime.combine(period.start, datetime.min.time(), tzinfo=UTC) - timedelta(hours=8)
                    end = datetime.combine(period.end, datetime.min.time(), tzinfo=UTC) - timedelta(hours=8)
                    key = sql.by_child(unit, children).key(col(Incident.unit_path), None)
                    stmt = (
                        sa_select(
                            key, col(IncidentTier.tier), func.count(), func.count(col(IncidentTier.acknowledged_at))
                        )
                        .join(Incident, col(Incident.id) == col(IncidentTier.incident_id))
                        .where(col(Incident.created_at) >= start, col(Incident.created_at) < end)
                    )
                    where = sql.in_subtree(col(Incident.unit_path), unit)
                    if where is not None:
                        stmt = stmt.where(where)
                    s.execute(stmt.group_by(key, col(IncidentTier.tier))).all()

            return run

        def year_xlsx() -> None:
            with Session(read) as s:
                report = report_service.accountability(
                    s, clock=clock, actor=admin, unit=city, period=report_service.Period(MONTHS[0], date(2026, 12, 1))
                )
                export.to_xlsx(report)

        print(f"load average before: {load_average()}; {ROUNDS} rounds each, a random month of the year per round; "
              "the machine is shared with other engineers' test runs (figures are noisy):")  # fmt: skip
        measure("baseline: bare GROUP BY per district of a month's tier rows", bare(lambda: city))
        measure("the city's monthly report, its 16 districts (target p99 < 500)", report_of(lambda: city))
        measure("baseline: bare GROUP BY per street of a month's tier rows", bare(lambda: rng.choice(districts)))
        measure("a district's monthly report, its streets (target p99 < 200)", report_of(lambda: rng.choice(districts)))
        measure("the city's XLSX for the whole year (target < 5000)", year_xlsx, rounds=max(3, ROUNDS // 20))
        print(f"load average after: {load_average()}")
        engine.dispose()
    finally:
        drop()


if __name__ == "__main__":
    main()
