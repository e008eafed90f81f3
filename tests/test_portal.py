"""The portal endpoint without HTTP: accounts and lockout, the deadline calendar, condition 2, the
AttachmentRequest it signs, and how pulled messages change a request (once per messageId)."""
from __future__ import annotations

import copy
import re
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from lxml import etree

from endpoints.portal import attachment
from endpoints.portal.calendar import WorkingCalendar
from endpoints.portal.config import PortalSettings
from endpoints.portal.service import Portal, PortalError
from endpoints.portal.signer import Credentials, confirm_signer, issuer_from_pki
from gateway.asyncclient import AsyncFault, MessageStatus, ReceivedMessage, Sent
from gateway.security import xmldsig
from gateway.security.algorithms import AlgorithmPolicy
from gateway.security.certs import CertificateValidator, RevocationChecker
from gateway.security.identity import subject_iin

ROOT = Path(__file__).resolve().parent.parent
ATTACHMENT_XSD = ROOT / "xsd" / "services" / "attachment" / "attachment.xsd"
AQTAU = ZoneInfo("Asia/Aqtau")
CITIZEN_IIN = "850412353057"  # 1985-04-12, male
OTHER_IIN = "900701424716"
CHILD_IIN = "180504664685"  # 2018-05-04, female
CLINIC_BIN = "081140000436"
PASSWORD = "citizen-secret"


def local_fetch(pki):
    """OCSP and CRL answered by the test PKI in-process: unit tests run no reactor for its HTTP server."""
    def fetch(url: str, body: bytes | None, timeout: float) -> bytes:
        if body is not None:
            return pki.pki.ocsp(body)
        return pki.pki.crl(url.rsplit("/", 1)[-1].removesuffix(".crl"))
    return fetch


def validator_for(pki, fetch=None) -> CertificateValidator:
    return CertificateValidator(pki.pki.trust_anchors(), pki.pki.intermediates(),
                                RevocationChecker("ocsp,crl", cache_seconds=0, fetch=fetch or local_fetch(pki)))


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class FakeGateway:
    """Stands in for AsyncGatewayClient: records what the portal sends and acknowledges."""

    def __init__(self):
        self.sent: list = []
        self.inbox: list[ReceivedMessage] = []
        self.acknowledged: list[tuple[str, bool]] = []

    def send(self, service_id, payload, **_):
        self.sent.append((service_id, payload))
        return Sent(f"msg-{len(self.sent)}", f"corr-{len(self.sent)}", "{session}")

    def pull(self, service_id, *, correlation_id=None, amount=None, message_id=None):
        found = [m for m in self.inbox if m.correlation_id == correlation_id]
        self.inbox = [m for m in self.inbox if m not in found]
        return found

    def acknowledge(self, message, *, accepted=True, resend=False, error=None):
        if any(mid == message.message_id for mid, _ in self.acknowledged):
            raise AsyncFault({"errorCode": "SHEP-214", "errorMessage": "not pending"}, 500)
        self.acknowledged.append((message.message_id, accepted))
        return "notification"

    def status(self, message_id):
        return MessageStatus("DELIVERED", "ASYNC-200", "delivered", datetime.now(timezone.utc))


def make_portal(tmp_path, engine, pki, *, clock=None, gateway=None, validator=None, **settings) -> Portal:
    fields = dict(state_dir=tmp_path, password_iterations=1000, lockout_attempts=3, lockout_minutes=10)
    fields.update(settings)
    return Portal(PortalSettings(**fields), engine=engine,
                  gateway=gateway or FakeGateway(), validator=validator or validator_for(pki),
                  issue_certificate=issuer_from_pki(pki.pki), clock=clock or (lambda: datetime.now(timezone.utc)))


def citizen(iin: str = CITIZEN_IIN, **extra) -> dict:
    return {"iin": iin, "password": PASSWORD, "surname": "Ахметов", "name": "Ерлан", "patronymic": "Серикович",
            **extra}


def form(**extra) -> dict:
    return {"service": "PHC_ATTACHMENT", "clinic_bin": CLINIC_BIN, "district": "7", "reason": "FREE_CHOICE",
            **extra}


