"""Regulation §14: the service's quality indicators (сапа көрсеткіштері), of which the portal can tell one — whether
each request was answered by the deadline its status screen shows. Written as requests are sent and answered; the
gateway's `/metrics` reads it at each scrape through the composition root, from the table, so every worker process
says the same.

- kept: the clinic's answer (coupon or refusal) was formed by the deadline (`answered_at` <= `deadline`);
- missed: it was formed after the deadline, or none has come and the deadline has passed;
- a request still open before its deadline, or never sent, is not counted yet.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, case, func, insert, or_, select, update

from endpoints.portal.tables import deadlines

KEPT, MISSED = "kept", "missed"


def record_deadline(conn, request_id: int, clinic_bin: str, deadline: datetime) -> None:
    """A request sent: its clinic and deadline."""
    conn.execute(insert(deadlines).values(request_id=request_id, clinic_bin=clinic_bin, deadline=deadline))


def record_answer(conn, request_id: int, answered_at: datetime) -> None:
    """The clinic's answer, once: a later document changes nothing."""
    conn.execute(update(deadlines).where(deadlines.c.request_id == request_id, deadlines.c.answered_at.is_(None))
                 .values(answered_at=answered_at))


class QualityCases:
    """Over `self.engine` and `self.clock` of `Portal`."""

    def deadline_outcomes(self) -> dict[tuple[str, str], int]:
        """{(clinic BIN, "kept" | "missed"): requests}, both outcomes for every clinic with a counted request."""
        answered = deadlines.c.answered_at.is_not(None)
        kept = and_(answered, deadlines.c.answered_at <= deadlines.c.deadline)
        missed = or_(and_(answered, deadlines.c.answered_at > deadlines.c.deadline),
                     and_(~answered, deadlines.c.deadline < self.clock()))
        query = (select(deadlines.c.clinic_bin, func.sum(case((kept, 1), else_=0)),
                        func.sum(case((missed, 1), else_=0)))
                 .where(or_(kept, missed)).group_by(deadlines.c.clinic_bin))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        figures: dict[tuple[str, str], int] = {}
        for clinic, kept_count, missed_count in rows:
            figures[(clinic, KEPT)], figures[(clinic, MISSED)] = int(kept_count), int(missed_count)
        return figures
