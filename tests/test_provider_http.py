"""The provider АЖО over real HTTP, behind the gateway: a portal-like participant sends signed
AttachmentRequests on the AsyncChannel and pulls the UPDATE Registration and the RESPONSE; the АЖО asks
the ЖТ ММБ simulator through the SyncChannel; employees use the JSON API and print the paper coupon."""
from __future__ import annotations

import base64
import dataclasses
import json
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import pytest_twisted
import reportlab
import sqlalchemy as sa
import treq
from lxml import etree
from twisted.internet import reactor, task, threads

from endpoints.provider import desk as desk_module
from endpoints.provider import payload as p
from endpoints.provider.couponfont import REGULAR_VARIABLE
from endpoints.provider.office import parse
from endpoints.provider.pdf import default_font
from endpoints.provider.registry import RegistryError
from endpoints.provider.signing import Verifier
from endpoints.provider.store import requests
from endpoints.provider.system import ProviderSystem
from gateway import client, soap
from gateway import contract as c
from gateway.asyncchannel import wire
from gateway.asyncclient import AsyncGatewayClient, ReceivedMessage
from gateway.registry import Participant, Service
from gateway.security import wss, xmldsig
from gateway.security.certs import CertificateValidator, RevocationChecker
from gateway.security.identity import subject_bin
from simulators.gbdfl import GbdflProvider, build_population
from tests.conftest import PASSWORD, PASSWORD_HASH, start_harness, stop_harness
from tests import xmlsec_oracle
from tests.pdf_text import pdf_text
from tests.test_provider import (CLINIC_A, CLINIC_B, EMPLOYEE_A, EMPLOYEE_PASSWORD, NOBODY, PEOPLE, provider_config,
                                 signed_request)

SERVICE = "PHC_ATTACHMENT"
GBDFL_XSD = c.XSD_DIR / "services" / "gbdfl" / "gbdfl.xsd"


def _service(service_id: str, provider: str, channel: str, schema, senders: set[str], **options) -> Service:
    return Service(service_id, provider=provider, channel=channel, payload_schema=schema, timeout_seconds=10.0,
                   allowed_senders=frozenset(senders), routes=frozenset(), strict=False, **options)


@dataclasses.dataclass
class World:
    harness: object
    system: ProviderSystem
    portal: AsyncGatewayClient
    verifier: Verifier
    pki: object

    @property
    def api(self) -> str:
        return f"{self.harness.app.base_url}/clinic/api"


OPERATOR_BIN, PORTAL_BIN = "120440295770", "230540004989"


def registry_of(tmp_path, pki, people: dict) -> GbdflProvider:
    """The ЖТ ММБ simulator over these people (`PEOPLE`'s records), signing as its operator."""
    path = tmp_path / f"people-{uuid.uuid4().hex}.json"
    path.write_text(json.dumps(list(people.values()), ensure_ascii=False), "utf-8")
    operator = pki.cert("provider-gbdfl-operator", org="ГБД ФЛ (ТЕСТ)")
    return GbdflProvider(build_population(size=0, files=[path]), operator.key, operator.cert)


