"""Diagram 1 from the portal's side over real HTTP: the portal's JSON API mounted on the gateway's site,
the portal as participant `portal` on the AsyncChannel, and the test playing the clinic's АЖО (`ajo`)
with AsyncGatewayClient: it pulls the REQUEST, checks the citizen's EDS, answers UPDATE and RESPONSE."""
from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest_twisted
import treq
from lxml import etree
from twisted.internet import threads

from endpoints.portal import PortalResource, PortalSettings, build_portal, issuer_from_pki
from endpoints.portal.attachment import NS, standalone
from endpoints.portal.web import MAX_BODY
from gateway.asyncclient import AsyncGatewayClient
from gateway.client import sign_payload
from gateway.parties import portal_registry
from gateway.registry import Participant, Service
from gateway.security import xmldsig
from gateway.security.algorithms import AlgorithmPolicy
from gateway.security.identity import subject_iin
from tests.conftest import PASSWORD, PASSWORD_HASH, start_harness, stop_harness, utc_now
from tests.test_metrics_http import scrape
from tests.test_portal import ATTACHMENT_XSD, CHILD_IIN, CITIZEN_IIN, CLINIC_BIN, OTHER_IIN, Clock, pem_pair
from tests.test_provider import NOBODY, PEOPLE
from tests.test_provider_http import GBDFL_XSD, registry_of
from tests.web_client import XHTML, WebClient

SERVICE = "PHC_ATTACHMENT"
PORTAL_BIN = "161140016747"
CITIZEN_PASSWORD = "citizen-secret"


def call(func, *args, **kwargs):
    """The blocking client in a thread: the gateway shares this reactor."""
    return threads.deferToThread(func, *args, **kwargs)


class Stand:
    """The gateway with the portal mounted at /portal, and the clinic's client."""

    def __init__(self, harness, portal, pki):
        self.harness = harness
        self.portal = portal
        self.pki = pki
        self.base = f"{harness.app.base_url}/portal/api"
        self.clinic = AsyncGatewayClient(harness.app.base_url, "ajo", PASSWORD)
        self.clinic_cert = pki.cert("ajo-head", kind="organization", bin=CLINIC_BIN)

    async def api(self, method: str, path: str, body=None, token: str | None = None, raw: bytes | None = None):
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        response = await treq.request(method, f"{self.base}{path}", data=data, headers=headers, persistent=False)
        text = await response.content()
        assert response.headers.getRawHeaders("content-type") == ["application/json; charset=utf-8"]
        return response.code, json.loads(text), response.headers

    async def citizen(self, iin: str = CITIZEN_IIN) -> str:
        """Registered and logged in: the bearer token."""
        code, _, _ = await self.api("POST", "/accounts", {"iin": iin, "password": CITIZEN_PASSWORD,
                                                          "surname": "Ахметов", "name": "Ерлан"})
        assert code == 201
        code, session, _ = await self.api("POST", "/session", {"iin": iin, "password": CITIZEN_PASSWORD})
        assert code == 200
        return session["token"]

    async def answer(self, message_type: str, payload: etree._Element, correlation_id: str):
        signed = sign_payload(payload, self.clinic_cert.key, self.clinic_cert.cert)
        return await call(self.clinic.send, SERVICE, signed, message_type=message_type,
                          correlation_id=correlation_id)


