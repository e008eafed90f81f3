"""The AsyncChannel contract files (xsd/, wsdl/) and the async samples in tests/data/ agree with each other.

Every sample is validated by each validator of tests/schema_oracle.py (lxml, xmlschema, and the `xmllint` command
where installed) through the one driver schema xsd/shep-async.xsd (gateway and push side); broken variants must be
rejected by each.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from tests.schema_oracle import DATA, PARSER, SchemaOracle, load, unq, xmllint, xmlschema_compiles

ROOT = Path(__file__).resolve().parent.parent
XSD_DIR = ROOT / "xsd"
WSDL_DIR = ROOT / "wsdl"
DRIVER = XSD_DIR / "shep-async.xsd"
ASYNC_WSDL = WSDL_DIR / "AsyncChannel-v10.wsdl"
ASYNC_IFACE_WSDL = WSDL_DIR / "AsyncChannel-v10-Interfaces.wsdl"
CLIENT_WSDL = WSDL_DIR / "AsyncChannelClient-v10.wsdl"
CLIENT_IFACE_WSDL = WSDL_DIR / "AsyncChannelClient-v10-Interfaces.wsdl"

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
ASYNC_NS = "http://bip.bee.kz/AsyncChannel/v10/Types"
ASYNC_T_NS = "http://bip.bee.kz/AsyncChannel/v10/ITypes"
ASYNC_C_NS = "http://bip.bee.kz/AsyncChannel/v10/Types/Client"
ASYNC_I_NS = "http://bip.bee.kz/AsyncChannel/v10/Interfaces"
ASYNC_CI_NS = "http://bip.bee.kz/AsyncChannel/v10/Interfaces/Client"
XS_NS = "http://www.w3.org/2001/XMLSchema"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
WSDL_SOAP_NS = "http://schemas.xmlsoap.org/wsdl/soap/"

ASYNC_XSDS = ["AsyncChannel-v10-ITypes.xsd", "AsyncChannel-v10-Types.xsd",
              "AsyncChannel-v10-Client-Types.xsd", "shep-async.xsd"]

GATEWAY_OPS = {
    "sendMessage": "sendMessageFault",
    "sendDeliveryNotification": "sendDeliveryNotificationFault",
    "getMessageStatus": "getMessageStatusFault",
    "getMessages": "getMessagesFault",
}
CLIENT_OPS = {
    "sendMessage": "sendMessageFault",
    "changeMassageStatusNotification": "changeMassageStatusNotificationFault",
}

_ORACLE = SchemaOracle(DRIVER)
_PARSER = PARSER
assert_valid = _ORACLE.assert_valid
assert_invalid = _ORACLE.assert_invalid


def message_info(doc: etree._ElementTree) -> etree._Element:
    return unq(doc.getroot(), "request/messageInfo")


def from_bytes(raw: bytes) -> etree._ElementTree:
    return etree.ElementTree(etree.fromstring(raw, _PARSER))


# ---------------------------------------------------------------- the schema set itself

@pytest.mark.parametrize("name", ASYNC_XSDS)
def test_async_schema_compiles_on_its_own(name):
    etree.XMLSchema(etree.parse(str(XSD_DIR / name), _PARSER))
    xmlschema_compiles(XSD_DIR / name)


@pytest.mark.parametrize("name", ASYNC_XSDS)
def test_async_schema_compiles_in_xmllint(name, tmp_path):
    """xmllint compiles each schema alone (an empty-ish instance fails validation, not compilation)."""
    doc = tmp_path / "dummy.xml"
    doc.write_text('<?xml version="1.0"?><x/>')
    res = xmllint(XSD_DIR / name, doc)
    assert "failed to compile" not in res.stderr, res.stderr
    assert "parser error" not in res.stderr.lower(), res.stderr


@pytest.mark.parametrize("name", ASYNC_XSDS)
def test_async_schema_relative_locations_no_element_form_default(name):
    root = etree.parse(str(XSD_DIR / name), _PARSER).getroot()
    assert root.get("elementFormDefault") is None
    for imp in root.iter(f"{{{XS_NS}}}import", f"{{{XS_NS}}}include"):
        loc = imp.get("schemaLocation")
        assert loc and "/" not in loc and (XSD_DIR / loc).is_file(), loc


def test_schema_namespaces_and_global_elements():
    def globals_of(name: str) -> tuple[str, set[str]]:
        root = etree.parse(str(XSD_DIR / name), _PARSER).getroot()
        return root.get("targetNamespace"), {e.get("name") for e in root.findall(f"{{{XS_NS}}}element")}

    ns, elements = globals_of("AsyncChannel-v10-Types.xsd")
    assert ns == ASYNC_NS
    assert elements == {
        "sendMessage", "sendMessageResponse",
        "sendDeliveryNotification", "sendDeliveryNotificationResponse",
        "getMessageStatus", "getMessageStatusResponse",
        "getMessages", "getMessagesResponse",
        "sendMessageFault1_sendMessageFault",
        "sendDeliveryNotificationFault1_sendDeliveryNotificationFault",
        "getMessageStatusFault1_getMessageStatusFault",
        "getMessagesFault1_getMessagesFault",
    }
    ns, elements = globals_of("AsyncChannel-v10-Client-Types.xsd")
    assert ns == ASYNC_C_NS
    assert elements == {
        "sendMessage", "sendMessageResponse",
        "changeMassageStatusNotification", "changeMassageStatusNotificationResponse",
        "sendMessageFault1_sendMessageFault",
        "changeMassageStatusNotificationFault1_changeMassageStatusNotificationFault",
    }
    ns, elements = globals_of("AsyncChannel-v10-ITypes.xsd")
    assert ns == ASYNC_T_NS
    assert elements == set()


def test_fault_elements_are_nillable_error_info_and_wrapper_children_nillable():
    for name in ("AsyncChannel-v10-Types.xsd", "AsyncChannel-v10-Client-Types.xsd"):
        root = etree.parse(str(XSD_DIR / name), _PARSER).getroot()
        for el in root.findall(f"{{{XS_NS}}}element"):
            if "Fault1_" in el.get("name"):
                assert el.get("nillable") == "true" and el.get("type").endswith(":ErrorInfo"), el.get("name")
            else:
                children = el.findall(f".//{{{XS_NS}}}element")
                assert len(children) == 1, el.get("name")
                expected = "response" if el.get("name").endswith("Response") else "request"
                assert children[0].get("name") == expected
                assert children[0].get("nillable") == "true"


def test_async_message_info_order_and_occurrence():
    root = etree.parse(str(XSD_DIR / "AsyncChannel-v10-ITypes.xsd"), _PARSER).getroot()
    ctype = root.find(f"{{{XS_NS}}}complexType[@name='AsyncMessageInfo']")
    rows = [(e.get("name"), e.get("minOccurs", "1"), e.get("maxOccurs", "1"))
            for e in ctype.iter(f"{{{XS_NS}}}element")]
    assert rows == [
        ("messageId", "0", "1"), ("correlationId", "0", "1"), ("serviceId", "1", "1"),
        ("messageType", "1", "1"), ("routeId", "0", "1"), ("messageDate", "1", "1"),
        ("sender", "1", "1"), ("properties", "0", "unbounded"), ("sessionId", "0", "1"),
    ]
    enum = root.find(f"{{{XS_NS}}}simpleType[@name='MessageType']")
    assert [e.get("value") for e in enum.iter(f"{{{XS_NS}}}enumeration")] == [
        "REQUEST", "NOTIFICATION", "UPDATE", "RESPONSE"]


# ---------------------------------------------------------------- samples validate

def test_samples_have_expected_shape():
    req = load("async-send-request.xml").getroot()
    assert req.find(f"{{{SOAP_NS}}}Body/{{{ASYNC_NS}}}sendMessage/request") is not None
    info = unq(req, "request/messageInfo")
    assert info.find("messageId") is None
    assert info.find("messageType").text == "REQUEST"
    assert unq(req, "messageData/data")[0].tag == "{urn:shep-emulator:demo:echo}EchoRequest"

    msgs = load("async-get-messages-response.xml").getroot().findall(".//response/messages")
    assert len(msgs) == 1 and msgs[0].find("messageInfo/messageId") is not None

    dn = load("async-delivery-notification-request.xml").getroot()
    assert unq(dn, "deliveryStatus/receiveStatus").text == "MESSAGE_NOT_ACCTEPTED"
    assert unq(dn, "deliveryStatus/resendMessage").text == "RESEND"
    assert unq(dn, "deliveryStatus/error/errorCode") is not None

    st = load("async-get-status-response.xml").getroot()
    assert unq(st, "response/messageState").text == "DELIVERED"

    push = load("async-push-change-status-request.xml").getroot()
    assert push.find(f".//{{{ASYNC_C_NS}}}changeMassageStatusNotification/request/notification") is not None

    fault = load("async-fault.xml").getroot()
    detail = fault.find(f"{{{SOAP_NS}}}Body/{{{SOAP_NS}}}Fault/detail")
    info = detail.find(f"{{{ASYNC_NS}}}getMessagesFault1_getMessagesFault")
    assert info is not None and info.find("errorCode").text == "SHEP-150"


# ---------------------------------------------------------------- broken variants are rejected

def test_rejects_unknown_message_type(tmp_path):
    doc = load("async-send-request.xml")
    message_info(doc).find("messageType").text = "QUERY"
    assert_invalid(doc, tmp_path, "messageType")


@pytest.mark.parametrize("value", ["REQUEST", "NOTIFICATION", "UPDATE", "RESPONSE"])
def test_accepts_every_message_type(value, tmp_path):
    doc = load("async-send-request.xml")
    message_info(doc).find("messageType").text = value
    assert_valid(doc, tmp_path)


def test_rejects_correctly_spelt_receive_status(tmp_path):
    """The contract's enum value is MESSAGE_NOT_ACCTEPTED (sic); the correct spelling is not in it."""
    doc = load("async-delivery-notification-request.xml")
    unq(doc.getroot(), "deliveryStatus/receiveStatus").text = "MESSAGE_NOT_ACCEPTED"
    assert_invalid(doc, tmp_path, "receiveStatus")