async def start_world(tmp_path, pki, *, transport: bool = False) -> World:
    """The gateway with the portal, the АЖО and the ЖТ ММБ simulator; `transport`: the attachment service
    requires WS-Security, the АЖО signs with its operator's certificate, the portal with its own."""
    # Revocation by OCSP/CRL on the test PKI's server, as in production.
    # Unsigned pushes (`transport` off) cannot be told from forged ones: that world trusts them.
    config = dataclasses.replace(provider_config(), revocation="ocsp,crl", transport_signature=transport,
                                 verify_pushes=transport)
    registry = registry_of(tmp_path, pki, PEOPLE)
    verifier = Verifier(CertificateValidator(pki.pki.trust_anchors(), pki.pki.intermediates(),
                                             RevocationChecker("none")))
    harness = await start_harness(
        tmp_path, pki,
        participants=[Participant("portal", PASSWORD_HASH, None, bin=PORTAL_BIN),
                      Participant("ajo", PASSWORD_HASH, None, async_endpoint="/clinic/async", bin=OPERATOR_BIN),
                      Participant("registry", None, "/registry")],
        # Every document of the exchange must carry a trusted EDS: the АЖО's UPDATE and RESPONSE too.
        services=[_service(SERVICE, "ajo", "async", p.SCHEMA_PATH, {"portal"}, require_payload_signature=True,
                           require_transport_signature=transport),
                  _service("GBDFL_UniversalServiceSync", "registry", "sync", GBDFL_XSD, {"ajo"})],
        async_retry_base_seconds=0.1, async_push_interval_seconds=0.1)
    try:
        root = harness.app.site.resource
        root.putChild(b"registry", registry)
        system = ProviderSystem(config, engine=harness.app.store.engine, pki=pki.pki, state_dir=tmp_path)
        root.putChild(b"clinic", system.resource())
        await threads.deferToThread(system.start, harness.app.base_url, harness.app.env.security.signing.certificate)
    except BaseException:
        await stop_harness(harness)  # a harness left running would hang the session
        raise
    portal_cert = pki.cert("provider-portal", bin=PORTAL_BIN)
    portal = AsyncGatewayClient(harness.app.base_url, "portal", PASSWORD,
                                sign=(portal_cert.key, portal_cert.cert) if transport else None)
    return World(harness, system, portal, verifier, pki)


@pytest_twisted.async_yield_fixture
async def world(tmp_path, pki):
    started = await start_world(tmp_path, pki)
    yield started
    await stop_harness(started.harness)


async def exchange(world: World, document: bytes, count: int = 2, timeout: float = 15) -> list[ReceivedMessage]:
    """Send a REQUEST as the portal; pull and acknowledge the answers of its exchange."""
    sent = await threads.deferToThread(world.portal.send, SERVICE, parse(document))
    answers: list[ReceivedMessage] = []
    for _ in range(int(timeout / 0.1)):
        for message in await threads.deferToThread(world.portal.pull, SERVICE, correlation_id=sent.correlation_id):
            await threads.deferToThread(world.portal.acknowledge, message)
            answers.append(message)
        if len(answers) >= count:
            assert {m.correlation_id for m in answers} == {sent.correlation_id}
            return answers
        await task.deferLater(reactor, 0.1, lambda: None)
    pytest.fail(f"{len(answers)} of {count} answers within {timeout} s")


def document(message: ReceivedMessage) -> bytes:
    return xmldsig.document_in_data(message.data)


@pytest_twisted.ensureDeferred
async def test_portal_request_gets_registration_then_a_signed_coupon(world):
    update, response = await exchange(world, signed_request(world.pki, "adult", district_number="1"))
    assert (update.message_type, update.sender_id, response.message_type) == ("UPDATE", "ajo", "RESPONSE")
    registration = world.verifier.verify(document(update))
    assert registration.root.tag == p.REGISTRATION and subject_bin(registration.certificate) == CLINIC_A
    number = registration.root.findtext("registrationNumber")
    assert registration.root.findtext("requestNumber") == "PORTAL-1"

    signed = document(response)
    verified = world.verifier.verify(signed)
    assert verified.root.tag == p.COUPON and subject_bin(verified.certificate) == CLINIC_A
    p.validate(parse(signed))
    coupon = p.read_coupon(verified.root)
    assert (coupon.registration_number, coupon.person.iin, coupon.clinic_bin) == (
        number, PEOPLE["adult"]["iin"], CLINIC_A)
    assert (coupon.person.surname, coupon.district.number, coupon.previous_clinic_bin) == ("ТЕСТОВ", "1", None)
    assert coupon.person.address.city == "АКТАУ" and coupon.person.address.street == "МИКРОРАЙОН 5"
    verdict = xmlsec_oracle.verify(signed, cert=verified.certificate)
    assert verdict.ok, verdict.detail

    [record] = world.system.store.attachments(iin=PEOPLE["adult"]["iin"])
    assert (record["clinic_bin"], record["channel"], record["request_id"], record["detach_date"]) == (
        CLINIC_A, "PORTAL", number, None)

    # At least once: the same message again (after a restart, say) registers and answers nothing new.
    [queued] = [m for m in world.harness.app.queue.list(service_id=SERVICE) if m.message_type == "REQUEST"]
    before = len(world.harness.app.queue.list(service_id=SERVICE))
    await threads.deferToThread(world.system.inbox.on_message, ReceivedMessage.read(etree.fromstring(queued.message)))
    assert len(world.harness.app.queue.list(service_id=SERVICE)) == before
    assert world.system.store.by_message(queued.message_id)["registration_number"] == number