def refused(call, *args) -> PortalError:
    with pytest.raises(PortalError) as caught:
        call(*args)
    return caught.value


# -- registration and IIN validation -----------------------------------------------------------------

def test_registration_checks_the_iin_and_issues_a_sign_certificate(tmp_path, store_engine, pki):
    portal = make_portal(tmp_path, store_engine, pki)
    bad = refused(portal.register, citizen("850412353058"))
    assert (bad.status, bad.code) == (400, "VALIDATION_FAILED") and "iin" in bad.details["fields"]
    short = refused(portal.register, citizen(password="short"))
    assert "password" in short.details["fields"]

    profile = portal.register(citizen())
    assert profile["birth_date"] == "1985-04-12"  # read from the IIN
    assert profile["certificate"]["iin"] == CITIZEN_IIN
    assert next((tmp_path / "portal" / "certs" / CITIZEN_IIN).glob("*/key.pem")).stat().st_mode & 0o777 == 0o600
    assert refused(portal.register, citizen()).code == "ALREADY_REGISTERED"


def test_an_iin_without_a_birth_date_needs_one(tmp_path, store_engine, pki):
    portal = make_portal(tmp_path, store_engine, pki)
    # Valid check digit, century digit 0 (unassigned): the IIN says nothing about the birth date.
    unassigned = "840317000029"
    assert "birth_date" in refused(portal.register, citizen(unassigned)).details["fields"]
    wrong = refused(portal.register, citizen(CITIZEN_IIN, birth_date="1985-04-13"))
    assert "1985-04-12" in wrong.details["fields"]["birth_date"]
    assert portal.register(citizen(unassigned, birth_date="1984-03-17"))["birth_date"] == "1984-03-17"


# -- login and lockout ---------------------------------------------------------------------------------

def test_login_refusal_and_lockout(tmp_path, store_engine, pki):
    clock = Clock(datetime(2026, 3, 10, 5, 0, tzinfo=timezone.utc))
    portal = make_portal(tmp_path, store_engine, pki, clock=clock)
    portal.register(citizen())

    unknown = refused(portal.login, {"iin": OTHER_IIN, "password": PASSWORD})
    assert (unknown.status, unknown.code) == (401, "AUTH_REFUSED")
    assert unknown.message.startswith("Отказ в авторизации")
    for _ in range(2):
        wrong = refused(portal.login, {"iin": CITIZEN_IIN, "password": "wrong-password"})
        assert (wrong.code, wrong.message, wrong.details) == (unknown.code, unknown.message, unknown.details)
    locked = refused(portal.login, {"iin": CITIZEN_IIN, "password": "wrong-password"})
    assert (locked.status, locked.code, locked.details["retry_after"]) == (401, "ACCOUNT_LOCKED", 600)
    # Locked: even the right password is refused until the lock is over.
    assert refused(portal.login, {"iin": CITIZEN_IIN, "password": PASSWORD}).code == "ACCOUNT_LOCKED"
    clock.now += timedelta(minutes=9)
    assert refused(portal.login, {"iin": CITIZEN_IIN, "password": PASSWORD}).details["retry_after"] == 60

    clock.now += timedelta(minutes=1, seconds=1)
    session = portal.login({"iin": CITIZEN_IIN, "password": PASSWORD})
    assert portal.authenticate(session["token"]) == CITIZEN_IIN
    # A fresh count after the lock (and after a success).
    for code in ("AUTH_REFUSED", "AUTH_REFUSED", "ACCOUNT_LOCKED"):
        assert refused(portal.login, {"iin": CITIZEN_IIN, "password": "x"}).code == code

    clock.now += timedelta(minutes=61)  # sessions last session_minutes (60)
    assert refused(portal.authenticate, session["token"]).code == "UNAUTHENTICATED"
    assert refused(portal.authenticate, None).status == 401


# -- the deadline calendar -----------------------------------------------------------------------------

def at(*fields) -> datetime:
    return datetime(*fields, tzinfo=AQTAU)