def test_accepts_message_accepted(tmp_path):
    doc = load("async-delivery-notification-request.xml")
    status = unq(doc.getroot(), "deliveryStatus")
    status.find("receiveStatus").text = "MESSAGE_ACCEPTED"
    status.find("resendMessage").text = "NOT_RESEND"
    status.remove(status.find("error"))
    assert_valid(doc, tmp_path)


def test_rejects_missing_service_id(tmp_path):
    doc = load("async-send-request.xml")
    info = message_info(doc)
    info.remove(info.find("serviceId"))
    assert_invalid(doc, tmp_path, "serviceId")


def test_rejects_get_messages_without_service_id(tmp_path):
    doc = load("async-get-messages-request.xml")
    req = unq(doc.getroot(), "request")
    req.remove(req.find("serviceId"))
    assert_invalid(doc, tmp_path, "serviceId")


def test_rejects_message_data_without_data(tmp_path):
    doc = load("async-send-request.xml")
    data = unq(doc.getroot(), "messageData/data")
    data.getparent().remove(data)
    assert_invalid(doc, tmp_path, "messageData")


def test_rejects_children_qualified_in_types_namespace(tmp_path):
    """The same message written without xmlns="" : children fall into the async namespace."""
    raw = (DATA / "async-send-request.xml").read_bytes().replace(b'<request xmlns="">', b"<request>")
    raw = raw.replace(b'<async:sendMessage xmlns:async="', b'<sendMessage xmlns="')
    raw = raw.replace(b"</async:sendMessage>", b"</sendMessage>")
    doc = from_bytes(raw)
    assert doc.getroot().find(f".//{{{ASYNC_NS}}}request") is not None
    assert_invalid(doc, tmp_path, "request")