@pytest_twisted.ensureDeferred
async def test_portal_refusals_are_reasoned_and_signed(world):
    full_first = await exchange(world, signed_request(world.pki, "adult", district_number="3"))
    assert full_first[1].payload.tag == p.COUPON
    cases = [("far", {}, ["ATT-301"]), ("deceased", {}, ["ATT-202"]),
             ("stranger", {"district_number": "3"}, ["ATT-306"])]
    for key, fields, expected in cases:
        update, response = await exchange(world, signed_request(world.pki, key, number=f"PORTAL-{key}", **fields))
        assert update.payload.tag == p.REGISTRATION
        verified = world.verifier.verify(document(response))
        assert verified.root.tag == p.REFUSAL and subject_bin(verified.certificate) == CLINIC_A
        assert [r.code for r in p.read_refusal(verified.root)] == expected, key
        assert verified.root.findtext("registrationNumber") == update.payload.findtext("registrationNumber")
        assert world.system.store.attachments(iin=PEOPLE[key]["iin"]) == []


@pytest_twisted.ensureDeferred
async def test_a_person_not_in_the_registry_gets_only_the_not_found_refusal(world, tmp_path):
    """ATT-201 alone: the address declared for nobody is not judged against the zone (ATT-301)."""
    forgotten = {key: record for key, record in PEOPLE.items() if key != "far"}
    world.harness.app.site.resource.putChild(b"registry", registry_of(tmp_path, world.pki, forgotten))
    _, response = await exchange(world, signed_request(world.pki, "far", number="P-nobody"))
    refusal = world.verifier.verify(document(response)).root
    assert [r.code for r in p.read_refusal(refusal)] == ["ATT-201"]


@pytest_twisted.ensureDeferred
async def test_border_area_and_home_visit_coupons(world):
    _, border = await exchange(world, signed_request(world.pki, "suburb", clinic_bin=CLINIC_B))
    coupon = p.read_coupon(world.verifier.verify(document(border)).root)
    assert coupon.clinic_bin == CLINIC_B and coupon.home_visit_note is None
    assert coupon.person.address.city == "БАСКУДУК"
    _, outside = await exchange(world, signed_request(world.pki, "mover", clinic_bin=CLINIC_A, number="P-2"))
    assert [r.code for r in p.read_refusal(world.verifier.verify(document(outside)).root)] == ["ATT-301"]


@pytest_twisted.ensureDeferred
async def test_a_change_of_residence_the_registry_does_not_show_is_refused(world, tmp_path):
    """ATT-307: the yearly limit is not bypassed by declaring a move; a move ЖТ ММБ shows is exempt."""
    _, first = await exchange(world, signed_request(world.pki, "adult", clinic_bin=CLINIC_B, number="P-1"))
    assert first.payload.tag == p.COUPON
    _, free = await exchange(world, signed_request(world.pki, "adult", number="P-2"))
    assert free.payload.tag == p.COUPON  # the one free change of the year, to clinic A
    _, declared = await exchange(world, signed_request(world.pki, "adult", clinic_bin=CLINIC_B, number="P-3",
                                                       reason="RESIDENCE_CHANGE"))
    [reason] = p.read_refusal(world.verifier.verify(document(declared)).root)
    assert reason.code == "ATT-307"
    assert reason.ru.startswith("Смена места жительства не подтверждена")
    assert reason.kk.startswith("Тұрғылықты жерінің ауысқаны расталмады")
    assert [r["clinic_bin"] for r in world.system.store.attachments(iin=PEOPLE["adult"]["iin"], active_only=True)] \
        == [CLINIC_A]
    # The person moves within Актау (still in both zones), and the registry says so.
    moved = {**PEOPLE, "adult": {**PEOPLE["adult"], "street": "МИКРОРАЙОН 6", "building": "1"}}
    world.harness.app.site.resource.putChild(b"registry", registry_of(tmp_path, world.pki, moved))
    _, shown = await exchange(world, signed_request(world.pki, "adult", clinic_bin=CLINIC_B, number="P-4",
                                                    reason="RESIDENCE_CHANGE"))
    coupon = p.read_coupon(world.verifier.verify(document(shown)).root)
    assert (coupon.clinic_bin, coupon.person.address.street) == (CLINIC_B, "МИКРОРАЙОН 6")


