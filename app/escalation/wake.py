"""Waking the tick when a commit made a step due (an intake, a re-grade, an escalation by hand, a chase).

`made_due(session)` marks the caller's transaction. At its commit:
- in this process, every wake listener is called at once (the ticker's, see app.scheduling);
- on PostgreSQL, `NOTIFY dutyline_due` is sent inside the transaction (PostgreSQL delivers it at the commit, and
  only if it commits), so the tickers of other replicas, LISTENing on their own connection, wake too.
A rolled-back transaction wakes nobody. The tick's own timer (every second) stays as the safety net.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy import event, text
from sqlalchemy.orm import Session as OrmSession

CHANNEL = "dutyline_due"
_FLAG = "escalation.wake.due"
_listeners: list[Callable[[], None]] = []
_lock = threading.Lock()


def made_due(session: OrmSession) -> None:
    """This transaction makes a step due now: wake the tick when it commits."""
    session.info[_FLAG] = True


def add_listener(callback: Callable[[], None]) -> None:
    with _lock:
        _listeners.append(callback)


def remove_listener(callback: Callable[[], None]) -> None:
    with _lock:
        if callback in _listeners:
            _listeners.remove(callback)


@event.listens_for(OrmSession, "before_commit")
def _before_commit(session: OrmSession) -> None:
    if session.info.get(_FLAG) and session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"NOTIFY {CHANNEL}"))


@event.listens_for(OrmSession, "after_commit")
def _after_commit(session: OrmSession) -> None:
    if session.info.pop(_FLAG, False):
        with _lock:
            callbacks = list(_listeners)
        for callback in callbacks:
            callback()


@event.listens_for(OrmSession, "after_rollback")
def _after_rollback(session: OrmSession) -> None:
    session.info.pop(_FLAG, None)
