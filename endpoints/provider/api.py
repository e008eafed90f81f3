"""The employee's side of the АЖО (diagram 2) as a JSON API under `/clinic/api/`:

    POST /login                          process 1: {"iin", "password"} → {"token", …}; 401 when wrong
    POST /requests                       processes 2–4: {"iin", "reason", "districtNumber"?,
                                         "representativeIin"?} → 201 draft form completed from ЖТ ММБ;
                                         404 when the person is not there
    POST /requests/<n>/sign              processes 5–8: the employee's EDS, registration, grounds, result
    GET  /requests/<n>                   the request and its result (n: E-… or the registration number)
    GET  /requests/<n>/coupon.pdf        process 8: the paper coupon
    GET  /requests/<n>/result.xml        the signed coupon or refusal
    GET  /register?iin=… | ?clinicBin=…  the register of attached population (РПН)

Every call but login carries `Authorization: Bearer <token>`; an employee sees their own clinic's
requests and register. Errors are {"error": {"code", "message", "messageKk"?, "detail"?}}.
"""
from __future__ import annotations

import hashlib
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import sqlalchemy as sa

from twisted.internet import threads
from twisted.web import resource, server

from gateway.security.identity import is_valid_iin
from gateway.store import lockouts
from gateway.web.body import read_body
from endpoints.provider import payload as p
from endpoints.provider.config import REASONS, Clinic, Officer, verify_password
from endpoints.provider.office import AttachmentOffice, NotADraft, PersonNotFound, parse
from endpoints.provider.couponfont import FontNotFound
from endpoints.provider.pdf import coupon_pdf
from endpoints.provider.registry import Person, RegistryError
from endpoints.provider.store import COMPLETED, DRAFT, REFUSED, REGISTERED, logins, sessions

log = logging.getLogger("shep.provider.api")
JSON = "application/json; charset=utf-8"


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, message_kk: str | None = None, **detail):
        super().__init__(message)
        self.status, self.code, self.message, self.message_kk, self.detail = status, code, message, message_kk, detail

    def body(self) -> dict:
        error = {"code": self.code, "message": self.message}
        if self.message_kk:
            error["messageKk"] = self.message_kk
        error.update(self.detail)
        return {"error": error}


def _auth_failed() -> ApiError:
    # The same answer for an unknown IIN and a wrong password.
    return ApiError(401, "AUTH_FAILED", "Неверный ИИН или пароль", "ЖСН немесе құпиясөз қате")


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    body: bytes


@dataclass(frozen=True)
class Call:
    """What a handler gets: the request as plain data (handlers run in threads, away from twisted's objects)."""
    method: str
    path: list[str]
    query: dict[str, str]
    body: bytes | None  # None: larger than the site accepts
    token: str | None


@dataclass(frozen=True)
class Session:
    clinic: Clinic
    employee: Officer
    expires: datetime


def _json(status: int, data) -> Reply:
    def default(value):
        if isinstance(value, (date, datetime)):
            return value.isoformat()
        raise TypeError(type(value).__name__)
    return Reply(status, JSON, json.dumps(data, ensure_ascii=False, indent=1, default=default).encode("utf-8"))


def _address(address: p.Address | None) -> dict | None:
    return address.as_dict() if address else None


def _person(person: Person) -> dict:
    return {"iin": person.iin, "surname": person.surname, "name": person.name, "patronymic": person.patronymic,
            "birthDate": person.birth_date, "alive": person.alive, "address": _address(person.address)}


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

    def get(self, token: str | None) -> Session:
        row = None
        if token:
            with self.engine.connect() as conn:
                row = conn.execute(sa.select(sessions).where(sessions.c.token_sha256 == _digest(token))).first()
        clinic = self.config.clinic(row.clinic_bin) if row else None
        employee = clinic.employee(row.employee_iin) if clinic else None
        if employee is None or _aware(row.expires_at) <= datetime.now(timezone.utc):
            raise ApiError(401, "AUTH_REQUIRED", "Требуется вход: токен отсутствует или истёк",
                           "Жүйеге кіру қажет: токен жоқ немесе мерзімі өткен")
        return Session(clinic, employee, _aware(row.expires_at))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; they were written in UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