async def start_stand(tmp_path, pki, mount=PortalResource, people: dict | None = None, clock=utc_now) -> Stand:
    """The gateway with the portal and the clinic's participant; `mount(portal)` is what /portal/ serves.
    With `people` (records as tests/test_provider.py's PEOPLE), the ЖТ ММБ simulator serves them behind
    `GBDFL_UniversalServiceSync` and the portal checks registrations there; the portal's deadlines are in
    `/metrics`: both wired as `shep serve` wires them (gateway/app.py `_mount_parties`)."""
    participants = [Participant("portal", PASSWORD_HASH, None, bin=PORTAL_BIN),
                    Participant("ajo", PASSWORD_HASH, None, bin=CLINIC_BIN)]
    services = [Service(SERVICE, provider="ajo", channel="async", payload_schema=ATTACHMENT_XSD,
                        timeout_seconds=5.0, allowed_senders=frozenset({"portal"}), routes=frozenset(),
                        strict=False, require_payload_signature=True)]
    if people is not None:
        participants.append(Participant("registry", None, "/registry"))
        services.append(Service("GBDFL_UniversalServiceSync", provider="registry", channel="sync",
                                payload_schema=GBDFL_XSD, timeout_seconds=5.0, allowed_senders=frozenset({"portal"}),
                                routes=frozenset(), strict=False))
    harness = await start_harness(tmp_path, pki, participants=participants, services=services)
    if people is not None:
        harness.app.site.resource.putChild(b"registry", registry_of(tmp_path, pki, people))
    settings = PortalSettings(gateway_url=harness.app.base_url, password=PASSWORD, state_dir=tmp_path,
                              password_iterations=1000, lockout_attempts=2, lockout_minutes=5)
    portal = build_portal(settings, anchors=pki.pki.trust_anchors(), intermediates=pki.pki.intermediates(),
                          engine=harness.app.store.engine, issue_certificate=issuer_from_pki(pki.pki),
                          registry=None if people is None else portal_registry, clock=clock)
    harness.app.metrics.watch_deadlines(portal.deadline_outcomes)
    harness.app.site.resource.putChild(b"portal", mount(portal))
    return Stand(harness, portal, pki)


@pytest_twisted.async_yield_fixture
async def stand(tmp_path, pki):
    stand = await start_stand(tmp_path, pki)
    yield stand
    await stop_harness(stand.harness)


def element(tag: str, *children: tuple) -> etree._Element:
    root = etree.Element(f"{{{NS}}}{tag}", nsmap={"att": NS})
    _fill(root, children)
    return root


def _fill(parent, children) -> None:
    for name, value in children:
        child = etree.SubElement(parent, name)
        if isinstance(value, tuple):
            _fill(child, value)
        else:
            child.text = value


def registration(number: str) -> etree._Element:
    return element("Registration", ("requestNumber", number), ("registrationNumber", "AJO-2026-17"),
                   ("registeredAt", "2026-11-25T10:00:00+05:00"), ("clinicBin", CLINIC_BIN))


def coupon(number: str, request: etree._Element) -> etree._Element:
    applicant = request.find("applicant")
    person = tuple((name, applicant.findtext(name)) for name in ("iin", "surname", "name", "birthDate"))
    return element("AttachmentCoupon", ("couponNumber", "T-0001"), ("requestNumber", number),
                   ("registrationNumber", "AJO-2026-17"), ("issuedAt", "2026-11-25T11:00:00+05:00"),
                   ("person", person), ("clinic", (("bin", CLINIC_BIN), ("name", "Городская поликлиника № 3"))),
                   ("district", (("number", "7"), ("kind", "терапевтический"), ("doctor", "Искакова А. Б."))),
                   ("attachmentDate", "2026-11-26"), ("reason", request.findtext("reason")))


def refusal(number: str) -> etree._Element:
    return element("AttachmentRefusal", ("requestNumber", number), ("refusedAt", "2026-11-25T11:00:00+05:00"),
                   ("reason", (("code", "OUTSIDE_ZONE"), ("textRu", "Адрес вне зоны обслуживания"),
                               ("textKk", "Мекенжай қызмет көрсету аймағынан тыс"))),
                   ("reason", (("code", "ALREADY_CHANGED"), ("textRu", "Прикрепление уже менялось в этом году"),
                               ("textKk", "Тіркеу биыл өзгертілген"))))


async def pulled_request(stand: Stand, signer_iin: str):
    """The clinic's side of process 5: the REQUEST arrives signed by the citizen; it is checked and acknowledged."""
    [message] = await call(stand.clinic.pull, SERVICE)
    assert (message.message_type, message.sender_id) == ("REQUEST", "portal")
    verified = xmldsig.verify_document(standalone(message.payload), policy=AlgorithmPolicy())
    assert subject_iin(verified.certificate) == signer_iin
    await call(stand.clinic.acknowledge, message)
    return message, verified.root


