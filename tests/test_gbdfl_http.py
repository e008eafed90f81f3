"""The ГБД ФЛ provider over HTTP: on its own loopback port, and behind the gateway end to end."""
from __future__ import annotations

import re

import pytest
import pytest_twisted
import treq
from lxml import etree
from twisted.internet import reactor
from twisted.web.server import Site

from gateway import client
from gateway import contract as c
from gateway.faults import CATALOGUE
from gateway.security import xmldsig
from gateway.security.algorithms import AlgorithmPolicy
from simulators.gbdfl import GbdflProvider, build_population, wire
from simulators.gbdfl.population import EDGE_DECEASED
from tests.conftest import CONSUMER_BIN, PASSWORD, PROVIDER_BIN
from tests.test_gbdfl import request_payload

GUID = re.compile(r"\{[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\}")


@pytest.fixture(scope="module")
def population():
    return build_population(size=300)


@pytest.fixture
def provider(population, pki):
    operator = pki.cert("gbdfl-operator", org="ГБД ФЛ (ТЕСТ)")
    return GbdflProvider(population, operator.key, operator.cert)


@pytest_twisted.async_yield_fixture
async def serve():
    """Mount providers on their own loopback ports: serve(provider) -> its URL."""
    ports = []

    def start(provider: GbdflProvider) -> str:
        ports.append(reactor.listenTCP(0, Site(provider), interface="127.0.0.1"))
        return f"http://127.0.0.1:{ports[-1].getHost().port}/gbdfl"

    yield start
    for port in ports:
        await port.stopListening()


@pytest.fixture
def provider_url(serve, provider):
    return serve(provider)


def consumer_message(style: str = "typed", **criteria: str) -> bytes:
    """A request from the harness's `consumer` to OPAQUE, a service the provider participant serves."""
    return client.build_send_message(service_id="OPAQUE", sender_id="consumer", password=PASSWORD,
                                     payload=request_payload(**criteria), style=style,
                                     xsi_type=wire.REQUEST if style == "typed" else None)


def verified_response(reply: client.SyncReply) -> etree._Element:
    return xmldsig.verify_document(xmldsig.document_in_data(reply.data), policy=AlgorithmPolicy()).root


async def post(url: str, body: bytes) -> tuple[int, bytes]:
    response = await treq.post(url, data=body, headers={"Content-Type": "text/xml; charset=utf-8"},
                               persistent=False)
    return response.code, await response.content()


@pytest_twisted.ensureDeferred
async def test_provider_answers_over_http(provider_url, population):
    person = next(iter(population))
    status, raw = await post(provider_url, consumer_message(iin=person.iin))
    reply = client.read_reply(status, raw)
    assert status == 200 and reply.status_code == c.SUCCESS_STATUS
    assert verified_response(reply).findtext("persons/person/iin") == person.iin
    status, raw = await post(provider_url, b"<not-soap/>")
    assert status == 500 and client.read_reply(status, raw).fault["errorCode"] == "999"


def _point_provider_at(harness, url: str) -> None:
    object.__setattr__(harness.app.settings.registry.participant("provider"), "endpoint", url)


@pytest.mark.parametrize("style", client.STYLES)
@pytest_twisted.ensureDeferred
async def test_person_comes_back_through_the_gateway(harness, provider_url, population, style):
    _point_provider_at(harness, provider_url)
    person = population.edge_cases(EDGE_DECEASED)[0]
    reply = await harness.send(consumer_message(style, iin=person.iin))
    assert reply.ok, reply.fault
    assert GUID.fullmatch(reply.session_id)
    response = verified_response(reply)
    assert response.findtext("persons/person/iin") == person.iin
    assert response.findtext("persons/person/deathDate") == person.death_date.isoformat()
    assert harness.stub.received == []


@pytest_twisted.ensureDeferred
async def test_provider_fault_passes_through_the_gateway_with_its_session(harness, provider_url):
    _point_provider_at(harness, provider_url)
    reply = await harness.send(consumer_message("inline", birthDate="not a date"))
    assert reply.http_status == 500
    assert reply.fault["errorCode"] == "999" and "birthDate" in reply.fault["errorData"]
    assert GUID.fullmatch(reply.session_id)


