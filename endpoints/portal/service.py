"""The portal's use cases, blocking (the web layer runs them in threads): accounts, the request form,
condition 2 and sending through the gateway here; the citizen's certificates (`certificates`), refreshing
(`inbound`) and viewing results (`results`) in the mixins `Portal` is made of; its vocabulary in `model`.

Diagram 1 of the regulation, from the portal's side:
  (pre) register → process 1 login → condition 1 (else process 2: 401 "Отказ в авторизации") →
  process 3 form → condition 2 (else process 4: 422 "в связи с неподтверждением ЭЦП") →
  process 5 sign and send through the gateway's AsyncChannel → "refresh status" → "view result".
"""
from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import date, datetime, timedelta, timezone
from typing import Callable

import sqlalchemy
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from endpoints.portal import attachment
from endpoints.portal.certificates import CertificateCases
from endpoints.portal.config import PortalSettings
from endpoints.portal.inbound import InboundCases
from endpoints.portal.people import PersonRegistry, age, check_person
from endpoints.portal.quality import QualityCases, record_deadline
from endpoints.portal.model import (AUTH_REFUSED, DRAFT, EDS_REFUSED, ERROR, SENT, SERVICE, SERVICE_NAMES, SIGNING,
                                    STATUS_LABELS, Invalid, PortalError)
from endpoints.portal.results import ResultCases
from endpoints.portal.signer import CertificateIssuer, CertificateStore, Credentials, confirm_signer, describe
from endpoints.portal.tables import citizens, requests, sessions
from gateway.asyncclient import AsyncFault, AsyncGatewayClient
from gateway.client import sign_payload
from gateway.passwords import hash_password, verify_password
from gateway.security.algorithms import AlgorithmPolicy
from gateway.security.certs import CertificateValidator
from gateway.security.identity import iin_birth_date_and_sex, is_valid_bin, is_valid_iin
from gateway.store import lockouts, migrations

log = logging.getLogger("shep.portal")


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _text(body: dict, name: str, errors: dict, *, required: bool = True, limit: int = 100) -> str | None:
    value = body.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            errors[name] = "обязательное поле"
        return None
    if not isinstance(value, str) or len(value) > limit:
        errors[name] = f"строка не длиннее {limit} символов"
        return None
    return value.strip()


def _birth_date(body: dict, iin: str | None, errors: dict, field: str = "birth_date") -> date | None:
    """From the IIN (digits 1–7); given explicitly only when the IIN encodes none, or to agree with it."""
    decoded = iin_birth_date_and_sex(iin) if iin else None
    encoded = decoded[0] if decoded else None
    given = body.get("birth_date")
    if given is None:
        if encoded is None and iin is not None:
            errors[field] = "ИИН не содержит даты рождения: укажите birth_date (ГГГГ-ММ-ДД)"
        return encoded
    try:
        parsed = date.fromisoformat(given) if isinstance(given, str) else None
    except ValueError:
        parsed = None
    if parsed is None:
        errors[field] = "дата в формате ГГГГ-ММ-ДД"
    elif encoded is not None and parsed != encoded:
        errors[field] = f"ИИН указывает дату рождения {encoded.isoformat()}"
    return parsed


def _iin(body: dict, name: str, errors: dict) -> str | None:
    value = body.get(name)
    if not isinstance(value, str) or not is_valid_iin(value.strip()):
        errors[name] = "ИИН: 12 цифр с верной контрольной цифрой"
        return None
    return value.strip()


