"""The АЖО's own tables (SQLAlchemy Core, its own MetaData): the requests it registered (process 6) and
the register of attached population (РПН — регистр прикреплённого населения, e-service-domain §7).

They live on the gateway store's engine or on any URL; nothing here touches the gateway's tables.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from endpoints.provider.rules import CurrentAttachment
from gateway.store import migrations
from gateway.store.schema import UTCDateTime

metadata = sa.MetaData()

DRAFT, REGISTERED, COMPLETED, REFUSED = "DRAFT", "REGISTERED", "COMPLETED", "REFUSED"

# Employees' login sessions (process 1 of diagram 2): in the store, so any worker process can check them.
sessions = sa.Table(
    "ajo_sessions", metadata,
    sa.Column("token_sha256", sa.String(64), primary_key=True),  # never the token itself
    sa.Column("clinic_bin", sa.String(12), nullable=False),
    sa.Column("employee_iin", sa.String(12), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)

# Employees' wrong passwords and lockouts (gateway/store/lockouts.py), as the portal's.
logins = sa.Table(
    "ajo_logins", metadata,
    sa.Column("employee_iin", sa.String(12), primary_key=True),
    sa.Column("failed_logins", sa.Integer, nullable=False),
    sa.Column("locked_until", UTCDateTime()),
)

requests = sa.Table(
    "ajo_requests", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("registration_number", sa.String(40), unique=True),  # null while a draft
    sa.Column("request_number", sa.String(64), nullable=False),
    sa.Column("channel", sa.String(10), nullable=False),  # PORTAL | PROVIDER
    sa.Column("message_id", sa.String(64), unique=True),  # the portal's AsyncChannel message
    sa.Column("correlation_id", sa.String(64)),
    sa.Column("clinic_bin", sa.String(12), nullable=False),
    sa.Column("applicant_iin", sa.String(12), nullable=False),
    sa.Column("employee_iin", sa.String(12)),
    sa.Column("status", sa.String(16), nullable=False),
    # Moments as ISO 8601 with the offset: SQLite keeps no time zones.
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("registered_at", sa.String(40)),
    sa.Column("decided_at", sa.String(40)),
    sa.Column("request_xml", sa.LargeBinary, nullable=False),  # as signed (a draft: unsigned)
    sa.Column("registration_xml", sa.LargeBinary),  # the signed Registration (UPDATE)
    sa.Column("result_xml", sa.LargeBinary),  # the signed coupon or refusal (RESPONSE)
    sa.Column("coupon_number", sa.String(40)),
    sa.Column("update_sent", sa.Boolean, nullable=False, default=False),
    sa.Column("response_sent", sa.Boolean, nullable=False, default=False),
)
sa.Index("ajo_requests_number", requests.c.request_number)

attachments = sa.Table(
    "ajo_attachments", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("iin", sa.String(12), nullable=False),
    sa.Column("surname", sa.String(100), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("patronymic", sa.String(100)),
    sa.Column("birth_date", sa.Date, nullable=False),
    sa.Column("address", sa.Text),
    sa.Column("clinic_bin", sa.String(12), nullable=False),
    sa.Column("clinic_name", sa.Text, nullable=False),
    sa.Column("district_number", sa.String(16), nullable=False),
    sa.Column("district_kind", sa.String(16), nullable=False),
    sa.Column("doctor", sa.Text, nullable=False),
    sa.Column("attach_date", sa.Date, nullable=False),
    sa.Column("detach_date", sa.Date),  # null while active
    sa.Column("detach_reason", sa.Text),
    sa.Column("reason", sa.String(20), nullable=False),
    sa.Column("channel", sa.String(10), nullable=False),
    sa.Column("request_id", sa.String(40), nullable=False),  # the registration number
    sa.Column("coupon_number", sa.String(40), nullable=False),
    sa.Column("home_visit", sa.Boolean, nullable=False, default=False),
    sa.Column("counted_change", sa.Boolean, nullable=False, default=False),  # used the yearly free change
)
sa.Index("ajo_attachments_iin", attachments.c.iin)
sa.Index("ajo_attachments_clinic", attachments.c.clinic_bin, attachments.c.district_number)
# One organisation at a time (e-service-domain §2.1), enforced by the database as well.
sa.Index("ajo_attachments_active", attachments.c.iin, unique=True,
         sqlite_where=attachments.c.detach_date.is_(None), postgresql_where=attachments.c.detach_date.is_(None))


@dataclass(frozen=True)
class Facts:
    """What the register says at decision time."""
    current: CurrentAttachment | None
    changes_this_year: int
    loads: dict[str, int]  # district number -> active attachments, in the requested clinic


@dataclass(frozen=True)
class Outcome:
    status: str  # COMPLETED | REFUSED
    result_xml: bytes
    coupon_number: str | None = None
    attachment: dict | None = None  # the new РПН record (columns of `attachments`)


def registration_number(row_id: int, registered_at: datetime) -> str:
    return f"R-{registered_at:%Y%m%d}-{row_id:06d}"


class ProviderStore:
    def __init__(self, engine: sa.Engine):
        self.engine = engine
        migrations.upgrade(engine, "clinic")
        # Decisions read the register and then write it: one at a time in this process (SQLite's
        # BEGIN IMMEDIATE on the gateway's engine also serialises them across processes).
        self._decide = threading.Lock()

    @classmethod
    def from_url(cls, url: str) -> ProviderStore:
        return cls(sa.create_engine(url))

    # --- requests ---------------------------------------------------------------------------------

    def _row(self, conn, condition) -> dict | None:
        row = conn.execute(sa.select(requests).where(condition)).first()
        return dict(row._mapping) if row else None

    def by_id(self, row_id: int) -> dict | None:
        with self.engine.connect() as conn:
            return self._row(conn, requests.c.id == row_id)

    def by_message(self, message_id: str) -> dict | None:
        with self.engine.connect() as conn:
            return self._row(conn, requests.c.message_id == message_id)

    def by_number(self, number: str) -> dict | None:
        """By registration number, or by the request number the АЖО gave an employee's request."""
        with self.engine.connect() as conn:
            return self._row(conn, sa.or_(requests.c.registration_number == number,
                                          sa.and_(requests.c.channel == "PROVIDER",
                                                  requests.c.request_number == number)))

    def clinic_requests(self, clinic_bin: str, statuses: tuple[str, ...] | None = None,
                        limit: int = 500) -> list[dict]:
        """A clinic's requests, newest first, optionally of these statuses only (the workstation's lists)."""
        query = sa.select(requests).where(requests.c.clinic_bin == clinic_bin).order_by(requests.c.id.desc())
        if statuses is not None:
            query = query.where(requests.c.status.in_(statuses))
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query.limit(limit))]

    def create_draft(self, *, clinic_bin: str, applicant_iin: str, employee_iin: str, created_at: datetime,
                     document: Callable[[str], bytes]) -> dict:
        """An employee's request before signing (process 2–5); its number is `E-<id>`."""
        with self.engine.begin() as conn:
            row_id = conn.execute(requests.insert().values(
                request_number="", channel="PROVIDER", clinic_bin=clinic_bin, applicant_iin=applicant_iin,
                employee_iin=employee_iin, status=DRAFT, created_at=created_at.isoformat(), request_xml=b"",
                update_sent=False, response_sent=False)).inserted_primary_key[0]
            number = f"E-{row_id:06d}"
            conn.execute(requests.update().where(requests.c.id == row_id)
                         .values(request_number=number, request_xml=document(number)))
            return self._row(conn, requests.c.id == row_id)

    def register(self, *, registered_at: datetime, registration: Callable[[str], bytes], row_id: int | None = None,
                 **values) -> dict:
        """Process 6: a new row (portal) or a signed draft becomes REGISTERED with its number and
        signed Registration. A portal message registered already is returned as it stands."""
        message_id = values.get("message_id")
        try:
            with self.engine.begin() as conn:
                if row_id is None:
                    row_id = conn.execute(requests.insert().values(
                        status=REGISTERED, created_at=registered_at.isoformat(), update_sent=False,
                        response_sent=False, **values)).inserted_primary_key[0]
                    values = {}
                number = registration_number(row_id, registered_at)
                conn.execute(requests.update().where(requests.c.id == row_id).values(
                    status=REGISTERED, registration_number=number, registered_at=registered_at.isoformat(),
                    registration_xml=registration(number), **values))
                return self._row(conn, requests.c.id == row_id)
        except IntegrityError:
            # The same message delivered twice at once: the other delivery registered it.
            existing = self.by_message(message_id) if message_id else None
            if existing is None:
                raise
            return existing

    def mark(self, row_id: int, **flags: bool) -> None:
        """update_sent / response_sent, once the gateway accepted the message."""
        with self.engine.begin() as conn:
            conn.execute(requests.update().where(requests.c.id == row_id).values(**flags))

    def decide(self, row_id: int, *, clinic_bin: str, iin: str, year: int, decided_at: datetime,
               judge: Callable[[Facts], Outcome]) -> dict:
        """Condition 3 and processes 7–8 in one transaction: the register's facts, the judgement, the
        result and, for a coupon, the new РПН record with the previous one ended (detachDate)."""
        with self._decide, self.engine.begin() as conn:
            row = self._row(conn, requests.c.id == row_id)
            if row["status"] in (COMPLETED, REFUSED):
                return row  # a redelivered message: decided already
            outcome = judge(self._facts(conn, iin, clinic_bin, year))
            if outcome.attachment is not None:
                new = outcome.attachment
                conn.execute(attachments.update()
                             .where(attachments.c.iin == iin, attachments.c.detach_date.is_(None))
                             .values(detach_date=new["attach_date"],
                                     detach_reason=f"прикреплён к {new['clinic_bin']} ({new['request_id']})"))
                conn.execute(attachments.insert().values(**new))
            conn.execute(requests.update().where(requests.c.id == row_id).values(
                status=outcome.status, result_xml=outcome.result_xml, coupon_number=outcome.coupon_number,
                decided_at=decided_at.isoformat()))
            return self._row(conn, requests.c.id == row_id)

    def _facts(self, conn, iin: str, clinic_bin: str, year: int) -> Facts:
        active = conn.execute(sa.select(attachments).where(attachments.c.iin == iin,
                                                           attachments.c.detach_date.is_(None))).first()
        changes = conn.execute(sa.select(sa.func.count()).select_from(attachments).where(
            attachments.c.iin == iin, attachments.c.counted_change.is_(True),
            attachments.c.attach_date >= date(year, 1, 1), attachments.c.attach_date <= date(year, 12, 31))).scalar()
        loads = dict(conn.execute(
            sa.select(attachments.c.district_number, sa.func.count())
            .where(attachments.c.clinic_bin == clinic_bin, attachments.c.detach_date.is_(None))
            .group_by(attachments.c.district_number)).all())
        current = None if active is None else CurrentAttachment(active.clinic_bin, active.district_number,
                                                                active.attach_date, active.address)
        return Facts(current, changes, loads)

    # --- the register (РПН) -------------------------------------------------------------------------

    def attachments(self, *, iin: str | None = None, clinic_bin: str | None = None,
                    active_only: bool = False) -> list[dict]:
        query = sa.select(attachments).order_by(attachments.c.attach_date, attachments.c.id)
        if iin is not None:
            query = query.where(attachments.c.iin == iin)
        if clinic_bin is not None:
            query = query.where(attachments.c.clinic_bin == clinic_bin)
        if active_only:
            query = query.where(attachments.c.detach_date.is_(None))
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]