def test_deadline_is_one_working_day_of_working_time():
    calendar = WorkingCalendar(yearly_holidays=frozenset())
    # Tuesday 10:00 → Wednesday 10:00
    assert calendar.deadline(at(2026, 3, 10, 10, 0)) == at(2026, 3, 11, 10, 0)
    # Friday 19:00, after hours → counted from Monday: answered by Monday's closing time.
    assert calendar.deadline(at(2026, 3, 6, 19, 0)) == at(2026, 3, 9, 18, 0)
    # Saturday → Monday too; before opening → the same day's closing time.
    assert calendar.deadline(at(2026, 3, 7, 12, 0)) == at(2026, 3, 9, 18, 0)
    assert calendar.deadline(at(2026, 3, 10, 7, 30)) == at(2026, 3, 10, 18, 0)
    # Any time zone in, the calendar's out: 05:00 UTC is 10:00 in Aqtau.
    assert calendar.deadline(datetime(2026, 3, 10, 5, 0, tzinfo=timezone.utc)) == at(2026, 3, 11, 10, 0)
    assert calendar.deadline(at(2026, 3, 10, 10, 0), working_days=2) == at(2026, 3, 12, 10, 0)


def test_holidays_and_transferred_working_days_are_skipped_and_kept():
    holiday = WorkingCalendar(yearly_holidays=frozenset(), holidays=frozenset({date(2026, 3, 11)}))
    assert holiday.deadline(at(2026, 3, 10, 10, 0)) == at(2026, 3, 12, 10, 0)
    # The defaults: Nauryz (21–23 March) after a Friday evening → Tuesday 24 March.
    assert WorkingCalendar().deadline(at(2026, 3, 20, 19, 0)) == at(2026, 3, 24, 18, 0)
    saturday = WorkingCalendar(yearly_holidays=frozenset(), working_days=frozenset({date(2026, 3, 7)}))
    assert saturday.deadline(at(2026, 3, 6, 19, 0)) == at(2026, 3, 7, 18, 0)


def test_calendar_from_configuration():
    calendar = WorkingCalendar.from_mapping({"timezone": "Asia/Almaty", "hours": "08:00-17:00",
                                             "weekend": ["sun"], "holidays": ["2026-03-11", date(2026, 3, 12)],
                                             "yearly_holidays": ["01-01"]})
    assert (calendar.opens, calendar.closes, calendar.weekend) == (time(8), time(17), frozenset({6}))
    assert not calendar.is_working_day(date(2026, 3, 12)) and calendar.is_working_day(date(2026, 3, 7))
    with pytest.raises(ValueError, match="unknown keys"):
        WorkingCalendar.from_mapping({"hour": "9-18"})
    with pytest.raises(ValueError, match="open before"):
        WorkingCalendar.from_mapping({"hours": "18:00-09:00"})
    settings = PortalSettings.from_mapping({"password": "p", "lockout_attempts": 3, "calendar": {"weekend": []}},
                                           base_dir=Path("/srv"))
    assert (settings.lockout_attempts, settings.calendar.weekend, settings.state_dir) == (3, frozenset(), Path("var"))
    with pytest.raises(ValueError, match="lockout_minutes"):
        PortalSettings.from_mapping({"lockout_minutes": 0})
    with pytest.raises(ValueError, match="go together"):
        PortalSettings.from_mapping({"signing_key": "portal.key"})
    with pytest.raises(ValueError, match="unknown keys"):
        PortalSettings.from_mapping({"pasword": "typo"})


# -- condition 2 ---------------------------------------------------------------------------------------

def credentials(issued) -> Credentials:
    return Credentials(issued.key, issued.cert)


def codes(refusals) -> list[str]:
    return [refusal.code for refusal in refusals]


def test_condition_2_accepts_a_valid_sign_certificate_of_the_same_iin(pki):
    issued = pki.cert("portal-citizen", kind="person", iin=CITIZEN_IIN)
    assert confirm_signer(credentials(issued), CITIZEN_IIN, validator_for(pki), datetime.now(timezone.utc)) == []


