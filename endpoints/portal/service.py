"""The portal's use cases, blocking (the web layer runs them in threads): accounts, the citizen's
certificate, the request form, condition 2, sending through the gateway, refreshing, viewing results.

Diagram 1 of the regulation, from the portal's side:
  (pre) register → process 1 login → condition 1 (else process 2: 401 "Отказ в авторизации") →
  process 3 form → condition 2 (else process 4: 422 "в связи с неподтверждением ЭЦП") →
  process 5 sign and send through the gateway's AsyncChannel → "refresh status" → "view result".
"""
from __future__ import annotations

import base64
import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Callable

import sqlalchemy
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from endpoints.portal import attachment
from endpoints.portal.config import PortalSettings
from endpoints.portal.signer import (CertificateIssuer, CertificateStore, Credentials, confirm_signer, describe,
                                     parse_credentials, parse_pkcs12)
from endpoints.portal.tables import citizens, inbox, requests, sessions
from gateway import contract as c
from gateway.asyncclient import AsyncFault, AsyncGatewayClient, ReceivedMessage
from gateway.client import load_credentials, sign_payload
from gateway.passwords import hash_password, verify_password
from gateway.security import xmldsig
from gateway.security.algorithms import AlgorithmPolicy, SignatureError
from gateway.security.certs import CertificateValidator, RevocationChecker
from gateway.security.identity import iin_birth_date_and_sex, is_valid_bin, is_valid_iin, subject_bin
from gateway.store import Store, lockouts, migrations

log = logging.getLogger("shep.portal")

SERVICE = "PHC_ATTACHMENT"
SERVICE_NAMES = {"ru": "Прикрепление к медицинской организации, оказывающей первичную медико-санитарную помощь",
                 "kk": "Медициналық-санитариялық алғашқы көмек көрсететін медициналық ұйымға тіркеу"}
DRAFT, SIGNING, SENT, IN_PROGRESS, COMPLETED, REFUSED, ERROR = (
    "DRAFT", "SIGNING", "SENT", "IN_PROGRESS", "COMPLETED", "REFUSED", "ERROR")
STATUS_LABELS = {
    DRAFT: {"ru": "Черновик", "kk": "Жоба"},
    SIGNING: {"ru": "Подписание", "kk": "Қол қою"},
    SENT: {"ru": "Заявка отправлена", "kk": "Өтінім жіберілді"},
    IN_PROGRESS: {"ru": "В обработке", "kk": "Өңделуде"},
    COMPLETED: {"ru": "Исполнена", "kk": "Орындалды"},
    REFUSED: {"ru": "Отказано", "kk": "Бас тартылды"},
    ERROR: {"ru": "Ошибка", "kk": "Қате"},
}
OPEN = (SENT, IN_PROGRESS)
AUTH_REFUSED = "Отказ в авторизации"
EDS_REFUSED = "Отказ в оказании услуги в связи с неподтверждением ЭЦП"
# getMessageStatus / sendDeliveryNotification for a message already acknowledged (docs/async.md).
NOT_PENDING = "SHEP-214"
_PULL_ROUNDS = 20


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class PortalError(Exception):
    """A refusal the citizen sees as JSON: HTTP status, stable code, message, and details."""

    def __init__(self, status: int, code: str, message: str, **details):
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details

    def as_json(self) -> dict:
        return {"error": self.code, "message": self.message, **self.details}


@dataclass(frozen=True)
class Document:
    """A file the citizen downloads: the signed result, its PDF."""
    body: bytes
    content_type: str
    filename: str


class Invalid(PortalError):
    def __init__(self, fields: dict[str, str]):
        super().__init__(400, "VALIDATION_FAILED", "Проверьте заполнение полей", fields=fields)


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