# -- the whole diagram 1 -----------------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_register_login_sign_send_refresh_and_view_the_coupon(stand):
    code, account, _ = await stand.api("POST", "/accounts", {
        "iin": CITIZEN_IIN, "password": CITIZEN_PASSWORD, "surname": "Ахметов", "name": "Ерлан",
        "patronymic": "Серикович"})
    assert code == 201 and account["certificate"]["iin"] == CITIZEN_IIN

    # Process 2: a wrong password is refused with the regulation's message.
    code, refused, headers = await stand.api("POST", "/session", {"iin": CITIZEN_IIN, "password": "nope"})
    assert (code, refused["error"]) == (401, "AUTH_REFUSED")
    assert refused["message"].startswith("Отказ в авторизации")
    assert headers.getRawHeaders("www-authenticate") == ['Bearer realm="portal"']
    code, session, _ = await stand.api("POST", "/session", {"iin": CITIZEN_IIN, "password": CITIZEN_PASSWORD})
    assert code == 200
    token = session["token"]

    # Process 3: the service and its form; the IIN comes from the login.
    code, services, _ = await stand.api("GET", "/services")
    assert services["services"][0]["id"] == SERVICE
    code, draft, _ = await stand.api("POST", "/requests", {"service": SERVICE, "clinic_bin": CLINIC_BIN,
                                                           "district": "7", "reason": "FREE_CHOICE"}, token)
    assert (code, draft["status"], draft["iin"]) == (201, "DRAFT", CITIZEN_IIN)
    number = draft["number"]

    # Condition 2 and process 5: signed and sent through the gateway.
    code, sent, _ = await stand.api("POST", f"/requests/{number}/sign", token=token)
    assert (code, sent["status"], sent["status_label"]["ru"]) == (200, "SENT", "Заявка отправлена")
    assert sent["deadline"] > sent["submitted_at"] and sent["correlation_id"]

    message, request = await pulled_request(stand, CITIZEN_IIN)
    assert message.correlation_id == sent["correlation_id"]
    assert (request.findtext("requestNumber"), request.findtext("applicant/iin")) == (number, CITIZEN_IIN)
    assert request.findtext("applicant/patronymic") == "Серикович"

    await stand.answer("UPDATE", registration(number), message.correlation_id)
    code, view, _ = await stand.api("POST", f"/requests/{number}/refresh", token=token)
    assert (code, view["status"], view["registration_number"]) == (200, "IN_PROGRESS", "AJO-2026-17")
    assert view["delivery"]["state"] == "DELIVERED" and not view["result_available"]
    code, early, _ = await stand.api("GET", f"/requests/{number}/result", token=token)
    assert (code, early["error"]) == (409, "RESULT_NOT_READY")

    await stand.answer("RESPONSE", coupon(number, request), message.correlation_id)
    code, view, _ = await stand.api("GET", f"/requests/{number}?refresh=1", token=token)
    assert (view["status"], view["result_available"]) == ("COMPLETED", True)

    code, result, _ = await stand.api("GET", f"/requests/{number}/result", token=token)
    assert (code, result["type"], result["matches_request"]) == (200, "COUPON", True)
    assert result["signature"]["valid"] is True and result["signature"]["signer"]["bin"] == CLINIC_BIN
    assert result["signature"]["revocation"].startswith("OCSP")
    assert (result["coupon"]["couponNumber"], result["coupon"]["district"]["doctor"]) == (
        "T-0001", "Искакова А. Б.")

    # The status screen; nothing more waits at the gateway for this exchange.
    code, listing, _ = await stand.api("GET", "/requests", token=token)
    [row] = listing["requests"]
    assert {key: row[key] for key in ("iin", "number", "status")} == {
        "iin": CITIZEN_IIN, "number": number, "status": "COMPLETED"}
    assert row["service"]["name"]["ru"].startswith("Прикрепление") and row["deadline"]
    assert await call(stand.portal.gateway.pull, SERVICE) == []
    assert {r["hop"] for r in stand.harness.app.journal.query(sender="portal")} >= {"request-in"}