class Portal(CertificateCases, InboundCases, ResultCases, QualityCases):
    """One portal over its tables, the citizens' certificates, and its gateway client; the certificate,
    refresh, result and quality use cases are in `certificates`, `inbound`, `results` and `quality`."""

    def __init__(self, settings: PortalSettings, *, engine: sqlalchemy.Engine, gateway: AsyncGatewayClient,
                 validator: CertificateValidator, issue_certificate: CertificateIssuer | None = None,
                 clock: Callable[[], datetime] = utc_now, policy: AlgorithmPolicy | None = None,
                 registry: PersonRegistry | None = None):
        """`registry`: ЖТ ММБ, asked before an account is opened; without one (unit tests) nobody is checked."""
        self.settings = settings
        self.registry = registry
        self.engine = engine
        self.gateway = gateway
        self.validator = validator
        self.issue_certificate = issue_certificate
        self.clock = clock
        self.policy = policy or AlgorithmPolicy()
        self.certificates = CertificateStore(settings.state_dir / "portal" / "certs")
        migrations.upgrade(engine, "portal")
        # Unknown IINs cost a PBKDF2 run too, so timing does not tell who is registered.
        self._decoy_hash = hash_password(secrets.token_hex(16), iterations=settings.password_iterations)

    # -- time ---------------------------------------------------------------------------------------

    def _local(self, moment: datetime | None) -> str | None:
        if moment is None:
            return None
        return moment.astimezone(self.settings.calendar.timezone).isoformat(timespec="seconds")

    def _today(self) -> date:
        return self.clock().astimezone(self.settings.calendar.timezone).date()

    # -- accounts (pre, process 1, condition 1, process 2) ----------------------------------------------

    def register(self, body: dict) -> dict:
        errors: dict[str, str] = {}
        iin = _iin(body, "iin", errors)
        password = body.get("password")
        if not isinstance(password, str) or not self.settings.password_min_length <= len(password) <= 256:
            errors["password"] = f"пароль от {self.settings.password_min_length} до 256 символов"
        surname = _text(body, "surname", errors)
        name = _text(body, "name", errors)
        patronymic = _text(body, "patronymic", errors, required=False)
        born = _birth_date(body, iin, errors)
        if errors:
            raise Invalid(errors)
        with self.engine.begin() as conn:
            if conn.execute(select(citizens.c.iin).where(citizens.c.iin == iin)).first():
                raise PortalError(409, "ALREADY_REGISTERED", "Пользователь с этим ИИН уже зарегистрирован")
        if self.registry is not None:  # before any certificate is issued
            check_person(self.registry, iin, self._today(), self.settings.adult_age)
        credentials = None
        if self.issue_certificate is not None:
            # The citizen's SIGN certificate, as the national CA would issue it.
            try:
                key, certificate = self.issue_certificate(iin, surname, name, patronymic)
            except ValueError as exc:  # X.509 holds at most 64 characters in CN (surname and name) and SN
                log.info("no certificate for %s: %s", iin, exc)
                raise Invalid({"surname": "фамилия и имя вместе не длиннее 63 символов (поле CN сертификата)"}) \
                    from None
            credentials = Credentials(key, certificate)
        record = dict(iin=iin, password_hash=hash_password(password, iterations=self.settings.password_iterations),
                      surname=surname, name=name, patronymic=patronymic, birth_date=born,
                      registered_at=self.clock(), failed_logins=0, locked_until=None)
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(citizens).values(**record))
        except IntegrityError:
            raise PortalError(409, "ALREADY_REGISTERED", "Пользователь с этим ИИН уже зарегистрирован") from None
        if credentials is not None:
            self.certificates.save(iin, credentials)
        return self.profile(iin)

    def login(self, body: dict) -> dict:
        """Condition 1: the IIN is registered and the password is its password; N failures lock it for M minutes."""
        iin, password = body.get("iin"), body.get("password")
        if not isinstance(iin, str) or not isinstance(password, str):
            raise Invalid({name: "обязательное поле" for name in ("iin", "password")
                           if not isinstance(body.get(name), str)})
        now = self.clock()
        with self.engine.begin() as conn:
            row = conn.execute(select(citizens).where(citizens.c.iin == iin)).first()
        if row is None:
            verify_password(password, self._decoy_hash)
            raise PortalError(401, "AUTH_REFUSED", f"{AUTH_REFUSED}: неверный ИИН или пароль")
        self._refuse_if_locked(row.locked_until, now)
        ok = verify_password(password, row.password_hash)
        locked_until = None
        with self.engine.begin() as conn:
            # Under the write lock (gateway/store/lockouts.py): concurrent failures must all count.
            if not ok:
                locked_until = lockouts.login_failed(conn, citizens, iin, now, self.settings.lockout_attempts,
                                                     self.settings.lockout_minutes)
            else:
                self._refuse_if_locked(lockouts.login_succeeded(conn, citizens, iin, now), now)
                conn.execute(delete(sessions).where(sessions.c.expires_at <= now))
                token = secrets.token_urlsafe(32)
                expires = now + timedelta(minutes=self.settings.session_minutes)
                conn.execute(insert(sessions).values(token_hash=_token_hash(token), iin=iin, created_at=now,
                                                     expires_at=expires))
        if not ok:
            self._refuse_if_locked(locked_until, now)
            # The same answer as for an unknown IIN: it must not tell who is registered.
            raise PortalError(401, "AUTH_REFUSED", f"{AUTH_REFUSED}: неверный ИИН или пароль")
        return {"token": token, "token_type": "Bearer", "expires_at": self._local(expires),
                "citizen": self.profile(iin)}

    def _refuse_if_locked(self, locked_until: datetime | None, now: datetime) -> None:
        if locked_until is not None and locked_until > now:
            raise PortalError(401, "ACCOUNT_LOCKED",
                              f"{AUTH_REFUSED}: вход заблокирован после "
                              f"{self.settings.lockout_attempts} неудачных попыток",
                              locked_until=self._local(locked_until),
                              retry_after=max(1, int((locked_until - now).total_seconds())))

    def logout(self, token: str) -> dict:
        with self.engine.begin() as conn:
            conn.execute(delete(sessions).where(sessions.c.token_hash == _token_hash(token)))
        return {"logged_out": True}

    def authenticate(self, token: str | None) -> str:
        """The IIN behind a bearer token; 401 when it is missing, unknown or expired."""
        if token:
            with self.engine.begin() as conn:
                row = conn.execute(select(sessions.c.iin).where(sessions.c.token_hash == _token_hash(token),
                                                                sessions.c.expires_at > self.clock())).first()
            if row is not None:
                return row.iin
        raise PortalError(401, "UNAUTHENTICATED", f"{AUTH_REFUSED}: войдите с ИИН и паролем")

    def profile(self, iin: str) -> dict:
        with self.engine.begin() as conn:
            row = conn.execute(select(citizens).where(citizens.c.iin == iin)).first()
        credentials = self.certificates.load(iin)
        return {"iin": row.iin, "surname": row.surname, "name": row.name, "patronymic": row.patronymic,
                "birth_date": row.birth_date.isoformat(), "registered_at": self._local(row.registered_at),
                "certificate": describe(credentials.certificate) if credentials else None}

    # -- process 3: the service and its form ------------------------------------------------------------

    def services(self) -> list[dict]:
        return [{"id": SERVICE, "name": SERVICE_NAMES, "term_working_days": self.settings.term_working_days,
                 "form": {"clinic_bin": "БИН медицинской организации ПМСП", "district": "номер участка (необязательно)",
                          "reason": list(attachment.REASONS),
                          "address": "адрес: region, city обязательны; district, street, building, flat",
                          "child": "для несовершеннолетнего: iin, surname, name, patronymic, birth_date"}}]

    def create_request(self, iin: str, body: dict) -> dict:
        """The filled form, kept as a draft until signed; the applicant is the citizen or their minor child."""
        if body.get("service", SERVICE) != SERVICE:
            raise PortalError(404, "UNKNOWN_SERVICE", f"Услуга {body.get('service')!r} не найдена")
        errors: dict[str, str] = {}
        clinic_bin = body.get("clinic_bin")
        if not isinstance(clinic_bin, str) or not is_valid_bin(clinic_bin.strip()):
            errors["clinic_bin"] = "БИН: 12 цифр с верной контрольной цифрой"
        district = _text(body, "district", errors, required=False, limit=20)
        reason = body.get("reason")
        if reason not in attachment.REASONS:
            errors["reason"] = f"одно из: {', '.join(attachment.REASONS)}"
        address = self._address(body.get("address"), errors)
        with self.engine.begin() as conn:
            citizen = conn.execute(select(citizens).where(citizens.c.iin == iin)).first()
        applicant = {"iin": citizen.iin, "surname": citizen.surname, "name": citizen.name,
                     "patronymic": citizen.patronymic, "birth_date": citizen.birth_date.isoformat()}
        representative = None
        child = body.get("child")
        if child is not None:
            applicant, representative = self._child(child, iin, errors), iin
        if errors:
            raise Invalid(errors)
        if address:
            applicant["address"] = address
        now = self.clock()
        form = {"service": SERVICE, "clinic_bin": clinic_bin.strip(), "district": district, "reason": reason,
                "applicant": applicant, "representative_iin": representative}
        with self.engine.begin() as conn:
            row_id = conn.execute(insert(requests).values(
                owner_iin=iin, service=SERVICE, status=DRAFT, form=form, applicant_iin=applicant["iin"],
                representative_iin=representative, created_at=now, updated_at=now)).inserted_primary_key[0]
            number = f"{self.settings.request_prefix}{row_id:06d}"
            conn.execute(update(requests).where(requests.c.id == row_id).values(number=number))
        return self.get_request(iin, number)

    def _address(self, value, errors: dict) -> dict | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            errors["address"] = "объект с полями region, city, …"
            return None
        found = {}
        for name in attachment.ADDRESS_FIELDS:
            text = _text(value, name, errors, required=name in ("region", "city"))
            if text is not None:
                found[name] = text
        for name in list(errors):
            if name in attachment.ADDRESS_FIELDS:
                errors[f"address.{name}"] = errors.pop(name)
        return found

    def _child(self, child, parent_iin: str, errors: dict) -> dict:
        """A minor applicant with the citizen as representative (законный представитель)."""
        if not isinstance(child, dict):
            errors["child"] = "объект с полями iin, surname, name, …"
            return {}
        found: dict[str, str] = {}
        iin = _iin(child, "iin", found)
        surname = _text(child, "surname", found)
        name = _text(child, "name", found)
        patronymic = _text(child, "patronymic", found, required=False)
        born = _birth_date(child, iin, found)
        if iin is not None and iin == parent_iin:
            found["iin"] = "ИИН ребёнка совпадает с ИИН заявителя"
        if born is not None and age(born, self._today()) >= self.settings.adult_age:
            found["birth_date"] = f"с {self.settings.adult_age} лет заявление подаётся самостоятельно"
        errors.update({f"child.{name}": text for name, text in found.items()})
        return {"iin": iin, "surname": surname, "name": name, "patronymic": patronymic,
                "birth_date": born.isoformat() if born else None}

    # -- the status screen -----------------------------------------------------------------------------

    def _own(self, conn, iin: str, number: str, *, lock: bool = False):
        query = select(requests).where(requests.c.number == number, requests.c.owner_iin == iin)
        row = conn.execute(query.with_for_update() if lock else query).first()
        if row is None:  # another citizen's request is not found either (confidentiality)
            raise PortalError(404, "REQUEST_NOT_FOUND", f"Заявка {number} не найдена")
        return row

    def _view(self, row) -> dict:
        """Regulation §8: IIN, request number, service type, status, deadline; and what lies behind them."""
        form = row.form
        return {"number": row.number, "iin": row.applicant_iin, "service": {"id": row.service, "name": SERVICE_NAMES},
                "status": row.status, "status_label": STATUS_LABELS[row.status],
                "deadline": self._local(row.deadline), "submitted_at": self._local(row.submitted_at),
                "created_at": self._local(row.created_at), "updated_at": self._local(row.updated_at),
                "applicant": form["applicant"], "representative_iin": row.representative_iin,
                "clinic_bin": form["clinic_bin"], "district": form["district"], "reason": form["reason"],
                "message_id": row.message_id, "correlation_id": row.correlation_id,
                "registration_number": row.registration_number, "registered_at": self._local(row.registered_at),
                "reasons": row.reasons, "delivery": row.delivery, "signer": row.signer,
                "result_available": row.result_type is not None}

    def list_requests(self, iin: str) -> list[dict]:
        with self.engine.begin() as conn:
            rows = conn.execute(select(requests).where(requests.c.owner_iin == iin)
                                .order_by(requests.c.id.desc())).all()
        return [self._view(row) for row in rows]

    def get_request(self, iin: str, number: str) -> dict:
        with self.engine.begin() as conn:
            return self._view(self._own(conn, iin, number))

    # -- condition 2, process 4, process 5 -------------------------------------------------------------

    def _set(self, row_id: int, **values) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(requests).where(requests.c.id == row_id).values(updated_at=self.clock(), **values))

    def sign_request(self, iin: str, number: str, certificate: str | None = None) -> dict:
        """Process 3's choice of the EDS certificate (`certificate`: its id; default the one chosen before),
        condition 2 on it, then process 5."""
        if certificate is not None:
            self.choose_certificate(iin, certificate)
        with self.engine.begin() as conn:
            row = self._own(conn, iin, number, lock=True)
            if row.status != DRAFT:
                raise PortalError(409, "NOT_A_DRAFT", f"Заявка {number} уже подписана ({row.status})",
                                  request=self._view(row))
            # Claimed, so a double click signs and sends once.
            conn.execute(update(requests).where(requests.c.id == row.id).values(status=SIGNING))
        try:
            return self._sign_and_send(row)
        except BaseException:
            with self.engine.begin() as conn:
                conn.execute(update(requests).where(requests.c.id == row.id, requests.c.status == SIGNING)
                             .values(status=DRAFT))
            raise

    def _sign_and_send(self, row) -> dict:
        now = self.clock()
        # The IIN the request speaks for on the signer's behalf: the representative's for a child.
        signer_iin = row.representative_iin or row.applicant_iin
        credentials = self.certificates.load(row.owner_iin)  # the chosen one
        refusals = confirm_signer(credentials, signer_iin, self.validator, now)
        if refusals:
            reasons = [refusal.as_json() for refusal in refusals]
            self._set(row.id, status=ERROR, reasons=reasons)
            raise PortalError(422, "EDS_NOT_CONFIRMED", f"{EDS_REFUSED}: {refusals[0].message}", reasons=reasons,
                              request=self.get_request(row.owner_iin, row.number))
        form = row.form
        document = attachment.build_request(
            number=row.number, submitted_at=now.astimezone(self.settings.calendar.timezone),
            applicant=form["applicant"], representative_iin=row.representative_iin, clinic_bin=form["clinic_bin"],
            district=form["district"], reason=form["reason"])
        signed = sign_payload(document, credentials.key, credentials.certificate)
        try:
            sent = self.gateway.send(self.settings.service_id, signed)
        except AsyncFault as fault:
            reasons = [{"code": fault.code, "message": fault.error_info.get("errorMessage"),
                        "detail": fault.error_info.get("errorData")}]
            self._set(row.id, status=ERROR, reasons=reasons)
            raise PortalError(502, "GATEWAY_REFUSED", "Шлюз отказал в приёме заявки", reasons=reasons,
                              request=self.get_request(row.owner_iin, row.number)) from None
        except (OSError, ValueError) as exc:
            # Whether it was queued is unknown (a timeout may hide an accepted message): the draft stays to be
            # signed again, and a repeat carries the same requestNumber for the clinic to recognise.
            log.warning("%s: the gateway could not be reached: %s", row.number, exc)
            raise PortalError(503, "GATEWAY_UNAVAILABLE", "Шлюз недоступен, повторите позже",
                              detail=str(exc)) from None
        deadline = self.settings.calendar.deadline(now, self.settings.term_working_days)
        with self.engine.begin() as conn:
            conn.execute(update(requests).where(requests.c.id == row.id).values(
                updated_at=self.clock(), status=SENT, submitted_at=now, deadline=deadline, message_id=sent.message_id,
                correlation_id=sent.correlation_id, session_id=sent.session_id, reasons=None,
                signer=describe(credentials.certificate)))
            record_deadline(conn, row.id, form["clinic_bin"], deadline)
        return self.get_request(row.owner_iin, row.number)