def test_rejects_children_qualified_in_push_namespace(tmp_path):
    raw = (DATA / "async-push-change-status-request.xml").read_bytes()
    raw = raw.replace(b'<request xmlns="">', b"<asyncC:request>").replace(b"</request>", b"</asyncC:request>")
    doc = from_bytes(raw)
    assert doc.getroot().find(f".//{{{ASYNC_C_NS}}}request") is not None
    assert_invalid(doc, tmp_path, "request")


def test_rejects_message_info_out_of_order(tmp_path):
    doc = load("async-send-request.xml")
    info = message_info(doc)
    mtype = info.find("messageType")
    info.remove(mtype)
    info.insert(0, mtype)
    assert_invalid(doc, tmp_path)


def test_rejects_non_guid_session_id_in_message_info(tmp_path):
    doc = load("async-get-messages-response.xml")
    unq(doc.getroot(), "messageInfo/sessionId").text = "abc"
    assert_invalid(doc, tmp_path, "sessionId")


def test_get_status_session_id_is_a_plain_string(tmp_path):
    doc = load("async-get-status-response.xml")
    unq(doc.getroot(), "response/sessionId").text = "20-character-session"
    assert_valid(doc, tmp_path)


def test_rejects_unknown_message_state(tmp_path):
    doc = load("async-get-status-response.xml")
    unq(doc.getroot(), "response/messageState").text = "UNKNOWN"
    assert_invalid(doc, tmp_path, "messageState")