@pytest_twisted.ensureDeferred
async def test_a_parent_applies_for_a_child_and_the_clinic_refuses(stand):
    token = await stand.citizen()
    child = {"iin": CHILD_IIN, "surname": "Ахметова", "name": "Алия"}
    code, draft, _ = await stand.api("POST", "/requests", {
        "clinic_bin": CLINIC_BIN, "reason": "RESIDENCE_CHANGE", "child": child,
        "address": {"region": "Мангистауская область", "city": "Актау", "street": "14 мкр", "building": "5"}},
        token)
    assert (code, draft["iin"], draft["representative_iin"]) == (201, CHILD_IIN, CITIZEN_IIN)
    number = draft["number"]
    code, sent, _ = await stand.api("POST", f"/requests/{number}/sign", token=token)
    assert code == 200

    # The parent signs: the certificate's IIN is the representative's, the applicant is the child.
    message, request = await pulled_request(stand, CITIZEN_IIN)
    assert (request.findtext("applicant/iin"), request.findtext("representativeIin")) == (CHILD_IIN, CITIZEN_IIN)
    assert request.findtext("applicant/address/city") == "Актау"
    await stand.answer("UPDATE", registration(number), message.correlation_id)
    await stand.answer("RESPONSE", refusal(number), message.correlation_id)

    code, listing, _ = await stand.api("POST", "/requests/refresh", token=token)
    [view] = listing["requests"]
    assert (view["status"], view["status_label"]["ru"]) == ("REFUSED", "Отказано")
    assert [reason["code"] for reason in view["reasons"]] == ["OUTSIDE_ZONE", "ALREADY_CHANGED"]
    code, result, _ = await stand.api("GET", f"/requests/{number}/result", token=token)
    assert (result["type"], result["signature"]["valid"], result["matches_request"]) == ("REFUSAL", True, True)
    assert result["refusal"]["reasons"][0]["text_ru"] == "Адрес вне зоны обслуживания"


# -- condition 2 refusals never reach the gateway ------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_expired_revoked_and_other_iin_certificates_are_refused_before_sending(stand, pki):
    token = await stand.citizen()
    revoked = pki.pki.issue("person", iin=CITIZEN_IIN)
    pki.pki.revoke(revoked.serial)
    cases = [(pki.cert("portal-expired", kind="person", iin=CITIZEN_IIN, expired=True), "CERT_EXPIRED",
              "срок действия сертификата истёк"),
             (revoked, "CERT_REVOKED", "сертификат отозван"),
             (pki.cert("portal-other", kind="person", iin=OTHER_IIN), "IIN_MISMATCH",
              "ИИН в заявке не совпадает с ИИН в сертификате")]
    for issued, reason, text in cases:
        code, described, _ = await stand.api("PUT", "/certificate", pem_pair(issued), token)
        assert (code, described["serial"]) == (200, str(issued.serial))
        code, draft, _ = await stand.api("POST", "/requests", {"clinic_bin": CLINIC_BIN, "reason": "CAMPAIGN"}, token)
        code, error, _ = await stand.api("POST", f"/requests/{draft['number']}/sign", token=token)
        assert (code, error["error"], error["reasons"][0]["code"]) == (422, "EDS_NOT_CONFIRMED", reason)
        assert error["message"] == f"Отказ в оказании услуги в связи с неподтверждением ЭЦП: {text}"
        assert error["request"]["status"] == "ERROR" and error["request"]["correlation_id"] is None
    # Nothing was queued for the clinic, and nothing at all was sent by the portal.
    assert await call(stand.clinic.pull, SERVICE) == []
    assert [r for r in stand.harness.app.journal.query(sender="portal")] == []


# -- accounts and errors over HTTP ---------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_lockout_tokens_and_json_errors(stand):
    token = await stand.citizen()
    for _ in range(2):
        code, refused, headers = await stand.api("POST", "/session", {"iin": CITIZEN_IIN, "password": "wrong"})
    assert (code, refused["error"]) == (401, "ACCOUNT_LOCKED")
    assert headers.getRawHeaders("retry-after") == ["300"]
    code, refused, _ = await stand.api("POST", "/session", {"iin": CITIZEN_IIN, "password": CITIZEN_PASSWORD})
    assert refused["error"] == "ACCOUNT_LOCKED" and refused["locked_until"]

    # The session opened before the lock still works; another citizen's request is not found.
    code, me, _ = await stand.api("GET", "/me", token=token)
    assert (code, me["iin"]) == (200, CITIZEN_IIN)
    _, draft, _ = await stand.api("POST", "/requests", {"clinic_bin": CLINIC_BIN, "reason": "CAMPAIGN"}, token)
    other = await stand.citizen(OTHER_IIN)
    code, missing, _ = await stand.api("GET", f"/requests/{draft['number']}", token=other)
    assert (code, missing["error"]) == (404, "REQUEST_NOT_FOUND")

    assert (await stand.api("GET", "/requests"))[1]["error"] == "UNAUTHENTICATED"
    assert (await stand.api("GET", "/requests", token="forged"))[0] == 401
    code, bad, _ = await stand.api("POST", "/requests", token=token, raw=b"{not json")
    assert (code, bad["error"]) == (400, "INVALID_JSON")
    code, bad, _ = await stand.api("POST", "/requests", {"clinic_bin": "1", "reason": "x"}, token)
    assert (code, bad["error"], sorted(bad["fields"])) == (400, "VALIDATION_FAILED", ["clinic_bin", "reason"])
    assert (await stand.api("DELETE", "/requests", token=token))[0] == 405
    assert (await stand.api("GET", "/nowhere"))[1]["error"] == "NOT_FOUND"
    code, bad, _ = await stand.api("POST", "/accounts", {"iin": "123456789011", "password": "long-enough",
                                                         "surname": "Тестов", "name": "Тест"})
    assert (code, list(bad["fields"])) == (400, ["iin"])

    assert (await stand.api("DELETE", "/session", token=token))[0] == 200
    assert (await stand.api("GET", "/me", token=token))[0] == 401