class ClinicApi(resource.Resource):
    isLeaf = True

    def __init__(self, office: AttachmentOffice, *, base_path: str = "/clinic/api"):
        super().__init__()
        self.office = office
        self.config = office.config
        self.base_path = base_path.rstrip("/")
        self.sessions = Sessions(office.store.engine, self.config, timedelta(minutes=self.config.session_minutes))

    # --- twisted side ---------------------------------------------------------------------------------

    def render(self, request: server.Request):
        auth = (request.getHeader(b"authorization") or b"").decode("latin-1")
        call = Call(method=request.method.decode("ascii", "replace"),
                    path=[segment.decode("utf-8", "replace") for segment in request.postpath if segment],
                    query={k.decode(): v[0].decode("utf-8", "replace") for k, v in request.args.items() if v},
                    body=read_body(request),
                    token=auth[7:].strip() if auth.lower().startswith("bearer ") else None)

        def write(reply: Reply) -> None:
            if request._disconnected:
                return
            request.setResponseCode(reply.status)
            request.setHeader(b"Content-Type", reply.content_type.encode())
            request.setHeader(b"Cache-Control", b"no-store")  # personal data
            request.write(reply.body)
            request.finish()

        def failed(failure) -> Reply:
            log.error("%s %s failed: %s", call.method, "/".join(call.path), failure.getTraceback())
            return _json(500, {"error": {"code": "INTERNAL_ERROR", "message": "Внутренняя ошибка АЖО"}})

        threads.deferToThread(self.handle, call).addErrback(failed).addCallback(write)
        return server.NOT_DONE_YET

    # --- routing ----------------------------------------------------------------------------------------

    def handle(self, call: Call) -> Reply:
        try:
            if call.body is None:
                raise ApiError(413, "BODY_TOO_LARGE", "тело запроса больше, чем принимает сервер",
                               "сұраныс денесі сервер қабылдайтыннан үлкен")
            return self._route(call)
        except ApiError as error:
            return _json(error.status, error.body())

    def _route(self, call: Call) -> Reply:
        path, method = call.path, call.method
        if path == ["login"] and method == "POST":
            return self.login(call)
        session = self.sessions.get(call.token)
        if path == ["requests"] and method == "POST":
            return self.create(call, session)
        if path == ["register"] and method == "GET":
            return self.register(call, session)
        if len(path) in (2, 3) and path[0] == "requests":
            action = path[2] if len(path) == 3 else None
            handler = {(None, "GET"): self.show, ("sign", "POST"): self.sign, ("coupon.pdf", "GET"): self.pdf,
                       ("result.xml", "GET"): self.result}.get((action, method))
            if handler is not None:
                return handler(self._row(path[1], session), session)
        raise ApiError(404, "NOT_FOUND", f"нет такого ресурса: {method} {self.base_path}/{'/'.join(path)}")

    def _body(self, call: Call) -> dict:
        try:
            body = json.loads(call.body or b"{}")
        except ValueError:
            raise ApiError(400, "BAD_REQUEST", "тело запроса должно быть JSON-объектом") from None
        if not isinstance(body, dict):
            raise ApiError(400, "BAD_REQUEST", "тело запроса должно быть JSON-объектом")
        return body

    def _row(self, number: str, session: Session) -> dict:
        row = self.office.store.by_number(number)
        # Another clinic's request is answered as unknown, not as forbidden.
        if row is None or row["clinic_bin"] != session.clinic.bin:
            raise ApiError(404, "REQUEST_NOT_FOUND", f"заявление {number} не найдено",
                           f"{number} өтініші табылмады")
        return row

    # --- process 1 ------------------------------------------------------------------------------------

    def login(self, call: Call) -> Reply:
        """Process 1; `lockout_attempts` wrong passwords in a row lock the employee out for `lockout_minutes`
        (even the right password waits), as the portal's citizens."""
        body = self._body(call)
        iin, password = body.get("iin"), body.get("password")
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
        return _json(200, {"token": token, "expiresIn": int(seconds),
                           "employee": {"iin": employee.iin, "name": employee.full_name,
                                        "position": employee.position, "clinicBin": clinic.bin,
                                        "clinicName": clinic.name}})

    def _refuse_if_locked(self, locked_until: datetime | None, now: datetime) -> None:
        if lockouts.in_force(locked_until, now):
            raise ApiError(401, "ACCOUNT_LOCKED",
                           f"Вход заблокирован после {self.config.lockout_attempts} неудачных попыток",
                           f"{self.config.lockout_attempts} сәтсіз әрекеттен кейін кіру бұғатталды",
                           lockedUntil=locked_until.astimezone(self.config.utc_offset).isoformat(timespec="seconds"),
                           retryAfter=max(1, int((locked_until - now).total_seconds())))

    # --- processes 2–4 ---------------------------------------------------------------------------------

    def create(self, call: Call, session: Session) -> Reply:
        body = self._body(call)
        iin, reason = body.get("iin"), body.get("reason", "FREE_CHOICE")
        representative = body.get("representativeIin") or None
        district = body.get("districtNumber")
        if not is_valid_iin(iin):
            raise ApiError(400, "BAD_REQUEST", "iin: 12 цифр с верной контрольной цифрой")
        if representative is not None and not is_valid_iin(representative):
            raise ApiError(400, "BAD_REQUEST", "representativeIin: 12 цифр с верной контрольной цифрой")
        if reason not in REASONS:
            raise ApiError(400, "BAD_REQUEST", f"reason: одно из {', '.join(REASONS)}")
        if body.get("clinicBin", session.clinic.bin) != session.clinic.bin:
            raise ApiError(403, "FORBIDDEN", "сотрудник оформляет заявления только своей организации",
                           "қызметкер тек өз ұйымының өтініштерін ресімдейді")
        try:
            row, person = self.office.draft(session.clinic, session.employee, iin=iin, reason=reason,
                                            district_number=str(district) if district is not None else None,
                                            representative_iin=representative)
        except PersonNotFound:
            raise ApiError(404, "ATT-201", "данные получателя не найдены в ЖТ ММБ",
                           "алушының деректері ЖТ ММБ-да табылмады", iin=iin) from None
        except RegistryError as error:
            raise self._registry_down(error) from None
        number = row["request_number"]
        return _json(201, {"requestNumber": number, "status": DRAFT, "person": _person(person),
                           "form": {"clinicBin": session.clinic.bin, "clinicName": session.clinic.name,
                                    "districtNumber": district, "reason": reason,
                                    "representativeIin": representative, "employeeIin": session.employee.iin},
                           "links": {"sign": f"{self.base_path}/requests/{number}/sign",
                                     "self": f"{self.base_path}/requests/{number}"}})

    @staticmethod
    def _registry_down(error: RegistryError) -> ApiError:
        return ApiError(502, "REGISTRY_UNAVAILABLE", "ЖТ ММБ сейчас не отвечает, повторите позже",
                        "ЖТ ММБ қазір жауап бермейді, кейінірек қайталаңыз", detail=str(error))

    # --- processes 5–8 -----------------------------------------------------------------------------------

    def sign(self, row: dict, session: Session) -> Reply:
        try:
            if row["status"] == DRAFT:
                row = self.office.sign_draft(row["request_number"], session.clinic, session.employee)
            elif row["status"] == REGISTERED:
                row = self.office.decide(row)  # ЖТ ММБ failed last time: the decision is resumed
            else:
                raise ApiError(409, "ALREADY_DECIDED", f"заявление уже {row['status']}")
        except NotADraft:
            raise ApiError(409, "NOT_A_DRAFT", "заявление уже подписано") from None
        except RegistryError as error:
            raise self._registry_down(error) from None
        return self.show(row, session)

    def show(self, row: dict, session: Session) -> Reply:
        number = row["registration_number"] or row["request_number"]
        data = {"requestNumber": row["request_number"], "registrationNumber": row["registration_number"],
                "status": row["status"], "channel": row["channel"], "clinicBin": row["clinic_bin"],
                "applicantIin": row["applicant_iin"], "employeeIin": row["employee_iin"],
                "registeredAt": row["registered_at"], "decidedAt": row["decided_at"], "links": {}}
        if row["status"] == COMPLETED:
            coupon = p.read_coupon(parse(row["result_xml"]))
            data["coupon"] = {"couponNumber": coupon.coupon_number, "person": {
                "iin": coupon.person.iin, "name": coupon.person.full_name, "birthDate": coupon.person.birth_date,
                "address": _address(coupon.person.address)}, "clinicBin": coupon.clinic_bin,
                "clinicName": coupon.clinic_name, "district": vars(coupon.district),
                "attachmentDate": coupon.attachment_date, "reason": coupon.reason,
                "homeVisitNote": coupon.home_visit_note, "previousClinicBin": coupon.previous_clinic_bin}
            data["links"]["couponPdf"] = f"{self.base_path}/requests/{number}/coupon.pdf"
        if row["status"] == REFUSED:
            data["refusal"] = [{"code": r.code, "textRu": r.ru, "textKk": r.kk}
                               for r in p.read_refusal(parse(row["result_xml"]))]
        if row["status"] in (COMPLETED, REFUSED):
            data["links"]["resultXml"] = f"{self.base_path}/requests/{number}/result.xml"
        return _json(200, data)

    def pdf(self, row: dict, session: Session) -> Reply:
        if row["status"] != COMPLETED:
            raise ApiError(409, "NO_COUPON", f"по заявлению нет талона (статус {row['status']})",
                           "өтініш бойынша талон жоқ")
        coupon = p.read_coupon(parse(row["result_xml"]))
        clinic = self.config.clinic(coupon.clinic_bin)
        signer = f"{clinic.authorised.position} {clinic.authorised.full_name}" if clinic else ""
        try:
            pdf = coupon_pdf(coupon, clinic_address=clinic.address if clinic else "", signer=signer)
        except FontNotFound as missing:
            log.error("paper coupon: %s", missing)
            raise ApiError(503, "COUPON_FONT_MISSING", f"бумажный талон недоступен: {missing}",
                           "қағаз талон қолжетімсіз") from None
        return Reply(200, "application/pdf", pdf)

    def result(self, row: dict, session: Session) -> Reply:
        if row["result_xml"] is None:
            raise ApiError(409, "NOT_DECIDED", f"заявление ещё не рассмотрено (статус {row['status']})")
        return Reply(200, "application/xml; charset=utf-8", row["result_xml"])

    # --- РПН ---------------------------------------------------------------------------------------------

    def register(self, call: Call, session: Session) -> Reply:
        iin, clinic_bin = call.query.get("iin"), call.query.get("clinicBin")
        if not iin and not clinic_bin:
            raise ApiError(400, "BAD_REQUEST", "укажите iin или clinicBin")
        if clinic_bin and clinic_bin != session.clinic.bin:
            raise ApiError(403, "FORBIDDEN", "список прикреплённых доступен только по своей организации",
                           "тіркелгендер тізімі тек өз ұйымы бойынша қолжетімді")
        rows = self.office.store.attachments(iin=iin or None, clinic_bin=clinic_bin or None,
                                             active_only=call.query.get("active") == "1")
        return _json(200, {"attachments": [
            {"iin": r["iin"], "surname": r["surname"], "name": r["name"], "patronymic": r["patronymic"],
             "birthDate": r["birth_date"], "address": r["address"], "clinicBin": r["clinic_bin"],
             "clinicName": r["clinic_name"], "district": r["district_number"], "districtKind": r["district_kind"],
             "doctor": r["doctor"], "attachDate": r["attach_date"], "detachDate": r["detach_date"],
             "detachReason": r["detach_reason"], "reason": r["reason"], "channel": r["channel"],
             "requestId": r["request_id"], "couponNumber": r["coupon_number"], "homeVisit": r["home_visit"]}
            for r in rows]})
