"""SOAP building and editing (gateway.soap) and the public client pieces (gateway.client), without HTTP."""
from __future__ import annotations

import pytest
from lxml import etree

from gateway import client
from gateway import contract as c
from gateway.checks.payload import PayloadSchemas
from gateway.faults import Fault
from gateway.shapes import SYNC_SEND
from gateway.soap import fault_envelope, prepare_forward, serialize, stamp_answer
from tests.conftest import ECHO_NS, ECHO_XSD, PASSWORD, echo_request, echo_response, send_message

SESSION = "{f0774397-3d61-4a44-9d0b-1a2c3b4d5e6f}"
OTHER_SESSION = "{00000000-1111-2222-3333-444444444444}"


def assert_valid(raw_or_tree) -> etree._ElementTree:
    tree = raw_or_tree
    if not isinstance(tree, etree._ElementTree):
        tree = etree.ElementTree(etree.fromstring(raw_or_tree))
    schema = c.sync_schema()
    assert schema.validate(tree), schema.error_log
    return tree


def operation(tree: etree._ElementTree) -> etree._Element:
    return tree.getroot().find(c.BODY)[0]


def error_info(raw: bytes) -> etree._Element:
    return etree.fromstring(raw).find(f"{c.BODY}/{c.FAULT}/detail/{c.SYNC_FAULT}")


# -- fault_envelope -------------------------------------------------------------------------------

def test_fault_envelope_is_schema_valid_and_complete():
    fault = Fault("SERVICE_UNKNOWN", "serviceId 'X'", sub=Fault("ROUTE_UNKNOWN", "routeId 'r'"))
    raw = fault_envelope(fault, SESSION)
    assert_valid(raw)
    info = error_info(raw)
    assert [el.tag for el in info] == ["errorCode", "errorMessage", "errorData", "errorDate", "subError", "sessionId"]
    assert info.findtext("errorCode") == "SHEP-150"
    assert info.findtext("errorMessage") == fault.spec.ru and "Сервис" in info.findtext("errorMessage")
    assert info.findtext("errorData") == "serviceId 'X'"
    assert info.findtext("sessionId") == SESSION
    assert info.findtext("subError/errorCode") == "SHEP-151"
    assert info.findtext("subError/errorData") == "routeId 'r'"
    assert info.find("subError/sessionId") is None


def test_fault_envelope_without_data_or_session():
    raw = fault_envelope(Fault("INTERNAL_ERROR"), None)
    assert_valid(raw)
    info = error_info(raw)
    assert info.find("errorData") is None and info.find("sessionId") is None


@pytest.mark.parametrize("name,faultcode", [
    ("SENDER_UNKNOWN", "Client"),
    ("PROVIDER_TIMEOUT", "Server"),
    ("INTERNAL_ERROR", "Server"),
    ("SOAP_VERSION_MISMATCH", "VersionMismatch"),
    ("SOAP_MUST_UNDERSTAND", "MustUnderstand"),
])
def test_fault_envelope_faultcode(name, faultcode):
    fault = Fault(name)
    soap_fault = etree.fromstring(fault_envelope(fault, None)).find(f"{c.BODY}/{c.FAULT}")
    code = soap_fault.find("faultcode")
    prefix, _, local = code.text.partition(":")
    assert local == faultcode and code.nsmap[prefix] == c.SOAP_NS
    assert soap_fault.findtext("faultstring").startswith(fault.code)


# -- prepare_forward and stamp_answer -------------------------------------------------------------

def test_prepare_forward_removes_password_and_sets_session_last():
    tree = etree.ElementTree(etree.fromstring(send_message(properties={"a": "1", "b": "2"})))
    prepare_forward(operation(tree), SYNC_SEND.info, SESSION)
    info = operation(tree).find("request/requestInfo")
    assert info.find("sender/password") is None
    assert PASSWORD.encode() not in serialize(tree)
    assert info[-1].tag == "sessionId" and info[-1].text == SESSION
    assert len(info.findall("sessionId")) == 1
    assert_valid(tree)


def test_prepare_forward_replaces_an_earlier_session():
    tree = etree.ElementTree(etree.fromstring(send_message()))
    prepare_forward(operation(tree), SYNC_SEND.info, OTHER_SESSION)
    prepare_forward(operation(tree), SYNC_SEND.info, SESSION)
    assert operation(tree).find("request/requestInfo").findall("sessionId")[0].text == SESSION
    assert len(operation(tree).findall("request/requestInfo/sessionId")) == 1
    assert_valid(tree)


@pytest.mark.parametrize("provider_session", [None, OTHER_SESSION])
def test_stamp_answer_on_a_response(provider_session):
    tree = etree.ElementTree(etree.fromstring(client.build_send_message_response(
        message_id="p-1", correlation_id="m-1", session_id=provider_session, payload=echo_response())))
    stamp_answer(operation(tree), SYNC_SEND.answer_info, SYNC_SEND.fault, SESSION)
    info = operation(tree).find("response/responseInfo")
    assert info[-1].tag == "sessionId" and info[-1].text == SESSION
    assert len(info.findall("sessionId")) == 1
    assert_valid(tree)