@pytest_twisted.ensureDeferred
async def test_gateway_refusal_is_recorded_as_error(stand, pki, tmp_path):
    """A portal whose gateway password is wrong: the gateway's fault is the request's ERROR, with its code."""
    settings = stand.portal.settings.replace(password="wrong", state_dir=tmp_path / "second")
    portal = build_portal(settings, anchors=pki.pki.trust_anchors(), intermediates=pki.pki.intermediates(),
                          engine=stand.harness.app.store.engine, issue_certificate=issuer_from_pki(pki.pki))
    stand.harness.app.site.resource.putChild(b"portal", PortalResource(portal))
    token = await stand.citizen("990106300596")
    _, draft, _ = await stand.api("POST", "/requests", {"clinic_bin": CLINIC_BIN, "reason": "CAMPAIGN"}, token)
    code, error, _ = await stand.api("POST", f"/requests/{draft['number']}/sign", token=token)
    assert (code, error["error"], error["reasons"][0]["code"]) == (502, "GATEWAY_REFUSED", "SHEP-141")
    assert error["request"]["status"] == "ERROR"


@pytest_twisted.ensureDeferred
async def test_a_body_over_either_limit_is_refused(stand):
    # The portal's own 64 KiB, and the site's max_body_bytes, past which the body is not even buffered.
    for size in (MAX_BODY + 1, stand.harness.app.settings.gateway.max_body_bytes + 1):
        code, refused, _ = await stand.api("POST", "/session", raw=b" " * size)
        assert (code, refused["error"]) == (413, "BODY_TOO_LARGE"), size


@pytest_twisted.ensureDeferred
async def test_a_portal_with_its_own_certificate_signs_every_gateway_call(stand, pki, tmp_path):
    issued = pki.cert("portal-org", kind="organization", bin=PORTAL_BIN)
    pem = pem_pair(issued)
    (tmp_path / "portal.crt").write_text(pem["certificate"])
    (tmp_path / "portal.key").write_text(pem["key"])
    settings = stand.portal.settings.replace(signing_key=tmp_path / "portal.key", signing_cert=tmp_path / "portal.crt")
    portal = build_portal(settings, anchors=pki.pki.trust_anchors(), intermediates=pki.pki.intermediates(),
                          engine=stand.harness.app.store.engine, issue_certificate=issuer_from_pki(pki.pki))
    stand.harness.app.site.resource.putChild(b"portal", PortalResource(portal))
    token = await stand.citizen()
    _, draft, _ = await stand.api("POST", "/requests", {"clinic_bin": CLINIC_BIN, "reason": "CAMPAIGN"}, token)
    code, sent, _ = await stand.api("POST", f"/requests/{draft['number']}/sign", token=token)
    assert code == 200
    request_in = next(r for r in stand.harness.app.journal.query(message_id=sent["message_id"])
                      if r["hop"] == "request-in")
    assert ("verify_transport_signature", "pass") in {(v["check"], v["verdict"]) for v in request_in["verdicts"]}
    assert (await stand.api("POST", f"/requests/{draft['number']}/refresh", token=token))[1]["delivery"]["state"] \
        == "ON_DELIVERY"


