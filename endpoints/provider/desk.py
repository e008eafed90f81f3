"""The employee's use cases at the АЖО (diagram 2), blocking: the JSON API (`api.py`) and the pages
(`pages.py`) both call them, so the two never disagree.

    login → process 1 (lockout after `lockout_attempts` wrong passwords)
    lookup → processes 2–3, condition 1 (else process 4: DeskError 404 ATT-201 "not in ЖТ ММБ")
    create, sign → process 5 (the employee's EDS), process 6, condition 2, processes 7–8
    requests, show, coupon_pdf, result_xml → §9 «ашу»: the request's result on screen
    register → the register of attached population (РПН) of the employee's clinic
"""
from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from gateway.security.identity import is_valid_iin
from gateway.store import lockouts
from endpoints.provider import payload as p
from endpoints.provider.config import REASONS, Clinic, Officer, verify_password
from endpoints.provider.couponfont import FontNotFound
from endpoints.provider.office import AttachmentOffice, NotADraft, PersonNotFound, parse
from endpoints.provider.pdf import coupon_pdf
from endpoints.provider.registry import Person, RegistryError
from endpoints.provider.store import COMPLETED, DRAFT, REFUSED, REGISTERED, logins, sessions

log = logging.getLogger("shep.provider.desk")

# The workstation's lists of requests (docs/web.md): list name → the statuses it shows (None: every one).
LISTS = {"incoming": None, "registered": (REGISTERED,), "refused": (REFUSED,), "answered": (COMPLETED,)}


class DeskError(Exception):
    """A refusal: HTTP status, a stable code, the Russian message and the Kazakh one, details."""

    def __init__(self, status: int, code: str, message: str, message_kk: str | None = None, **detail):
        super().__init__(message)
        self.status, self.code, self.message, self.message_kk, self.detail = status, code, message, message_kk, detail

    def body(self) -> dict:
        error = {"code": self.code, "message": self.message}
        if self.message_kk:
            error["messageKk"] = self.message_kk
        error.update(self.detail)
        return {"error": error}


def _auth_failed() -> DeskError:
    # The same answer for an unknown IIN and a wrong password.
    return DeskError(401, "AUTH_FAILED", "Неверный ИИН или пароль", "ЖСН немесе құпиясөз қате")


def _registry_down(error: RegistryError) -> DeskError:
    return DeskError(502, "REGISTRY_UNAVAILABLE", "ЖТ ММБ сейчас не отвечает, повторите позже",
                     "ЖТ ММБ қазір жауап бермейді, кейінірек қайталаңыз", detail=str(error))


@dataclass(frozen=True)
class Session:
    clinic: Clinic
    employee: Officer
    expires: datetime


def _address(address: p.Address | None) -> dict | None:
    return address.as_dict() if address else None


def person_data(person: Person) -> dict:
    return {"iin": person.iin, "surname": person.surname, "name": person.name, "patronymic": person.patronymic,
            "birthDate": person.birth_date, "alive": person.alive, "address": _address(person.address)}


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; they were written in UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


class Sessions:
    """Login tokens, kept (as SHA-256) in the АЖО's table, so every worker process knows them."""

    def __init__(self, engine: sa.Engine, config, lifetime: timedelta):
        self.engine = engine
        self.config = config
        self.lifetime = lifetime

    def open(self, clinic: Clinic, employee: Officer) -> tuple[str, float]:
        token = secrets.token_urlsafe(32)
        now = datetime.now(timezone.utc)
        with self.engine.begin() as conn:
            conn.execute(sessions.delete().where(sessions.c.expires_at <= now))
            conn.execute(sessions.insert().values(token_sha256=_digest(token), clinic_bin=clinic.bin,
                                                  employee_iin=employee.iin, expires_at=now + self.lifetime))
        return token, self.lifetime.total_seconds()

    def close(self, token: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sessions.delete().where(sessions.c.token_sha256 == _digest(token)))

    def get(self, token: str | None) -> Session:
        row = None
        if token:
            with self.engine.connect() as conn:
                row = conn.execute(sa.select(sessions).where(sessions.c.token_sha256 == _digest(token))).first()
        clinic = self.config.clinic(row.clinic_bin) if row else None
        employee = clinic.employee(row.employee_iin) if clinic else None
        if employee is None or _aware(row.expires_at) <= datetime.now(timezone.utc):
            raise DeskError(401, "AUTH_REQUIRED", "Требуется вход: токен отсутствует или истёк",
                            "Жүйеге кіру қажет: токен жоқ немесе мерзімі өткен")
        return Session(clinic, employee, _aware(row.expires_at))