@pytest.mark.parametrize("provider_session", [None, OTHER_SESSION])
def test_stamp_answer_on_a_fault(provider_session):
    tree = etree.ElementTree(etree.fromstring(fault_envelope(
        Fault("PROVIDER_TIMEOUT", sub=Fault("INTERNAL_ERROR")), provider_session)))
    stamp_answer(operation(tree), SYNC_SEND.answer_info, SYNC_SEND.fault, SESSION)
    info = operation(tree).find(f"detail/{c.SYNC_FAULT}")
    assert info[-1].tag == "sessionId" and info[-1].text == SESSION
    assert len(info.findall("sessionId")) == 1 and info.find("subError/sessionId") is None
    assert_valid(tree)


def test_stamp_answer_leaves_a_fault_without_detail_alone():
    raw = (f'<soap:Envelope xmlns:soap="{c.SOAP_NS}"><soap:Body><soap:Fault><faultcode>soap:Server</faultcode>'
           '<faultstring>boom</faultstring></soap:Fault></soap:Body></soap:Envelope>').encode()
    tree = etree.ElementTree(etree.fromstring(raw))
    stamp_answer(operation(tree), SYNC_SEND.answer_info, SYNC_SEND.fault, SESSION)
    assert SESSION.encode() not in serialize(tree)


# -- build_send_message ---------------------------------------------------------------------------

@pytest.mark.parametrize("style,xsi_type", [("inline", None), ("escaped", None), ("typed", f"{{{ECHO_NS}}}Echo")])
def test_build_send_message_styles_are_schema_valid(style, xsi_type):
    """The envelope is valid against the ShEP schema with `data` set aside (as the gateway checks it: an
    xsi:type names a type of the service's schema), and `data` against the service's schema."""
    raw = send_message(style=style, xsi_type=xsi_type, payload=echo_request("сәлем"))
    tree = etree.ElementTree(etree.fromstring(raw))
    data = operation(tree).find("request/requestData/data")
    assert PayloadSchemas().get(ECHO_XSD).errors(data) is None
    data.getparent().replace(data, etree.Element("data"))
    assert_valid(tree)
    if style == "escaped":
        assert data.get(c.XSI_TYPE) == "xs:string" and "сәлем" in data.text and len(data) == 0
    elif style == "typed":
        assert data.get(c.XSI_TYPE).endswith(":Echo") and data.findtext("text") == "сәлем"
    else:
        assert data.get(c.XSI_TYPE) is None and data.findtext(f"{{{ECHO_NS}}}EchoRequest/text") == "сәлем"


def test_build_send_message_with_optional_fields_is_schema_valid():
    raw = send_message(properties={"CONNECTOR_CLIENT": "true", "b": "2"}, correlation_id="c-1", route_id="r-1",
                       message_id="m-1", message_date="2026-11-25T10:00:00+06:00")
    info = operation(assert_valid(raw)).find("request/requestInfo")
    assert [el.tag for el in info] == ["messageId", "correlationId", "serviceId", "messageDate", "routeId",
                                       "sender", "properties", "properties"]
    assert info.findtext("correlationId") == "c-1" and info.findtext("routeId") == "r-1"
    assert [p.findtext("key") for p in info.findall("properties")] == ["CONNECTOR_CLIENT", "b"]


def test_build_send_message_without_payload_is_schema_valid():
    data_parent = operation(assert_valid(send_message(payload=None))).find("request/requestData")
    assert data_parent is not None and len(data_parent) == 0


def test_build_send_message_refuses_unknown_style():
    with pytest.raises(ValueError):
        send_message(style="soap-encoded")


# -- read_reply -----------------------------------------------------------------------------------

def test_read_reply_decodes_a_response():
    raw = client.build_send_message_response(message_id="p-1", session_id=SESSION, payload=echo_response("hi"))
    reply = client.read_reply(200, raw)
    assert reply.ok and reply.http_status == 200
    assert (reply.status_code, reply.message_id, reply.session_id) == (c.SUCCESS_STATUS, "p-1", SESSION)
    assert reply.data.findtext(f"{{{ECHO_NS}}}EchoResponse/text") == "hi"


def test_read_reply_decodes_a_fault_with_sub_error():
    raw = fault_envelope(Fault("SERVICE_UNKNOWN", "serviceId 'X'", sub=Fault("ROUTE_UNKNOWN")), SESSION)
    reply = client.read_reply(500, raw)
    assert not reply.ok and reply.session_id == SESSION
    assert reply.fault["errorCode"] == "SHEP-150" and reply.fault["errorData"] == "serviceId 'X'"
    assert reply.fault["faultcode"] == "soap:Client"
    assert reply.fault["subError"]["errorCode"] == "SHEP-151"


def test_read_reply_tolerates_a_comment_before_the_body_element():
    raw = client.build_send_message_response(message_id="p-1", payload=echo_response())
    raw = raw.replace(b"<soap:Body>", b"<soap:Body><!-- provider v2 -->")
    assert client.read_reply(200, raw).message_id == "p-1"


@pytest.mark.parametrize("raw", [b"<html>oops", b"", send_message()], ids=["not xml", "empty", "SendMessage"])
def test_read_reply_refuses_what_is_not_an_answer(raw):
    with pytest.raises(ValueError):
        client.read_reply(200, raw)