@pytest_twisted.ensureDeferred
async def test_an_unexpected_failure_is_json_without_a_traceback(stand, monkeypatch):
    def broken():
        raise RuntimeError("secret internals")
    monkeypatch.setattr(stand.portal, "services", broken)
    code, error, _ = await stand.api("GET", "/services")
    assert (code, error) == (500, {"error": "INTERNAL_ERROR", "message": "Внутренняя ошибка портала"})


@pytest_twisted.ensureDeferred
async def test_several_certificates_a_p12_and_the_result_as_files(stand, pki):
    """The JSON side of what the pages add: the citizen's certificates (list, a PKCS#12 upload, the choice at
    signing) and the signed result as an XML file and as a PDF."""
    import base64

    from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12

    token = await stand.citizen()
    other = pki.cert("portal-http-other", kind="person", iin=OTHER_IIN)
    container = pkcs12.serialize_key_and_certificates(b"eds", other.key, other.cert, None,
                                                      BestAvailableEncryption(b"p12-pass"))
    code, wrong, _ = await stand.api("POST", "/certificates", {"pkcs12": base64.b64encode(container).decode(),
                                                               "password": "wrong"}, token)
    assert (code, wrong["error"], list(wrong["fields"])) == (400, "VALIDATION_FAILED", ["pkcs12"])
    code, added, _ = await stand.api("POST", "/certificates", {"pkcs12": base64.b64encode(container).decode(),
                                                               "password": "p12-pass", "choose": False}, token)
    assert (code, added["iin"], added["chosen"]) == (201, OTHER_IIN, False)
    code, listing, _ = await stand.api("GET", "/certificates", token=token)
    assert {(c["iin"], c["chosen"]) for c in listing["certificates"]} == {(OTHER_IIN, False), (CITIZEN_IIN, True)}
    code, missing, _ = await stand.api("POST", "/certificates/0000000000000000/choose", token=token)
    assert (code, missing["error"]) == (404, "NO_CERTIFICATE")

    code, draft, _ = await stand.api("POST", "/requests", {"clinic_bin": CLINIC_BIN, "reason": "FREE_CHOICE"}, token)
    number = draft["number"]
    code, refused, _ = await stand.api("POST", f"/requests/{number}/sign", {"certificate": added["id"]}, token)
    assert (code, refused["error"], refused["reasons"][0]["code"]) == (422, "EDS_NOT_CONFIRMED", "IIN_MISMATCH")
    code, chosen, _ = await stand.api("GET", "/certificate", token=token)
    assert chosen["id"] == added["id"]  # signing with it chose it

    code, draft, _ = await stand.api("POST", "/requests", {"clinic_bin": CLINIC_BIN, "reason": "FREE_CHOICE"}, token)
    number = draft["number"]
    own = next(c["id"] for c in listing["certificates"] if c["iin"] == CITIZEN_IIN)
    code, sent, _ = await stand.api("POST", f"/requests/{number}/sign", {"certificate": own}, token)
    assert (code, sent["status"]) == (200, "SENT")
    message, request = await pulled_request(stand, CITIZEN_IIN)
    response = await treq.get(f"{stand.base}/requests/{number}/result.xml",
                              headers={"Authorization": f"Bearer {token}"}, persistent=False)
    assert response.code == 409
    await response.content()
    await stand.answer("RESPONSE", coupon(number, request), message.correlation_id)
    await stand.api("POST", f"/requests/{number}/refresh", token=token)
    for name, kind in (("result.xml", "application/xml"), ("coupon.pdf", "application/pdf")):
        response = await treq.get(f"{stand.base}/requests/{number}/{name}",
                                  headers={"Authorization": f"Bearer {token}"}, persistent=False)
        body = await response.content()
        assert (response.code, response.headers.getRawHeaders("content-type")) == (200, [kind])
        assert response.headers.getRawHeaders("content-disposition")[0].startswith("attachment")
        if kind == "application/pdf":
            assert body.startswith(b"%PDF-")
        else:
            assert xmldsig.verify_document(body, policy=AlgorithmPolicy()).root.findtext("couponNumber") == "T-0001"