def test_rejects_bad_resend_value(tmp_path):
    doc = load("async-delivery-notification-request.xml")
    unq(doc.getroot(), "deliveryStatus/resendMessage").text = "YES"
    assert_invalid(doc, tmp_path, "resendMessage")


def test_rejects_non_int_amount(tmp_path):
    doc = load("async-get-messages-request.xml")
    unq(doc.getroot(), "request/amount").text = "ten"
    assert_invalid(doc, tmp_path, "amount")


def test_rejects_delivery_notification_response_without_session_id(tmp_path):
    doc = load("async-delivery-notification-response.xml")
    resp = unq(doc.getroot(), "response")
    resp.remove(resp.find("sessionId"))
    assert_invalid(doc, tmp_path)


def test_rejects_push_response_without_session_id(tmp_path):
    doc = load("async-push-change-status-response.xml")
    resp = unq(doc.getroot(), "response")
    resp.remove(resp.find("sessionId"))
    assert_invalid(doc, tmp_path)


def test_rejects_fault_detail_without_error_date(tmp_path):
    doc = load("async-fault.xml")
    info = doc.getroot().find(f".//{{{ASYNC_NS}}}getMessagesFault1_getMessagesFault")
    info.remove(info.find("errorDate"))
    assert_invalid(doc, tmp_path, "errorDate")


@pytest.mark.parametrize("element", [
    f"{{{ASYNC_NS}}}sendMessageFault1_sendMessageFault",
    f"{{{ASYNC_NS}}}sendDeliveryNotificationFault1_sendDeliveryNotificationFault",
    f"{{{ASYNC_NS}}}getMessageStatusFault1_getMessageStatusFault",
    f"{{{ASYNC_C_NS}}}sendMessageFault1_sendMessageFault",
    f"{{{ASYNC_C_NS}}}changeMassageStatusNotificationFault1_changeMassageStatusNotificationFault",
])
def test_every_fault_element_validates(element, tmp_path):
    doc = load("async-fault.xml")
    old = doc.getroot().find(f".//{{{ASYNC_NS}}}getMessagesFault1_getMessagesFault")
    old.tag = element
    assert_valid(doc, tmp_path)
    old.remove(old.find("errorCode"))
    assert_invalid(doc, tmp_path, "errorMessage")


# ---------------------------------------------------------------- accepted variations

def test_accepts_nil_request_and_other_envelope_prefix(tmp_path):
    raw = (DATA / "async-send-request.xml").read_bytes().replace(b"soap:", b"soapenv:").replace(
        b"xmlns:soap=", b"xmlns:soapenv=")
    doc = from_bytes(raw)
    assert_valid(doc, tmp_path)
    send = doc.getroot().find(f".//{{{ASYNC_NS}}}sendMessage")
    send.remove(send.find("request"))
    nil = etree.SubElement(send, "request", nsmap={"xsi": XSI_NS})
    nil.set(f"{{{XSI_NS}}}nil", "true")
    assert_valid(doc, tmp_path)


def test_accepts_escaped_string_payload(tmp_path):
    doc = load("async-send-request.xml")
    data = unq(doc.getroot(), "messageData/data")
    new = etree.Element("data", nsmap={"xs": XS_NS, "xsi": XSI_NS})
    new.set(f"{{{XSI_NS}}}type", "xs:string")
    new.text = '<?xml version="1.0"?><r xmlns="urn:x"><a>1</a></r>'
    data.getparent().replace(data, new)
    assert_valid(doc, tmp_path)


def test_accepts_get_messages_with_only_service_id_and_empty_result(tmp_path):
    doc = load("async-get-messages-request.xml")
    req = unq(doc.getroot(), "request")
    for name in ("requestDate", "sender", "amount"):
        req.remove(req.find(name))
    assert_valid(doc, tmp_path)
    doc = load("async-get-messages-response.xml")
    resp = unq(doc.getroot(), "response")
    resp.remove(resp.find("messages"))
    assert_valid(doc, tmp_path)


# ---------------------------------------------------------------- the WSDL

