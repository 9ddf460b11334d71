"""The demo roster: every unit gets a duty-officer rotation and a leader rotation, so the board has no gap.

People made here have no password (hashing 1,800 passwords would take minutes); the demo sign-ins are placed in
their own units' rotations, on duty at install time. Idempotent: a unit/role that has any rotation is left alone.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from sqlmodel import Session, col, select

from app import audit, labels
from app.auth.principal import Principal
from app.clock import Clock
from app.org.models import Person, Unit
from app.roster.models import Override, Rotation
from app.roster.resolve import zone_of
from app.roster.timeline import wall_to_utc

ACTOR = Principal.system("demo")
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红建文辉力鹏飞斌宇浩凯"
HANDOFF = time(8, 30)
# (shift minutes, cycle minutes, how many people)
DUTY = (1440, 1440, 3)
LEADER = (10080, 10080, 2)
# One street runs a day/night pattern instead of 24-hour duty.
DAY_NIGHT_UNIT = "110105001"
LOGINS = {
    ("110000", "duty_officer"): "city.duty",
    ("110000", "leader"): "city.leader",
    ("110106", "duty_officer"): "fengtai.duty",
    ("110106", "leader"): "fengtai.leader",
    ("110106001", "duty_officer"): "street.duty",
    ("110106001", "leader"): "street.leader",
}
OVERRIDE_UNITS = ["110000", "110106", "110106001", "110105", "110108"]


def _name(n: int, unit: Unit, role: str) -> str:
    label = labels.label("duty_roles", role)
    return f"{SURNAMES[n % len(SURNAMES)]}{GIVEN[(n * 7) % len(GIVEN)]}({unit.name}{label})"


def install(session: Session, *, clock: Clock) -> list[str]:
    """Create what is missing of the demo roster; the lines describe it."""
    units = list(session.exec(select(Unit).order_by(col(Unit.path))))
    have = {(u, r) for u, r in session.exec(select(Rotation.unit_id, Rotation.role))}
    missing = [(u, role) for u in units for role in ("duty_officer", "leader") if (u.id, role) not in have]
    if not missing:
        return ["Rosters: every unit already has its rotations."]
    logins = {
        key: session.exec(select(Person).where(Person.username == username)).first() for key, username in LOGINS.items()
    }
    now = clock.now()
    new_people: list[Person] = []
    plan: list[tuple[Unit, str, list[Person], int, int, time]] = []
    serial = session.exec(select(Person.id).order_by(col(Person.id).desc())).first() or 0
    for unit, role in missing:
        assert unit.id is not None
        shift, cycle, size = LEADER if role == "leader" else DUTY
        patterns = [(shift, cycle, HANDOFF)]
        if unit.code == DAY_NIGHT_UNIT and role == "duty_officer":
            patterns = [(540, 1440, HANDOFF), (900, 1440, time(17, 30))]
        for shift_min, cycle_min, handoff in patterns:
            people: list[Person] = []
            login = logins.get((unit.code, role))
            if login is not None and login.active and handoff == HANDOFF:
                people.append(login)
            while len(people) < size:
                serial += 1
                person = Person(
                    name=_name(serial, unit, role),
                    phone=f"+86137{serial:08d}",
                    unit_id=unit.id,
                    roles=[role],
                    active=True,
                    created_at=now,
                    updated_at=now,
                )
                people.append(person)
                new_people.append(person)
            plan.append((unit, role, people, shift_min, cycle_min, handoff))
    session.add_all(new_people)
    session.flush()
    rotations = []
    for unit, role, people, shift_min, cycle_min, handoff in plan:
        assert unit.id is not None
        zone = zone_of(unit)
        # Start six weeks before today's duty day: 42 is a multiple of 3 and of 14, so the first participant (the
        # demo sign-in, where there is one) holds the shift at install time.
        duty_day = (now.astimezone(zone) - timedelta(hours=handoff.hour, minutes=handoff.minute)).date()
        start = duty_day - timedelta(days=42)
        rotation = Rotation(
            unit_id=unit.id,
            role=role,
            name="演示轮班" if handoff == HANDOFF else "演示夜班",
            participants=[p.id for p in people if p.id is not None],
            start_date=start,
            handoff_time=handoff,
            shift_minutes=shift_min,
            cycle_minutes=cycle_min,
            starts_at=wall_to_utc(datetime.combine(start, handoff), zone),
            created_at=now,
        )
        rotations.append(rotation)
    session.add_all(rotations)
    overrides = _overrides(units, rotations, now)
    session.add_all(overrides)
    session.flush()
    audit.record(
        session,
        clock=clock,
        actor=ACTOR,
        action="roster.demo",
        object_type="rotation",
        object_id=f"demo:{len(rotations)}",
        after={"rotations": len(rotations), "people": len(new_people), "overrides": len(overrides)},
    )
    return [
        f"Rosters: {len(rotations)} rotations for {len({u.id for u, *_ in plan})} units, "
        f"{len(new_people)} people on duty (no passwords), {len(overrides)} overrides (替班).",
    ]


def _overrides(units: list[Unit], rotations: list[Rotation], now: datetime) -> list[Override]:
    """替班 on the next duty day at a few units: the second duty officer covers for the one rostered."""
    by_code = {u.code: u for u in units}
    out = []
    for code in OVERRIDE_UNITS:
        unit = by_code.get(code)
        rotation = next((r for r in rotations if unit and r.unit_id == unit.id and r.role == "duty_officer"), None)
        if unit is None or rotation is None or len(rotation.participants) < 2:
            continue
        zone = zone_of(unit)
        local = now.astimezone(zone)
        day: date = (local - timedelta(hours=8, minutes=30)).date() + timedelta(days=2)
        start = wall_to_utc(datetime.combine(day, HANDOFF), zone)
        out.append(
            Override(
                unit_id=rotation.unit_id,
                role="duty_officer",
                person_id=rotation.participants[1],
                starts_at=start,
                ends_at=start + timedelta(hours=24),
                reason="演示：替班",
                created_at=now,
            )
        )
    return out