def test_condition_2_refuses_expired_revoked_and_other_iin_certificates(pki):
    now, validator = datetime.now(timezone.utc), validator_for(pki)
    expired = pki.cert("portal-expired", kind="person", iin=CITIZEN_IIN, expired=True)
    assert codes(confirm_signer(credentials(expired), CITIZEN_IIN, validator, now)) == ["CERT_EXPIRED"]

    revoked = pki.pki.issue("person", iin=CITIZEN_IIN)
    pki.pki.revoke(revoked.serial, "key_compromise")
    [refusal] = confirm_signer(credentials(revoked), CITIZEN_IIN, validator, now)
    assert refusal.code == "CERT_REVOKED" and "keyCompromise" not in refusal.detail
    assert refusal.message == "сертификат отозван"

    other = pki.cert("portal-other", kind="person", iin=OTHER_IIN)
    [mismatch] = confirm_signer(credentials(other), CITIZEN_IIN, validator, now)
    assert mismatch.code == "IIN_MISMATCH" and OTHER_IIN in mismatch.detail

    # Every reason is reported: an expired certificate of someone else.
    other_expired = pki.pki.issue("person", iin=OTHER_IIN, expired=True)
    assert codes(confirm_signer(credentials(other_expired), CITIZEN_IIN, validator, now)) == [
        "CERT_EXPIRED", "IIN_MISMATCH"]


def test_condition_2_refuses_auth_keys_unknown_revocation_and_missing_certificates(pki):
    now = datetime.now(timezone.utc)
    auth = pki.cert("portal-auth", kind="person", usage="auth", iin=CITIZEN_IIN)
    assert codes(confirm_signer(credentials(auth), CITIZEN_IIN, validator_for(pki), now)) == ["CERT_KEY_USAGE"]

    def down(url, body, timeout):
        raise OSError("connection refused")
    valid = pki.cert("portal-citizen", kind="person", iin=CITIZEN_IIN)
    assert codes(confirm_signer(credentials(valid), CITIZEN_IIN, validator_for(pki, down), now)) == [
        "CERT_REVOCATION_UNKNOWN"]
    assert codes(confirm_signer(None, CITIZEN_IIN, validator_for(pki), now)) == ["CERT_MISSING"]
    mixed = Credentials(pki.cert("portal-other", kind="person", iin=OTHER_IIN).key, valid.cert)
    assert codes(confirm_signer(mixed, CITIZEN_IIN, validator_for(pki), now)) == ["CERT_KEY_MISMATCH"]


# -- process 3 to 5 without a gateway ------------------------------------------------------------------

def logged_in(portal) -> str:
    portal.register(citizen())
    return portal.authenticate(portal.login({"iin": CITIZEN_IIN, "password": PASSWORD})["token"])


def test_the_signed_request_matches_the_contract_and_the_deadline_is_recorded(tmp_path, store_engine, pki):
    # The next Friday at 19:00 in Aqtau: the citizen's certificate is valid from now on.
    today = datetime.now(AQTAU).date()
    friday = today + timedelta(days=(4 - today.weekday()) % 7 or 7)
    clock = Clock(datetime.combine(friday, time(19), AQTAU).astimezone(timezone.utc))
    gateway = FakeGateway()
    # OCSP answers are fresh for a day only, so at a future Friday revocation is not asked (tested above).
    offline = CertificateValidator(pki.pki.trust_anchors(), pki.pki.intermediates(), RevocationChecker("none"))
    portal = make_portal(tmp_path, store_engine, pki, clock=clock, gateway=gateway, validator=offline,
                         calendar=WorkingCalendar(yearly_holidays=frozenset()))
    iin = logged_in(portal)
    draft = portal.create_request(iin, form(address={"region": "Мангистауская", "city": "Актау", "flat": "5"}))
    assert (draft["status"], draft["iin"], draft["number"]) == ("DRAFT", CITIZEN_IIN, "EGOV-000001")

    sent = portal.sign_request(iin, draft["number"])
    assert (sent["status"], sent["correlation_id"], sent["message_id"]) == ("SENT", "corr-1", "msg-1")
    assert sent["submitted_at"] == f"{friday}T19:00:00+05:00"
    assert sent["deadline"] == f"{friday + timedelta(days=3)}T18:00:00+05:00"  # Friday evening → Monday
    assert sent["signer"]["iin"] == CITIZEN_IIN
    assert refused(portal.sign_request, iin, draft["number"]).code == "NOT_A_DRAFT"

    [(service, payload)] = gateway.sent
    assert service == "PHC_ATTACHMENT"
    document = etree.fromstring(etree.tostring(payload))
    etree.XMLSchema(etree.parse(str(ATTACHMENT_XSD))).assertValid(document)
    verified = xmldsig.verify_document(etree.tostring(payload), policy=AlgorithmPolicy())
    assert subject_iin(verified.certificate) == verified.root.findtext("applicant/iin") == CITIZEN_IIN
    assert [verified.root.findtext(p) for p in ("requestNumber", "channel", "clinicBin", "applicant/address/city")] \
        == ["EGOV-000001", "PORTAL", CLINIC_BIN, "Актау"]
    assert verified.root.find("representativeIin") is None