@pytest.mark.parametrize("path", [ASYNC_WSDL, ASYNC_IFACE_WSDL])
def test_gateway_wsdl_files_load_in_zeep(path):
    import zeep

    client = zeep.Client(str(path))
    for op in GATEWAY_OPS:
        assert client.wsdl.types.get_element(f"{{{ASYNC_NS}}}{op}") is not None
        assert client.wsdl.types.get_element(f"{{{ASYNC_NS}}}{op}Response") is not None
        fault = GATEWAY_OPS[op]
        assert client.wsdl.types.get_element(f"{{{ASYNC_NS}}}{fault}1_{fault}") is not None
    if path == ASYNC_IFACE_WSDL:
        port_type = client.wsdl.port_types.get(f"{{{ASYNC_I_NS}}}IAsyncChannel")
        assert port_type is not None
        assert set(port_type.operations) == set(GATEWAY_OPS)


@pytest.mark.parametrize("path", [CLIENT_WSDL, CLIENT_IFACE_WSDL])
def test_client_wsdl_files_load_in_zeep(path):
    import zeep

    client = zeep.Client(str(path))
    for op, fault in CLIENT_OPS.items():
        assert client.wsdl.types.get_element(f"{{{ASYNC_C_NS}}}{op}") is not None
        assert client.wsdl.types.get_element(f"{{{ASYNC_C_NS}}}{op}Response") is not None
        assert client.wsdl.types.get_element(f"{{{ASYNC_C_NS}}}{fault}1_{fault}") is not None
    if path == CLIENT_IFACE_WSDL:
        port_type = client.wsdl.port_types.get(f"{{{ASYNC_CI_NS}}}IAsyncChannelClient")
        assert port_type is not None
        assert set(port_type.operations) == set(CLIENT_OPS)


@pytest.mark.parametrize("path, service, port, binding, ops", [
    (ASYNC_WSDL, "AsyncChannelHttpService", "AsyncChannelHttpPort",
     f"{{{ASYNC_I_NS}/Binding}}AsyncChannelHttpBinding", GATEWAY_OPS),
    (CLIENT_WSDL, "AsyncChannelClientHttpService", "AsyncChannelClientHttpPort",
     f"{{{ASYNC_CI_NS}/Binding}}AsyncChannelClientHttpBinding", CLIENT_OPS),
])
def test_zeep_binding_operations_and_soap_action(path, service, port, binding, ops):
    import zeep

    client = zeep.Client(str(path))
    bound = client.wsdl.services[service].ports[port].binding
    assert bound.name.text == binding
    assert set(bound._operations) == set(ops)
    for op, fault in ops.items():
        operation = bound.get(op)
        assert operation.soapaction == ""
        assert list(operation.faults) == [fault]


def test_zeep_builds_a_gateway_request_the_schema_accepts(tmp_path):
    import zeep

    client = zeep.Client(str(ASYNC_WSDL))
    envelope = client.create_message(client.service, "sendMessage", request={
        "messageInfo": {
            "serviceId": "DEMO_EchoAsync",
            "messageType": "REQUEST",
            "messageDate": "2026-11-25T10:00:00+06:00",
            "sender": {"senderId": "demo-consumer", "password": "demo-consumer-pass"},
        },
        "messageData": {"data": "hello"},
    })
    assert_valid(envelope, tmp_path)
    envelope = client.create_message(client.service, "getMessages", request={
        "serviceId": "DEMO_EchoAsync", "amount": 5})
    assert_valid(envelope, tmp_path)


def test_zeep_builds_a_push_request_the_schema_accepts(tmp_path):
    import zeep

    client = zeep.Client(str(CLIENT_WSDL))
    envelope = client.create_message(client.service, "changeMassageStatusNotification", request={
        "notification": {
            "notificationId": "n-1", "messageId": "m-1",
            "notificationDate": "2026-11-25T10:00:08+06:00",
            "messageState": "DELIVERED",
            "status": {"statusCode": "SCSS001", "statusMessage": "delivered",
                       "statusDate": "2026-11-25T10:00:08+06:00"},
        },
        "requestDate": "2026-11-25T10:00:08+06:00",
    })
    assert_valid(envelope, tmp_path)


def _doc(path: Path) -> etree._Element:
    return etree.parse(str(path), _PARSER).getroot()


