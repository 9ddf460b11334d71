"""A leader's instruction on an incident (领导批示): on the incident's timeline, and an instruction notice to the
incident's units below the leader's tier, to be signed and fed back."""

from __future__ import annotations

from sqlmodel import Session

from app.auth.principal import Principal, authorize
from app.clock import Clock
from app.errors import Forbidden, Invalid
from app.incidents import service as incident_service
from app.incidents import timeline
from app.notices import service as notice_service
from app.notices.models import Kind, Notice
from app.notices.schemas import Addressing, InstructionCreate, NoticeCreate
from app.org import paths
from app.org import units as unit_service
from app.org.models import Person, Role, Unit
from app.roster import service as roster_service


def _issuing_unit(session: Session, *, clock: Clock, person: Person, chain: list[Unit]) -> Unit | None:
    """The chain unit the person is a leader (or admin) of: their home unit, or one where they lead the shift now."""
    for unit in chain:
        if unit.id == person.unit_id and {Role.leader, Role.admin} & set(person.roles):
            return unit
    on_duty = roster_service.resolve_many(session, units=chain, at=clock.now())
    for unit in chain:
        holder = on_duty.get((unit.id or 0, "leader"))
        if holder is not None and holder.id == person.id:
            return unit
    return None


def instruct(session: Session, *, clock: Clock, actor: Principal, incident_id: int, data: InstructionCreate) -> Notice:
    """Record the instruction on the timeline and send it down to the incident's lower tiers."""
    inc = incident_service.lock(session, incident_id)
    incident_service.get(session, actor=actor, incident_id=incident_id)  # 404 outside what the actor may read
    authorize(actor, "instructions:write")
    if actor.kind != "person" or actor.id is None:
        raise Forbidden("only a leader or an admin gives an instruction on an incident")
    person = session.get(Person, actor.id)
    assert person is not None
    chain = unit_service.chain(session, unit_service.get(session, inc.unit_path.rsplit("/", 1)[-1]))
    issuer = _issuing_unit(session, clock=clock, person=person, chain=chain)
    if issuer is None:
        raise Forbidden(f"{person.name} is not a leader of a tier on incident {inc.code}'s chain")
    lower = [u for u in chain if paths.below(u.path, issuer.path)]
    if not lower:
        raise Invalid.field("incident_id", f"{issuer.name} is the lowest tier of incident {inc.code}: no tier below")
    notice = notice_service.issue(
        session,
        clock=clock,
        actor=actor,
        data=NoticeCreate(
            kind=Kind.instruction,
            title=f"{person.name}批示：{inc.title}"[:200],
            body=data.text,
            unit_code=issuer.code,
            to=Addressing(units=[u.code for u in lower]),
            sign_within_seconds=data.sign_within_seconds,
            feedback_due_at=data.feedback_due_at,
            incident_id=inc.id,
        ),
        issuer=issuer,
        receivers=lower,
    )
    timeline.note(
        session,
        inc,
        at=clock.now(),
        kind="instruction",
        actor=actor.actor,
        tier=issuer.tier,
        message=f"{issuer.name}{person.name}批示：{data.text}"[:1000],
        data={"notice_id": notice.id, "notice_code": notice.code, "units": [u.code for u in lower]},
    )
    inc.updated_at = clock.now()
    session.add(inc)
    session.flush()
    return notice