def _age(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


class Portal:
    """One portal over its tables, the citizens' certificates, and its gateway client."""

    def __init__(self, settings: PortalSettings, *, engine: sqlalchemy.Engine, gateway: AsyncGatewayClient,
                 validator: CertificateValidator, issue_certificate: CertificateIssuer | None = None,
                 clock: Callable[[], datetime] = utc_now, policy: AlgorithmPolicy | None = None):
        self.settings = settings
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

    # -- the citizen's certificate -------------------------------------------------------------------

    def certificate(self, iin: str) -> dict:
        """The certificate chosen for signing."""
        credentials = self.certificates.load(iin)
        if credentials is None:
            raise PortalError(404, "NO_CERTIFICATE", "Сертификат ЭЦП не загружен")
        return describe(credentials.certificate)

    def list_certificates(self, iin: str) -> list[dict]:
        """Process 3: the certificates the citizen may choose from (a citizen may hold several)."""
        chosen = self.certificates.chosen(iin)
        return [{**describe(credentials.certificate), "chosen": entry == chosen}
                for entry, credentials in self.certificates.all(iin)]

    def add_certificate(self, iin: str, body: dict, *, choose: bool = True) -> dict:
        """Upload a SIGN certificate and its key: PEM (`certificate`, `key`, `password`) or a PKCS#12
        container (`pkcs12`: bytes or base64, `password`); checked only at signing (condition 2)."""
        password = body.get("password")
        if password is not None and not isinstance(password, str):
            raise Invalid({"password": "строка"})
        container = body.get("pkcs12")
        try:
            if container is not None:
                if isinstance(container, str):
                    try:
                        container = base64.b64decode(container, validate=True)
                    except ValueError:
                        raise Invalid({"pkcs12": "PKCS#12 в base64"}) from None
                if not isinstance(container, bytes) or not container:
                    raise Invalid({"pkcs12": "PKCS#12 в base64"})
                credentials = parse_pkcs12(container, password)
            else:
                certificate, key = body.get("certificate"), body.get("key")
                if not isinstance(certificate, str) or not isinstance(key, str):
                    raise Invalid({"certificate": "PEM сертификата", "key": "PEM закрытого ключа"})
                credentials = parse_credentials(certificate, key, password)
        except ValueError as exc:
            raise Invalid({str(exc).split(":", 1)[0]: str(exc)}) from None
        entry = self.certificates.save(iin, credentials, choose=choose)
        return {**describe(credentials.certificate), "chosen": self.certificates.chosen(iin) == entry}

    def replace_certificate(self, iin: str, body: dict) -> dict:
        """`PUT /certificate`: upload one and choose it for signing."""
        return self.add_certificate(iin, body, choose=True)

    def choose_certificate(self, iin: str, entry: str) -> dict:
        try:
            self.certificates.choose(iin, entry)
        except KeyError:
            raise PortalError(404, "NO_CERTIFICATE", f"Сертификат ЭЦП {entry} не найден") from None
        return {**self.certificate(iin), "chosen": True}

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
        if born is not None and _age(born, self.clock().astimezone(self.settings.calendar.timezone).date()) \
                >= self.settings.adult_age:
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
        self._set(row.id, status=SENT, submitted_at=now, deadline=deadline, message_id=sent.message_id,
                  correlation_id=sent.correlation_id, session_id=sent.session_id, reasons=None,
                  signer=describe(credentials.certificate))
        return self.get_request(row.owner_iin, row.number)

    # -- "refresh status" ------------------------------------------------------------------------------

    def refresh(self, iin: str, number: str) -> dict:
        """Pull this exchange's messages (acknowledging each), apply them, and ask for the REQUEST's delivery."""
        with self.engine.begin() as conn:
            row = self._own(conn, iin, number)
        if row.correlation_id is None:
            return self._view(row)
        try:
            for _ in range(_PULL_ROUNDS):
                messages = self.gateway.pull(self.settings.service_id, correlation_id=row.correlation_id,
                                             amount=self.settings.pull_amount)
                for message in messages:
                    self._receive(message)
                if len(messages) < self.settings.pull_amount:
                    break
            status = self.gateway.status(row.message_id)
        except AsyncFault as fault:
            raise PortalError(502, "GATEWAY_REFUSED", "Шлюз отказал в запросе статуса",
                              reasons=[{"code": fault.code, "message": fault.error_info.get("errorMessage")}],
                              request=self.get_request(iin, number)) from None
        except (OSError, ValueError) as exc:
            raise PortalError(503, "GATEWAY_UNAVAILABLE", "Шлюз недоступен, повторите позже",
                              detail=str(exc), request=self.get_request(iin, number)) from None
        self._set(row.id, delivery={"state": status.state, "code": status.code, "message": status.message,
                                    "date": status.date.isoformat()})
        return self.get_request(iin, number)

    def refresh_all(self, iin: str) -> list[dict]:
        with self.engine.begin() as conn:
            numbers = conn.execute(select(requests.c.number).where(requests.c.owner_iin == iin,
                                                                   requests.c.status.in_(OPEN))).scalars().all()
        for number in numbers:
            self.refresh(iin, number)
        return self.list_requests(iin)

    def _receive(self, message: ReceivedMessage) -> None:
        """Apply once (messageId), then acknowledge; a document that is not this service's is refused."""
        with self.engine.begin() as conn:
            seen = conn.execute(select(inbox.c.outcome).where(inbox.c.message_id == message.message_id)).first()
            if seen is None:
                outcome, document = self._apply(conn, message)
                conn.execute(insert(inbox).values(
                    message_id=message.message_id, correlation_id=message.correlation_id,
                    message_type=message.message_type, document=document, received_at=self.clock(),
                    outcome=outcome))
            else:
                outcome = seen.outcome
                log.info("duplicate %s (%s) acknowledged again", message.message_id, outcome)
        try:
            if outcome.startswith("rejected"):
                self.gateway.acknowledge(message, accepted=False, error=("PORTAL_REJECTED", outcome))
            else:
                self.gateway.acknowledge(message)
        except AsyncFault as fault:
            if fault.code != NOT_PENDING:  # already acknowledged: a repeat after a lost answer
                raise

    def _apply(self, conn, message: ReceivedMessage) -> tuple[str, str | None]:
        """The status change one message makes: (outcome recorded in the inbox, document name)."""
        payload = message.payload
        name = _localname(payload)
        row = conn.execute(select(requests).where(requests.c.correlation_id == message.correlation_id)
                           .with_for_update()).first()
        if row is None:
            return "rejected: no request of this portal has this correlationId", name
        now = self.clock()
        if message.message_type == "UPDATE" and payload is not None and payload.tag == attachment.REGISTRATION:
            registration = attachment.read_registration(payload)
            values = {"registration_number": registration.get("registrationNumber"),
                      "registered_at": _instant(registration.get("registeredAt"))}
            if row.status == SENT:
                values["status"] = IN_PROGRESS
            conn.execute(update(requests).where(requests.c.id == row.id).values(updated_at=now, **values))
            return f"{row.status} → {values.get('status', row.status)}", name
        if message.message_type == "RESPONSE" and payload is not None and payload.tag in (attachment.COUPON,
                                                                                        attachment.REFUSAL):
            if row.status not in OPEN:
                return f"ignored: the request is already {row.status}", name
            document = attachment.standalone(payload)
            if payload.tag == attachment.COUPON:
                coupon = attachment.read_coupon(payload)
                values = {"status": COMPLETED, "result_type": "COUPON",
                          "registration_number": coupon.get("registrationNumber") or row.registration_number}
            else:
                refusal = attachment.read_refusal(payload)
                values = {"status": REFUSED, "result_type": "REFUSAL", "reasons": refusal["reasons"],
                          "registration_number": refusal.get("registrationNumber") or row.registration_number}
            conn.execute(update(requests).where(requests.c.id == row.id)
                         .values(updated_at=now, result_document=document, **values))
            return f"{row.status} → {values['status']}", name
        if message.message_type == "NOTIFICATION":
            return "noted", name
        return f"rejected: {message.message_type} {name or 'without a document'} is not part of {SERVICE}", name

    # -- "view result" ---------------------------------------------------------------------------------

    def result(self, iin: str, number: str) -> dict:
        with self.engine.begin() as conn:
            row = self._own(conn, iin, number)
        if row.result_type is None:
            raise PortalError(409, "RESULT_NOT_READY", "Результат ещё не получен: обновите статус",
                              request=self._view(row))
        root = c.PARSER.parse(row.result_document).getroot()
        answer = {"request": self._view(row), "type": row.result_type,
                  "signature": self._verify_result(row.result_document, row.form["clinic_bin"])}
        if row.result_type == "COUPON":
            coupon = attachment.read_coupon(root)
            answer["coupon"] = coupon
            answer["matches_request"] = (coupon.get("requestNumber") == row.number
                                         and coupon["person"].get("iin") == row.applicant_iin)
        else:
            refusal = attachment.read_refusal(root)
            answer["refusal"] = refusal
            answer["matches_request"] = refusal.get("requestNumber") == row.number
        return answer

    def result_document(self, iin: str, number: str) -> "Document":
        """The signed result as received (the coupon or the refusal), to keep and verify elsewhere."""
        with self.engine.begin() as conn:
            row = self._own(conn, iin, number)
        if row.result_type is None:
            raise PortalError(409, "RESULT_NOT_READY", "Результат ещё не получен: обновите статус",
                              request=self._view(row))
        kind = "coupon" if row.result_type == "COUPON" else "refusal"
        return Document(row.result_document, "application/xml", f"{number}-{kind}.xml")

    def result_pdf(self, iin: str, number: str) -> "Document":
        """The coupon as a printable PDF (the clinic's paper form), signed by whom the signature names."""
        from endpoints.provider.payload import read_coupon
        from endpoints.provider.pdf import coupon_pdf

        with self.engine.begin() as conn:
            row = self._own(conn, iin, number)
        if row.result_type != "COUPON":
            raise PortalError(409, "NO_COUPON", f"По заявке {number} нет талона ({row.status})",
                              request=self._view(row))
        signature = self._verify_result(row.result_document, row.form["clinic_bin"])
        signer = (signature.get("signer") or {}).get("common_name") or ""
        coupon = read_coupon(c.PARSER.parse(row.result_document).getroot())
        return Document(coupon_pdf(coupon, signer=signer), "application/pdf", f"{number}-coupon.pdf")

    def _verify_result(self, document: bytes, clinic_bin: str) -> dict:
        """The EDS of the clinic's authorised person: the signature, the certificate now, and whose BIN it is."""
        try:
            verified = xmldsig.verify_document(document, policy=self.policy)
        except SignatureError as error:
            return {"valid": False, "error": error.name, "detail": error.detail}
        signer = describe(verified.certificate)
        try:
            validated = self.validator.validate(verified.certificate, at=self.clock(), what="result signature")
        except SignatureError as error:
            return {"valid": False, "error": error.name, "detail": error.detail, "signer": signer}
        if subject_bin(verified.certificate) != clinic_bin:
            return {"valid": False, "error": "SIGNER_NOT_CLINIC", "signer": signer,
                    "detail": f"signed for BIN {signer['bin'] or 'none'}, the request names clinic {clinic_bin}"}
        return {"valid": True, "signer": signer, "revocation": validated.revocation,
                "signature_method": verified.signature_method}


def _localname(element) -> str | None:
    return None if element is None else element.tag.rpartition("}")[2]


def _instant(text: str | None) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def build_portal(settings: PortalSettings, *, anchors: list, intermediates: list,
                 engine: sqlalchemy.Engine | None = None, issue_certificate: CertificateIssuer | None = None,
                 transport_credentials: tuple | None = None, clock: Callable[[], datetime] = utc_now) -> Portal:
    """A Portal from settings: its gateway client, condition 2's validator over the trust anchors, and its
    tables on `engine` (the gateway store's, say) or on `settings.store_url`."""
    if engine is None:
        if settings.store_url is None:
            raise ValueError("portal: give the store engine or set portal.store_url")
        # The store's engine is tuned for SQLite: WAL, busy timeout, write locks taken up front.
        engine = Store(settings.store_url).engine
    sign = transport_credentials
    if settings.signing_key is not None:
        sign = load_credentials(cert=str(settings.signing_cert), key=str(settings.signing_key))
    gateway = AsyncGatewayClient(settings.gateway_url, settings.participant_id, settings.password, sign=sign,
                                 timeout=settings.gateway_timeout_seconds)
    revocation = RevocationChecker(settings.revocation, cache_seconds=settings.revocation_cache_seconds,
                                   timeout=settings.revocation_timeout_seconds)
    return Portal(settings, engine=engine, gateway=gateway,
                  validator=CertificateValidator(anchors, intermediates, revocation),
                  issue_certificate=issue_certificate, clock=clock)