@pytest.mark.parametrize("iface, binding_file, names", [
    (ASYNC_IFACE_WSDL, ASYNC_WSDL, {
        "iface_tns": ASYNC_I_NS, "iface_name": "IAsyncChannel_N", "port_type": "IAsyncChannel",
        "binding_tns": ASYNC_I_NS + "/Binding", "binding": "AsyncChannelHttpBinding",
        "service": "AsyncChannelHttpService", "port": "AsyncChannelHttpPort",
        "address": "http://localhost:8080/bip-async/", "ops": GATEWAY_OPS, "types": ASYNC_NS,
        "xsd": "../xsd/AsyncChannel-v10-Types.xsd"}),
    (CLIENT_IFACE_WSDL, CLIENT_WSDL, {
        "iface_tns": ASYNC_CI_NS, "iface_name": None, "port_type": "IAsyncChannelClient",
        "binding_tns": ASYNC_CI_NS + "/Binding", "binding": "AsyncChannelClientHttpBinding",
        "service": "AsyncChannelClientHttpService", "port": "AsyncChannelClientHttpPort",
        "address": "http://localhost:8080/asyncChannel", "ops": CLIENT_OPS, "types": ASYNC_C_NS,
        "xsd": "../xsd/AsyncChannel-v10-Client-Types.xsd"}),
])
def test_wsdl_names_messages_and_soap_action(iface, binding_file, names):
    ns = {"wsdl": WSDL_NS, "soap": WSDL_SOAP_NS}
    ops = names["ops"]

    idoc = _doc(iface)
    assert idoc.get("targetNamespace") == names["iface_tns"]
    if names["iface_name"]:
        assert idoc.get("name") == names["iface_name"]
    imports = list(idoc.iter(f"{{{XS_NS}}}import"))
    assert [(i.get("namespace"), i.get("schemaLocation")) for i in imports] == [(names["types"], names["xsd"])]
    assert (WSDL_DIR / names["xsd"]).resolve().is_file()

    pts = idoc.xpath("wsdl:portType", namespaces=ns)
    assert [pt.get("name") for pt in pts] == [names["port_type"]]
    prefix = {v: k for k, v in idoc.nsmap.items()}
    ip, tp = prefix[names["iface_tns"]], prefix[names["types"]]
    for op in pts[0].findall(f"{{{WSDL_NS}}}operation"):
        name = op.get("name")
        fault = ops[name]
        assert op.find(f"{{{WSDL_NS}}}input").get("message") == f"{ip}:{name}RequestMsg"
        assert op.find(f"{{{WSDL_NS}}}output").get("message") == f"{ip}:{name}ResponseMsg"
        f = op.find(f"{{{WSDL_NS}}}fault")
        assert (f.get("name"), f.get("message")) == (fault, f"{ip}:{name}_{fault}Msg")
    assert [op.get("name") for op in pts[0].findall(f"{{{WSDL_NS}}}operation")] == list(ops)

    messages = {m.get("name"): m.find(f"{{{WSDL_NS}}}part").get("element")
                for m in idoc.xpath("wsdl:message", namespaces=ns)}
    expected = {}
    for op, fault in ops.items():
        expected[f"{op}RequestMsg"] = f"{tp}:{op}"
        expected[f"{op}ResponseMsg"] = f"{tp}:{op}Response"
        expected[f"{op}_{fault}Msg"] = f"{tp}:{fault}1_{fault}"
    assert messages == expected

    bdoc = _doc(binding_file)
    assert bdoc.get("targetNamespace") == names["binding_tns"]
    assert bdoc.find(f"{{{WSDL_NS}}}import").get("location") == iface.name
    bindings = bdoc.xpath("wsdl:binding", namespaces=ns)
    assert [b.get("name") for b in bindings] == [names["binding"]]
    assert bindings[0].get("type").endswith(":" + names["port_type"])
    assert bdoc.xpath("wsdl:binding/soap:binding/@style", namespaces=ns) == ["document"]
    for op, fault in ops.items():
        bop = bindings[0].xpath(f"wsdl:operation[@name='{op}']", namespaces=ns)
        assert len(bop) == 1
        assert bop[0].xpath("soap:operation/@soapAction", namespaces=ns) == [""]
        assert bop[0].xpath("wsdl:input/soap:body/@use", namespaces=ns) == ["literal"]
        assert bop[0].xpath("wsdl:output/soap:body/@use", namespaces=ns) == ["literal"]
        assert bop[0].xpath("wsdl:fault/soap:fault/@name", namespaces=ns) == [fault]
    address = bdoc.xpath(f"wsdl:service[@name='{names['service']}']/wsdl:port[@name='{names['port']}']"
                         "/soap:address/@location", namespaces=ns)
    assert address == [names["address"]]