@pytest_twisted.ensureDeferred
async def test_registration_needs_an_adult_the_registry_knows(tmp_path, pki):
    """(pre): no account and no SIGN certificate for an IIN ЖТ ММБ does not know, or for a minor."""
    stand = await start_stand(tmp_path, pki, people={key: PEOPLE[key] for key in ("adult", "child")})
    try:
        refusals = [(NOBODY, "PERSON_NOT_FOUND", "ЖСН деректері ЖТ ММБ-да табылмады"),
                    (PEOPLE["child"]["iin"], "UNDERAGE", "Порталда 18 жастан бастап тіркеледі")]
        for iin, error, kazakh in refusals:
            code, body, _ = await stand.api("POST", "/accounts", {"iin": iin, "password": CITIZEN_PASSWORD,
                                                                  "surname": "Ахметов", "name": "Ерлан"})
            assert (code, body["error"]) == (422, error), body
            assert "ЖТ ММБ" in body["message"] or "18" in body["message"]
            assert kazakh in body["message_kk"]
            assert stand.portal.certificates.ids(iin) == []
            code, _, _ = await stand.api("POST", "/session", {"iin": iin, "password": CITIZEN_PASSWORD})
            assert code == 401
        token = await stand.citizen(PEOPLE["adult"]["iin"])
        code, me, _ = await stand.api("GET", "/me", token=token)
        assert code == 200 and me["certificate"]["iin"] == PEOPLE["adult"]["iin"]
    finally:
        await stop_harness(stand.harness)


@pytest_twisted.ensureDeferred
async def test_deadlines_kept_and_missed_per_clinic_in_metrics(tmp_path, pki):
    """§14: answered by the deadline (kept), after it or not at all once it passed (missed), per clinic."""
    clock = Clock(utc_now())
    stand = await start_stand(tmp_path, pki, clock=clock)
    try:
        token = await stand.citizen()
        other_clinic = "120440295770"

        async def sent(clinic_bin: str) -> tuple[dict, object, etree._Element]:
            _, draft, _ = await stand.api("POST", "/requests", {"clinic_bin": clinic_bin, "reason": "FREE_CHOICE"},
                                          token)
            code, view, _ = await stand.api("POST", f"/requests/{draft['number']}/sign", token=token)
            assert code == 200
            message, request = await pulled_request(stand, CITIZEN_IIN)
            return view, message, request

        def at(moment: str, minutes: int) -> str:
            return (datetime.fromisoformat(moment) + timedelta(minutes=minutes)).isoformat()

        on_time, message, request = await sent(CLINIC_BIN)
        answer = coupon(on_time["number"], request)
        answer.find("issuedAt").text = at(on_time["deadline"], -1)
        await stand.answer("RESPONSE", answer, message.correlation_id)
        late, message, _ = await sent(CLINIC_BIN)
        answer = refusal(late["number"])
        answer.find("refusedAt").text = at(late["deadline"], 60)
        await stand.answer("RESPONSE", answer, message.correlation_id)
        unanswered, _, _ = await sent(other_clinic)
        for view in (on_time, late):
            code, refreshed, _ = await stand.api("POST", f"/requests/{view['number']}/refresh", token=token)
            assert refreshed["result_available"], refreshed

        def deadlines(seen: dict) -> dict:
            return {(labels[0][1], labels[1][1]): value for (name, labels), value in seen.items()
                    if name == "shep_service_deadlines"}

        # Before the third request's deadline only the answered ones count.
        assert deadlines(await scrape(stand.harness)) == {(CLINIC_BIN, "kept"): 1, (CLINIC_BIN, "missed"): 1}
        clock.now = datetime.fromisoformat(at(unanswered["deadline"], 1))
        assert deadlines(await scrape(stand.harness)) == {(CLINIC_BIN, "kept"): 1, (CLINIC_BIN, "missed"): 1,
                                                          (other_clinic, "kept"): 0, (other_clinic, "missed"): 1}
        # The console shows them too (no operators configured: loopback is served), a row per clinic and outcome.
        page = await WebClient(stand.harness.app.base_url).get("/console/metrics")
        assert page.status == 200
        family = page.find("family-shep_service_deadlines")
        assert family is not None, page.text
        cells = [[(td.text or "").strip() for td in row.iter(f"{XHTML}td")]
                 for row in family.iter(f"{XHTML}tr")]
        rows = {(tds[0], tds[1], tds[-1]) for tds in cells if tds}
        assert {(CLINIC_BIN, "kept", "1"), (CLINIC_BIN, "missed", "1"), (other_clinic, "kept", "0"),
                (other_clinic, "missed", "1")} <= rows, rows
    finally:
        await stop_harness(stand.harness)