def test_a_minor_is_applied_for_by_the_representative(tmp_path, store_engine, pki):
    gateway = FakeGateway()
    portal = make_portal(tmp_path, store_engine, pki, gateway=gateway)
    iin = logged_in(portal)
    child = {"iin": CHILD_IIN, "surname": "Ахметова", "name": "Алия"}
    draft = portal.create_request(iin, form(reason="RESIDENCE_CHANGE", child=child))
    assert (draft["iin"], draft["representative_iin"], draft["applicant"]["birth_date"]) == (
        CHILD_IIN, CITIZEN_IIN, "2018-05-04")
    portal.sign_request(iin, draft["number"])
    payload = gateway.sent[0][1]
    assert (payload.findtext("applicant/iin"), payload.findtext("representativeIin")) == (CHILD_IIN, CITIZEN_IIN)

    adult = refused(portal.create_request, iin, form(child={**child, "iin": OTHER_IIN}))
    assert "child.birth_date" in adult.details["fields"]
    bad = refused(portal.create_request, iin, form(clinic_bin="081140000437", reason="WHIM", child={"iin": "1"}))
    assert {"clinic_bin", "reason", "child.iin", "child.surname", "child.name"} <= set(bad.details["fields"])


def test_condition_2_refusal_sends_nothing_and_records_error(tmp_path, store_engine, pki):
    gateway = FakeGateway()
    portal = make_portal(tmp_path, store_engine, pki, gateway=gateway)
    iin = logged_in(portal)
    other = pki.cert("portal-other", kind="person", iin=OTHER_IIN)
    pem = pem_pair(other)
    assert portal.replace_certificate(iin, pem)["iin"] == OTHER_IIN
    number = portal.create_request(iin, form())["number"]
    error = refused(portal.sign_request, iin, number)
    assert (error.status, error.code) == (422, "EDS_NOT_CONFIRMED")
    assert error.message == ("Отказ в оказании услуги в связи с неподтверждением ЭЦП: "
                             "ИИН в заявке не совпадает с ИИН в сертификате")
    assert error.details["request"]["status"] == "ERROR" and gateway.sent == []
    own_key = pem_pair(pki.cert("portal-citizen", kind="person", iin=CITIZEN_IIN))["key"]
    mismatched = refused(portal.replace_certificate, iin, {**pem, "key": own_key})
    assert "key" in mismatched.details["fields"]


def pem_pair(issued) -> dict:
    return {"certificate": issued.cert.public_bytes(Encoding.PEM).decode(),
            "key": issued.key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()}


def test_an_unreachable_gateway_leaves_the_draft_to_sign_again(tmp_path, store_engine, pki):
    gateway = FakeGateway()
    portal = make_portal(tmp_path, store_engine, pki, gateway=gateway)
    iin = logged_in(portal)
    number = portal.create_request(iin, form())["number"]
    working = gateway.send

    def unreachable(*args, **kwargs):
        raise OSError("connection refused")
    gateway.send = unreachable
    error = refused(portal.sign_request, iin, number)
    assert (error.status, error.code) == (503, "GATEWAY_UNAVAILABLE")
    assert portal.get_request(iin, number)["status"] == "DRAFT"
    gateway.send = working
    assert portal.sign_request(iin, number)["status"] == "SENT"