async def api(world: World, method: str, path: str, body: dict | None = None, token: str | None = None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    response = await treq.request(method, f"{world.api}{path}", headers=headers, persistent=False,
                                  data=json.dumps(body).encode() if body is not None else None)
    content = await response.content()
    kind = response.headers.getRawHeaders("content-type", [""])[0]
    return response.code, json.loads(content) if kind.startswith("application/json") else content


@pytest_twisted.ensureDeferred
async def test_a_body_over_the_site_limit_is_refused_not_read_as_empty(world):
    oversized = b" " * (world.harness.app.settings.gateway.max_body_bytes + 1)
    response = await treq.post(f"{world.api}/login", data=oversized, headers={"Content-Type": "application/json"},
                               persistent=False)
    error = json.loads(await response.content())["error"]
    assert (response.code, error["code"]) == (413, "BODY_TOO_LARGE")


@pytest_twisted.ensureDeferred
async def test_employee_login_is_locked_out_after_wrong_passwords_as_the_portal_s(world, monkeypatch):
    attempts = world.system.config.lockout_attempts
    hashed = []
    monkeypatch.setattr(desk_module, "verify_password", lambda plain, encoded: hashed.append(plain) or False)
    for attempt in range(1, attempts):
        status, body = await api(world, "POST", "/login", {"iin": EMPLOYEE_A, "password": f"wrong-{attempt}"})
        assert (status, body["error"]["code"]) == (401, "AUTH_FAILED"), attempt
    status, body = await api(world, "POST", "/login", {"iin": EMPLOYEE_A, "password": "wrong-last"})
    assert (status, body["error"]["code"]) == (401, "ACCOUNT_LOCKED")
    assert body["error"]["retryAfter"] == world.system.config.lockout_minutes * 60 and body["error"]["lockedUntil"]
    monkeypatch.undo()
    # Locked: the right password is refused too, and costs no PBKDF2 run.
    status, body = await api(world, "POST", "/login", {"iin": EMPLOYEE_A, "password": EMPLOYEE_PASSWORD})
    assert (status, body["error"]["code"], len(hashed)) == (401, "ACCOUNT_LOCKED", attempts)
    # Once the lockout is over, the right password is accepted.
    office = world.system.office
    started = office.clock()
    office.clock = lambda: started + timedelta(minutes=world.system.config.lockout_minutes, seconds=1)
    status, body = await api(world, "POST", "/login", {"iin": EMPLOYEE_A, "password": EMPLOYEE_PASSWORD})
    assert status == 200 and body["employee"]["iin"] == EMPLOYEE_A


@pytest_twisted.ensureDeferred
async def test_employee_flow_with_paper_coupon_and_register(world, monkeypatch):
    """The paper coupon is read back by pdftotext, else pypdf (tests/pdf_text.py)."""
    # The person is attached to clinic B through the portal first (with the home-visit note).
    _, first = await exchange(world, signed_request(world.pki, "adult", clinic_bin=CLINIC_B))
    assert p.read_coupon(parse(document(first))).home_visit_note

    status, body = await api(world, "POST", "/login", {"iin": EMPLOYEE_A, "password": "wrong"})
    assert (status, body["error"]["code"], body["error"]["message"]) == (401, "AUTH_FAILED", "Неверный ИИН или пароль")
    status, body = await api(world, "POST", "/requests", {"iin": PEOPLE["adult"]["iin"]})
    assert (status, body["error"]["code"]) == (401, "AUTH_REQUIRED")
    status, body = await api(world, "POST", "/login", {"iin": EMPLOYEE_A, "password": EMPLOYEE_PASSWORD})
    assert status == 200 and body["employee"]["clinicBin"] == CLINIC_A
    token = body["token"]

    # Processes 3–4: the ЖТ ММБ through the gateway.
    status, body = await api(world, "POST", "/requests", {"iin": NOBODY, "reason": "FREE_CHOICE"}, token)
    assert (status, body["error"]["code"], body["error"]["message"]) == (
        404, "ATT-201", "данные получателя не найдены в ЖТ ММБ")
    status, body = await api(world, "POST", "/requests", {"iin": "123", "reason": "FREE_CHOICE"}, token)
    assert (status, body["error"]["code"]) == (400, "BAD_REQUEST")
    status, body = await api(world, "POST", "/requests", {"iin": PEOPLE["adult"]["iin"], "clinicBin": CLINIC_B}, token)
    assert status == 403

    status, draft = await api(world, "POST", "/requests", {"iin": PEOPLE["adult"]["iin"], "reason": "FREE_CHOICE",
                                                           "districtNumber": "1"}, token)
    assert status == 201 and draft["status"] == "DRAFT"
    assert (draft["person"]["surname"], draft["person"]["address"]["street"]) == ("ТЕСТОВ", "МИКРОРАЙОН 5")
    number = draft["requestNumber"]

    # Processes 5–8.
    status, done = await api(world, "POST", f"/requests/{number}/sign", {}, token)
    assert status == 200 and done["status"] == "COMPLETED", done
    coupon = done["coupon"]
    assert (coupon["clinicBin"], coupon["previousClinicBin"], coupon["reason"]) == (CLINIC_A, CLINIC_B, "FREE_CHOICE")
    status, again = await api(world, "POST", f"/requests/{number}/sign", {}, token)
    assert (status, again["error"]["code"]) == (409, "ALREADY_DECIDED")

    status, pdf = await api(world, "GET", f"/requests/{number}/coupon.pdf", token=token)
    assert status == 200 and pdf.startswith(b"%PDF-")
    text = pdf_text(pdf)
    for expected in ("ТЕСТОВ АРМАН БОЛАТОВИЧ", "Поликлиника № 1 (тест)", coupon["couponNumber"],
                     "Садыкова Алия Маратовна"):
        assert expected in text, expected
    # A configured font without the Kazakh letters: a clear refusal, not a coupon of empty boxes.
    latin_only = Path(reportlab.__file__).parent / "fonts" / "Vera.ttf"
    monkeypatch.setenv(REGULAR_VARIABLE, str(latin_only))
    default_font.cache_clear()
    try:
        status, body = await api(world, "GET", f"/requests/{number}/coupon.pdf", token=token)
    finally:
        monkeypatch.delenv(REGULAR_VARIABLE)
        default_font.cache_clear()
    assert (status, body["error"]["code"]) == (503, "COUPON_FONT_MISSING")
    assert f"{REGULAR_VARIABLE}={latin_only}: has no glyph for ә" in body["error"]["message"]
    status, xml = await api(world, "GET", f"/requests/{done['registrationNumber']}/result.xml", token=token)
    verified = world.verifier.verify(xml)
    assert subject_bin(verified.certificate) == CLINIC_A
    assert verified.root.findtext("couponNumber") == coupon["couponNumber"]

    # The register: the new attachment, and the previous one ended by it.
    status, register = await api(world, "GET", f"/register?iin={PEOPLE['adult']['iin']}", token=token)
    assert status == 200
    assert [(r["clinicBin"], r["channel"], r["detachDate"] is not None) for r in register["attachments"]] == [
        (CLINIC_B, "PORTAL", True), (CLINIC_A, "PROVIDER", False)]
    assert register["attachments"][0]["detachDate"] == register["attachments"][1]["attachDate"]
    status, mine = await api(world, "GET", f"/register?clinicBin={CLINIC_A}", token=token)
    assert [r["iin"] for r in mine["attachments"]] == [PEOPLE["adult"]["iin"]]
    assert (await api(world, "GET", f"/register?clinicBin={CLINIC_B}", token=token))[0] == 403
    # Clinic B's request is not clinic A's business.
    b_number = world.system.store.attachments(clinic_bin=CLINIC_B)[0]["request_id"]
    assert (await api(world, "GET", f"/requests/{b_number}", token=token))[0] == 404


@pytest_twisted.ensureDeferred
async def test_registry_through_the_gateway(world):
    registry = world.system.office.registry
    person = await threads.deferToThread(registry.find, PEOPLE["deceased"]["iin"])
    assert (person.surname, person.alive, str(person.death_date)) == ("УТЕПОВ", False, "2024-01-01")
    assert (person.address.district, person.address.city, person.address.street) == (
        "Г.АКТАУ", "АКТАУ", "МИКРОРАЙОН 3")
    assert person.parents is None  # the wire format has no family links
    assert await threads.deferToThread(registry.find, NOBODY) is None
    # A request the registry cannot serve is an error, not "nobody": the checksum is wrong.
    with pytest.raises(RegistryError, match="GBDFL-400"):
        await threads.deferToThread(registry.find, "123456789011")


@pytest_twisted.ensureDeferred
async def test_transport_signed_exchange(tmp_path, pki):
    world = await start_world(tmp_path, pki, transport=True)
    try:
        update, response = await exchange(world, signed_request(world.pki, "adult"))
        assert (update.payload.tag, response.payload.tag) == (p.REGISTRATION, p.COUPON)
        sends = [r for r in world.harness.app.journal.query(sender="ajo", limit=1000) if r["hop"] == "request-in"]
        assert sends and all(("verify_transport_signature", "pass") in {(v["check"], v["verdict"])
                                                                         for v in r["verdicts"]} for r in sends)
    finally:
        await stop_harness(world.harness)


async def post_xml(url: str, body: bytes) -> tuple[int, bytes]:
    response = await treq.post(url, data=body, headers={"Content-Type": "text/xml; charset=utf-8"}, persistent=False)
    return response.code, await response.content()


def _requests(world: World) -> int:
    with world.harness.app.store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(requests)).scalar_one()


