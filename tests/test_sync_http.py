"""SendMessage through the gateway over real HTTP: the happy path in each data style, and what it journals."""
from __future__ import annotations

import pytest_twisted
from lxml import etree

from gateway import contract as c
from tests.conftest import ECHO_NS, echo_request, send_message


@pytest_twisted.ensureDeferred
async def test_round_trip_sets_session_and_reaches_provider(harness):
    reply = await harness.send(send_message(payload=echo_request("сәлем")))
    assert reply.ok, reply.fault
    assert reply.http_status == 200
    assert reply.status_code == "SCSS001"
    assert reply.session_id and reply.session_id.startswith("{") and reply.session_id.endswith("}")
    assert reply.data.findtext(f"{{{ECHO_NS}}}EchoResponse/text") == "сәлем"
    assert len(harness.stub.received) == 1
    forwarded = etree.fromstring(harness.stub.received[0])
    info = forwarded.find(f"{c.BODY}/{c.SEND_MESSAGE}/request/requestInfo")
    assert info.findtext("sessionId") == reply.session_id
    assert info.find("sender/password") is None