# -- refresh: applying pulled messages -----------------------------------------------------------------

def received(message_id: str, correlation_id: str, message_type: str, payload: etree._Element) -> ReceivedMessage:
    envelope = etree.fromstring('<messages xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
                                '<messageData><data/></messageData></messages>')
    envelope.find("messageData/data").append(copy.deepcopy(payload))
    return ReceivedMessage(message_id=message_id, correlation_id=correlation_id, service_id="PHC_ATTACHMENT",
                           message_type=message_type, sender_id="ajo", session_id=None,
                           data=envelope.find("messageData/data"), info=etree.Element("messageInfo"))


def document(tag: str, **children) -> etree._Element:
    root = etree.Element(f"{{{attachment.NS}}}{tag}", nsmap={"att": attachment.NS})
    for name, value in children.items():
        etree.SubElement(root, name).text = value
    return root


def test_messages_change_the_status_once_and_never_backwards(tmp_path, store_engine, pki):
    gateway = FakeGateway()
    portal = make_portal(tmp_path, store_engine, pki, gateway=gateway)
    iin = logged_in(portal)
    number = portal.sign_request(iin, portal.create_request(iin, form())["number"])["number"]
    registration = document("Registration", requestNumber=number, registrationNumber="R-1",
                            registeredAt="2026-03-10T10:00:00+05:00", clinicBin=CLINIC_BIN)
    update = received("m-1", "corr-1", "UPDATE", registration)
    gateway.inbox = [update]
    view = portal.refresh(iin, number)
    assert (view["status"], view["registration_number"], view["delivery"]["state"]) == (
        "IN_PROGRESS", "R-1", "DELIVERED")
    assert view["registered_at"] == "2026-03-10T10:00:00+05:00"

    # The same messageId again (its acknowledgement was lost): acknowledged, not applied twice.
    refusal = document("AttachmentRefusal", requestNumber=number, refusedAt="2026-03-10T11:00:00+05:00")
    reason = etree.SubElement(refusal, "reason")
    for name, text in (("code", "DISTRICT_FULL"), ("textRu", "Участок заполнен"), ("textKk", "Учаске толық")):
        etree.SubElement(reason, name).text = text
    gateway.inbox = [update, received("m-2", "corr-1", "RESPONSE", refusal),
                     received("m-3", "corr-1", "UPDATE", registration),
                     received("m-4", "corr-1", "RESPONSE", document("Registration")),
                     received("m-5", "corr-unknown", "RESPONSE", refusal)]
    view = portal.refresh(iin, number)
    assert view["status"] == "REFUSED" and view["reasons"] == [
        {"code": "DISTRICT_FULL", "text_ru": "Участок заполнен", "text_kk": "Учаске толық"}]
    # m-1 was already acknowledged (SHEP-214 ignored); m-4 is not a RESPONSE of this service: refused.
    assert gateway.acknowledged == [("m-1", True), ("m-2", True), ("m-3", True), ("m-4", False)]
    assert view["result_available"]
    assert portal.result(iin, number)["signature"] == {
        "valid": False, "error": "PAYLOAD_SIGNATURE_MISSING",
        "detail": "the document's last child is not a ds:Signature"}


def test_requests_are_private_and_results_wait_for_an_answer(tmp_path, store_engine, pki):
    portal = make_portal(tmp_path, store_engine, pki)
    iin = logged_in(portal)
    number = portal.create_request(iin, form())["number"]
    assert refused(portal.result, iin, number).code == "RESULT_NOT_READY"
    portal.register(citizen(OTHER_IIN))
    assert refused(portal.get_request, OTHER_IIN, number).status == 404
    assert portal.list_requests(OTHER_IIN) == []
    assert re.fullmatch(r"EGOV-\d{6}", number)