@pytest_twisted.ensureDeferred
async def test_forged_pushes_to_the_clinic_are_refused(tmp_path, pki):
    world = await start_world(tmp_path, pki, transport=True)
    try:
        await exchange(world, signed_request(world.pki, "adult"))
        # The REQUEST's push; status notifications to the АЖО (and a retried push, under load) may follow it.
        pushed = next(r for r in world.harness.app.journal.query(service_id=SERVICE, limit=1000, include_body=True)
                      if r["hop"] == "request-out" and r["to_party"] == "ajo"
                      and b"changeMassageStatusNotification" not in base64.b64decode(r["body_base64"]))
        genuine = base64.b64decode(pushed["body_base64"])
        assert _requests(world) == 1
        # The push as the journal holds it, given a new messageId: signed as it was, unsigned, or re-signed.
        forged_id = str(uuid.uuid4()).encode()
        replayed = genuine.replace(pushed["message_id"].encode(), forged_id)
        tree = c.PARSER.parse(replayed)
        soap.drop_transport_signature(tree)
        unsigned = soap.serialize(tree)
        intruder = world.pki.cert("clinic-intruder")
        url = world.harness.app.base_url + "/clinic/async"
        for forged, code in ((replayed, "SHEP-185"), (unsigned, "SHEP-180"),
                             (wss.sign_envelope(unsigned, intruder.key, intruder.cert), "SHEP-199")):
            status, raw = await post_xml(url, forged)
            assert (status, client.read_reply(status, raw).fault["errorCode"]) == (500, code), raw
        note = wire.push_status_notification(message_id=pushed["message_id"], state="DELIVERED", code="ASYNC-200",
                                             message="delivered", session_id=pushed["session_id"])
        status, raw = await post_xml(url, note)
        assert status == 500 and b"changeMassageStatusNotificationFault1" in raw and b"SHEP-180" in raw
        assert _requests(world) == 1 and world.system.store.by_message(forged_id.decode()) is None
        # The genuine push again: acknowledged as the duplicate it is, nothing registered twice.
        status, raw = await post_xml(url, genuine)
        assert status == 200 and _requests(world) == 1
    finally:
        await stop_harness(world.harness)