@pytest_twisted.ensureDeferred
async def test_the_gateway_validates_both_payloads_against_the_gbdfl_schema(harness, provider_url, population):
    _point_provider_at(harness, provider_url)
    object.__setattr__(harness.app.settings.registry.service("OPAQUE"), "payload_schema", wire.SCHEMA_PATH)
    person = population.minors()[0]
    for style in client.STYLES:
        reply = await harness.send(consumer_message(style, iin=person.iin))
        assert reply.ok, reply.fault
        assert verified_response(reply).findtext("persons/person/birthCertificate/number")
    not_found = await harness.send(consumer_message(iin="900101300811"))
    assert verified_response(not_found).findtext("messageResult/code") == "GBDFL-404"
    refused = await harness.send(consumer_message(birthDate="not a date"))
    # Refused by the gateway itself (PAYLOAD_INVALID): the registry never sees it.
    assert refused.fault["errorCode"] == "SHEP-171" and "birthDate" in refused.fault["errorData"]


@pytest_twisted.ensureDeferred
async def test_signed_exchange_the_provider_signs_its_answer_too(harness, serve, population, pki):
    """A service requiring WS-Security: the gateway checks the registry's signature and binds it to its BIN."""
    operator = pki.cert("gbdfl-operator-provider-bin", bin=PROVIDER_BIN, org="ГБД ФЛ (ТЕСТ)")
    consumer = pki.cert("consumer-rsa", bin=CONSUMER_BIN)
    object.__setattr__(harness.app.settings.registry.service("OPAQUE"), "require_transport_signature", True)
    person = next(iter(population))
    signed_request = client.sign_request(consumer_message(iin=person.iin), consumer.key, consumer.cert)
    gateway = harness.app.env.security.signing.certificate
    url = serve(GbdflProvider(population, operator.key, operator.cert, transport_signature=True,
                              gateway_certificate=gateway))
    _point_provider_at(harness, url)
    reply = await harness.send(signed_request)
    assert reply.ok, reply.fault
    client.verify_reply_signature(reply.raw, harness.app.env.security.signing.certificate)
    assert verified_response(reply).findtext("persons/person/iin") == person.iin
    _point_provider_at(harness, serve(GbdflProvider(population, operator.key, operator.cert)))
    signed_request = client.sign_request(consumer_message(iin=person.iin), consumer.key, consumer.cert)
    assert (await harness.send(signed_request)).fault["errorCode"] == "SHEP-208"


@pytest_twisted.ensureDeferred
async def test_a_provider_that_knows_the_gateway_answers_only_its_signed_requests(harness, serve, population, pki):
    """A request POSTed straight to the registry, around the gateway, gets a fault and no person."""
    operator = pki.cert("gbdfl-operator-provider-bin", bin=PROVIDER_BIN, org="ГБД ФЛ (ТЕСТ)")
    intruder = pki.cert("consumer-rsa", bin=CONSUMER_BIN)
    url = serve(GbdflProvider(population, operator.key, operator.cert, transport_signature=True,
                              gateway_certificate=harness.app.env.security.signing.certificate))
    person = next(iter(population))
    for forged, code in ((consumer_message(iin=person.iin), "SHEP-180"),
                         (client.sign_request(consumer_message(iin=person.iin), intruder.key, intruder.cert),
                          "SHEP-199")):
        status, raw = await post(url, forged)
        fault = client.read_reply(status, raw).fault
        assert (status, fault["errorCode"]) == (500, code) and person.iin.encode() not in raw, raw
        assert fault["errorMessage"] == CATALOGUE[code].ru
    # Through the gateway, which re-signs what it forwards of a signed exchange: answered.
    _point_provider_at(harness, url)
    object.__setattr__(harness.app.settings.registry.service("OPAQUE"), "require_transport_signature", True)
    reply = await harness.send(client.sign_request(consumer_message(iin=person.iin), intruder.key, intruder.cert))
    assert reply.ok and verified_response(reply).findtext("persons/person/iin") == person.iin