class Desk:
    """The employee at the АЖО (қызмет берушінің қызметкері / сотрудник услугодателя)."""

    def __init__(self, office: AttachmentOffice):
        self.office = office
        self.config = office.config
        self.sessions = Sessions(office.store.engine, self.config, timedelta(minutes=self.config.session_minutes))

    # --- process 1 ------------------------------------------------------------------------------------

    def login(self, iin, password) -> dict:
        """Process 1; `lockout_attempts` wrong passwords in a row lock the employee out for `lockout_minutes`
        (even the right password waits), as the portal's citizens."""
        found = [(clinic, clinic.employee(iin)) for clinic in self.config.clinics.values()] \
            if isinstance(iin, str) else []
        found = [(clinic, employee) for clinic, employee in found if employee is not None]
        if not found or not isinstance(password, str):
            raise _auth_failed()
        now = self.office.clock()
        with self.office.store.engine.connect() as conn:
            locked_until = conn.execute(sa.select(logins.c.locked_until).where(logins.c.employee_iin == iin)).scalar()
        self._refuse_if_locked(locked_until, now)  # before hashing: a locked-out login costs no PBKDF2 run
        match = next(((clinic, employee) for clinic, employee in found
                      if verify_password(password, employee.password_hash)), None)
        with self.office.store.engine.begin() as conn:
            lockouts.ensure_row(conn, logins, iin)
            if match is None:
                locked_until = lockouts.login_failed(conn, logins, iin, now, self.config.lockout_attempts,
                                                     self.config.lockout_minutes)
            else:
                locked_until = lockouts.login_succeeded(conn, logins, iin, now)
        self._refuse_if_locked(locked_until, now)
        if match is None:
            raise _auth_failed()
        clinic, employee = match
        token, seconds = self.sessions.open(clinic, employee)
        log.info("employee %s of %s logged in", employee.iin, clinic.bin)
        return {"token": token, "expiresIn": int(seconds),
                "employee": {"iin": employee.iin, "name": employee.full_name, "position": employee.position,
                             "clinicBin": clinic.bin, "clinicName": clinic.name}}

    def _refuse_if_locked(self, locked_until: datetime | None, now: datetime) -> None:
        if lockouts.in_force(locked_until, now):
            raise DeskError(401, "ACCOUNT_LOCKED",
                            f"Вход заблокирован после {self.config.lockout_attempts} неудачных попыток",
                            f"{self.config.lockout_attempts} сәтсіз әрекеттен кейін кіру бұғатталды",
                            lockedUntil=locked_until.astimezone(self.config.utc_offset).isoformat(timespec="seconds"),
                            retryAfter=max(1, int((locked_until - now).total_seconds())))

    def authenticate(self, token: str | None) -> Session:
        return self.sessions.get(token)

    def logout(self, token: str | None) -> None:
        if token:
            self.sessions.close(token)

    # --- processes 2–5 ---------------------------------------------------------------------------------

    def lookup(self, session: Session, iin) -> dict:
        """Process 3 and condition 1: the person from ЖТ ММБ through the gateway; process 4 when not there."""
        if not is_valid_iin(iin):
            raise DeskError(400, "BAD_REQUEST", "iin: 12 цифр с верной контрольной цифрой", field="iin")
        try:
            person = self.office.registry.find(iin)
        except RegistryError as error:
            raise _registry_down(error) from None
        if person is None:
            raise self._not_found(iin)
        return person_data(person)

    @staticmethod
    def _not_found(iin: str) -> DeskError:
        return DeskError(404, "ATT-201", "данные получателя не найдены в ЖТ ММБ",
                         "алушының деректері ЖТ ММБ-да табылмады", iin=iin)

    def create(self, session: Session, body: dict) -> dict:
        """The draft request completed from ЖТ ММБ (`E-NNNNNN`), unsigned."""
        iin, reason = body.get("iin"), body.get("reason", "FREE_CHOICE")
        representative = body.get("representativeIin") or None
        district = body.get("districtNumber") or None
        if not is_valid_iin(iin):
            raise DeskError(400, "BAD_REQUEST", "iin: 12 цифр с верной контрольной цифрой", field="iin")
        if representative is not None and not is_valid_iin(representative):
            raise DeskError(400, "BAD_REQUEST", "representativeIin: 12 цифр с верной контрольной цифрой",
                            field="representativeIin")
        if reason not in REASONS:
            raise DeskError(400, "BAD_REQUEST", f"reason: одно из {', '.join(REASONS)}", field="reason")
        if body.get("clinicBin", session.clinic.bin) != session.clinic.bin:
            raise DeskError(403, "FORBIDDEN", "сотрудник оформляет заявления только своей организации",
                            "қызметкер тек өз ұйымының өтініштерін ресімдейді")
        try:
            row, person = self.office.draft(session.clinic, session.employee, iin=iin, reason=reason,
                                            district_number=str(district) if district is not None else None,
                                            representative_iin=representative)
        except PersonNotFound:
            raise self._not_found(iin) from None
        except RegistryError as error:
            raise _registry_down(error) from None
        return {"requestNumber": row["request_number"], "status": DRAFT, "person": person_data(person),
                "form": {"clinicBin": session.clinic.bin, "clinicName": session.clinic.name,
                         "districtNumber": district, "reason": reason, "representativeIin": representative,
                         "employeeIin": session.employee.iin}}

    def _row(self, session: Session, number: str) -> dict:
        row = self.office.store.by_number(number)
        # Another clinic's request is answered as unknown, not as forbidden.
        if row is None or row["clinic_bin"] != session.clinic.bin:
            raise DeskError(404, "REQUEST_NOT_FOUND", f"заявление {number} не найдено",
                            f"{number} өтініші табылмады")
        return row

    def sign(self, session: Session, number: str) -> dict:
        """Process 5 (the employee's EDS), process 6, condition 2, process 7 or 8; a REGISTERED request
        (ЖТ ММБ failed last time) has its decision resumed."""
        row = self._row(session, number)
        try:
            if row["status"] == DRAFT:
                row = self.office.sign_draft(row["request_number"], session.clinic, session.employee)
            elif row["status"] == REGISTERED:
                row = self.office.decide(row)
            else:
                raise DeskError(409, "ALREADY_DECIDED", f"заявление уже {row['status']}",
                                "өтініш бойынша шешім қабылданған")
        except NotADraft:
            raise DeskError(409, "NOT_A_DRAFT", "заявление уже подписано", "өтінішке қол қойылған") from None
        except RegistryError as error:
            raise _registry_down(error) from None
        return self.describe(row)

    # --- §9: the results ---------------------------------------------------------------------------------

    def show(self, session: Session, number: str) -> dict:
        return self.describe(self._row(session, number))

    @staticmethod
    def describe(row: dict) -> dict:
        """The request and, once decided, its coupon or its refusal's reasons (code, ru, kk)."""
        data = {"number": row["registration_number"] or row["request_number"],
                "requestNumber": row["request_number"], "registrationNumber": row["registration_number"],
                "status": row["status"], "channel": row["channel"], "clinicBin": row["clinic_bin"],
                "applicantIin": row["applicant_iin"], "employeeIin": row["employee_iin"],
                "createdAt": row["created_at"], "registeredAt": row["registered_at"], "decidedAt": row["decided_at"]}
        # What was (or, for a draft, is to be) signed.
        request = p.read_request(parse(row["request_xml"]))
        applicant = request.applicant
        data["form"] = {"applicant": {"iin": applicant.iin, "name": applicant.full_name,
                                      "birthDate": applicant.birth_date, "address": _address(applicant.address)},
                        "reason": request.reason, "districtNumber": request.district_number,
                        "representativeIin": request.representative_iin}
        if row["status"] == COMPLETED:
            coupon = p.read_coupon(parse(row["result_xml"]))
            data["coupon"] = {"couponNumber": coupon.coupon_number, "person": {
                "iin": coupon.person.iin, "name": coupon.person.full_name, "birthDate": coupon.person.birth_date,
                "address": _address(coupon.person.address)}, "clinicBin": coupon.clinic_bin,
                "clinicName": coupon.clinic_name, "district": vars(coupon.district),
                "attachmentDate": coupon.attachment_date, "reason": coupon.reason,
                "homeVisitNote": coupon.home_visit_note, "previousClinicBin": coupon.previous_clinic_bin}
        if row["status"] == REFUSED:
            data["refusal"] = [{"code": r.code, "textRu": r.ru, "textKk": r.kk}
                               for r in p.read_refusal(parse(row["result_xml"]))]
        return data

    def requests(self, session: Session, list_name: str = "incoming") -> list[dict]:
        """One of the workstation's lists (LISTS) of the employee's clinic, newest first."""
        if list_name not in LISTS:
            raise DeskError(400, "BAD_REQUEST", f"list: одно из {', '.join(LISTS)}", field="list")
        rows = self.office.store.clinic_requests(session.clinic.bin, LISTS[list_name])
        return [{"number": r["registration_number"] or r["request_number"], "requestNumber": r["request_number"],
                 "registrationNumber": r["registration_number"], "status": r["status"], "channel": r["channel"],
                 "applicantIin": r["applicant_iin"], "registeredAt": r["registered_at"],
                 "decidedAt": r["decided_at"], "couponNumber": r["coupon_number"]} for r in rows]

    def coupon_pdf(self, session: Session, number: str) -> bytes:
        """Process 8: the paper coupon, signed by the clinic's authorised person's name."""
        row = self._row(session, number)
        if row["status"] != COMPLETED:
            raise DeskError(409, "NO_COUPON", f"по заявлению нет талона (статус {row['status']})",
                            "өтініш бойынша талон жоқ")
        coupon = p.read_coupon(parse(row["result_xml"]))
        clinic = self.config.clinic(coupon.clinic_bin)
        signer = f"{clinic.authorised.position} {clinic.authorised.full_name}" if clinic else ""
        try:
            return coupon_pdf(coupon, clinic_address=clinic.address if clinic else "", signer=signer)
        except FontNotFound as missing:
            log.error("paper coupon: %s", missing)
            raise DeskError(503, "COUPON_FONT_MISSING", f"бумажный талон недоступен: {missing}",
                            "қағаз талон қолжетімсіз") from None

    def result_xml(self, session: Session, number: str) -> bytes:
        """The signed coupon or refusal, as the clinic's authorised person signed it."""
        row = self._row(session, number)
        if row["result_xml"] is None:
            raise DeskError(409, "NOT_DECIDED", f"заявление ещё не рассмотрено (статус {row['status']})",
                            "өтініш әлі қаралмаған")
        return row["result_xml"]

    # --- РПН ---------------------------------------------------------------------------------------------

    def register(self, session: Session, *, iin: str | None = None, clinic_bin: str | None = None,
                 active_only: bool = False) -> list[dict]:
        if not iin and not clinic_bin:
            raise DeskError(400, "BAD_REQUEST", "укажите iin или clinicBin")
        if clinic_bin and clinic_bin != session.clinic.bin:
            raise DeskError(403, "FORBIDDEN", "список прикреплённых доступен только по своей организации",
                            "тіркелгендер тізімі тек өз ұйымы бойынша қолжетімді")
        rows = self.office.store.attachments(iin=iin or None, clinic_bin=clinic_bin or None, active_only=active_only)
        return [{"iin": r["iin"], "surname": r["surname"], "name": r["name"], "patronymic": r["patronymic"],
                 "birthDate": r["birth_date"], "address": r["address"], "clinicBin": r["clinic_bin"],
                 "clinicName": r["clinic_name"], "district": r["district_number"], "districtKind": r["district_kind"],
                 "doctor": r["doctor"], "attachDate": r["attach_date"], "detachDate": r["detach_date"],
                 "detachReason": r["detach_reason"], "reason": r["reason"], "channel": r["channel"],
                 "requestId": r["request_id"], "couponNumber": r["coupon_number"], "homeVisit": r["home_visit"]}
                for r in rows]
