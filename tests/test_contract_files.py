"""The contract files (xsd/, wsdl/) and the sample messages in tests/data/ agree with each other.

Every sample is validated by each validator of tests/schema_oracle.py (lxml, xmlschema, and the `xmllint` command
where installed) through the one driver schema xsd/shep-sync.xsd; broken variants must be rejected by each.
"""
from __future__ import annotations

from pathlib import Path

from lxml import etree

from tests.schema_oracle import DATA, PARSER, SchemaOracle, load, unq

ROOT = Path(__file__).resolve().parent.parent
XSD_DIR = ROOT / "xsd"
WSDL_DIR = ROOT / "wsdl"
DRIVER = XSD_DIR / "shep-sync.xsd"
SYNC_WSDL = WSDL_DIR / "SyncChannel-v10.wsdl"

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SYNC_NS = "http://bip.bee.kz/SyncChannel/v10/Types"
XS_NS = "http://www.w3.org/2001/XMLSchema"
WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
WSDL_SOAP_NS = "http://schemas.xmlsoap.org/wsdl/soap/"
WSSE_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"

_ORACLE = SchemaOracle(DRIVER)
_PARSER = PARSER
assert_valid = _ORACLE.assert_valid
assert_invalid = _ORACLE.assert_invalid


def request_info(doc: etree._ElementTree) -> etree._Element:
    return unq(doc.getroot(), "request/requestInfo")


# ---------------------------------------------------------------- the schema set itself

def test_all_schemas_compile_on_their_own():
    for path in sorted(XSD_DIR.glob("*.xsd")):
        etree.XMLSchema(etree.parse(str(path), _PARSER))


def test_schemas_use_relative_locations_and_no_element_form_default():
    for path in sorted(XSD_DIR.glob("*.xsd")):
        root = etree.parse(str(path), _PARSER).getroot()
        assert root.get("elementFormDefault") is None, path.name
        for imp in root.iter(f"{{{XS_NS}}}import", f"{{{XS_NS}}}include"):
            loc = imp.get("schemaLocation")
            assert loc and "/" not in loc and (XSD_DIR / loc).is_file(), (path.name, loc)


# ---------------------------------------------------------------- samples validate

def test_samples_have_expected_shape():
    req = load("sync-request.xml").getroot()
    assert req.prefix == "soap"
    assert req.find(f"{{{SOAP_NS}}}Body/{{{SYNC_NS}}}SendMessage/request") is not None
    assert unq(req, "requestInfo/serviceId").text == "DEMO_Echo"
    data = unq(req, "requestData/data")
    assert data[0].tag == "{urn:shep-emulator:demo:echo}EchoRequest"

    resp = load("sync-response.xml").getroot()
    assert unq(resp, "responseInfo/status/code").text == "SCSS001"
    assert unq(resp, "responseInfo/sessionId").text == "{f0774397-3d61-4a44-9d0b-1a2c3b4d5e6f}"

    fault = load("sync-fault.xml").getroot()
    detail = fault.find(f"{{{SOAP_NS}}}Body/{{{SOAP_NS}}}Fault/detail")
    info = detail.find(f"{{{SYNC_NS}}}SendMessageFault1_SendMessageFault")
    assert info is not None and info.find("subError/errorCode") is not None


# ---------------------------------------------------------------- broken variants are rejected

def test_rejects_request_without_message_id(tmp_path):
    doc = load("sync-request.xml")
    info = request_info(doc)
    info.remove(info.find("messageId"))
    assert_invalid(doc, tmp_path, "serviceId")


def test_rejects_non_guid_session_id(tmp_path):
    doc = load("sync-request.xml")
    sid = etree.SubElement(request_info(doc), "sessionId")
    sid.text = "abc"
    assert_invalid(doc, tmp_path, "sessionId")


def test_rejects_non_guid_session_id_in_response(tmp_path):
    doc = load("sync-response.xml")
    unq(doc.getroot(), "responseInfo/sessionId").text = "f0774397-3d61-4a44-9d0b-1a2c3b4d5e6f"
    assert_invalid(doc, tmp_path, "sessionId")


def test_rejects_children_qualified_in_types_namespace(tmp_path):
    """The same message written without xmlns="" : children fall into the sync namespace."""
    raw = (DATA / "sync-request.xml").read_bytes().replace(b'<request xmlns="">', b"<request>")
    raw = raw.replace(b'<sync:SendMessage xmlns:sync="', b'<SendMessage xmlns="')
    raw = raw.replace(b"</sync:SendMessage>", b"</SendMessage>")
    doc = etree.ElementTree(etree.fromstring(raw, _PARSER))
    assert doc.getroot().find(f".//{{{SYNC_NS}}}request") is not None
    assert_invalid(doc, tmp_path, "request")


def test_rejects_property_key_longer_than_30(tmp_path):
    doc = load("sync-request.xml")
    unq(request_info(doc), "properties/key").text = "K" * 31
    assert_invalid(doc, tmp_path, "key")


def test_accepts_property_key_of_30(tmp_path):
    doc = load("sync-request.xml")
    unq(request_info(doc), "properties/key").text = "K" * 30
    assert_valid(doc, tmp_path)


def test_rejects_elements_out_of_order(tmp_path):
    doc = load("sync-request.xml")
    info = request_info(doc)
    service = info.find("serviceId")
    info.remove(service)
    info.insert(0, service)
    assert_invalid(doc, tmp_path)


def test_rejects_status_message_longer_than_250(tmp_path):
    doc = load("sync-response.xml")
    unq(doc.getroot(), "responseInfo/status/message").text = "x" * 251
    assert_invalid(doc, tmp_path, "message")


def test_rejects_fault_detail_without_error_date(tmp_path):
    doc = load("sync-fault.xml")
    info = doc.getroot().find(f".//{{{SYNC_NS}}}SendMessageFault1_SendMessageFault")
    info.remove(info.find("errorDate"))
    assert_invalid(doc, tmp_path, "errorDate")


def test_rejects_bad_sub_error(tmp_path):
    doc = load("sync-fault.xml")
    sub = doc.getroot().find(f".//{{{SYNC_NS}}}SendMessageFault1_SendMessageFault/subError")
    sub.remove(sub.find("errorCode"))
    assert_invalid(doc, tmp_path, "errorMessage")


def test_rejects_fault_without_faultstring(tmp_path):
    doc = load("sync-fault.xml")
    fault = doc.getroot().find(f".//{{{SOAP_NS}}}Fault")
    fault.remove(fault.find("faultstring"))
    assert_invalid(doc, tmp_path)


# ---------------------------------------------------------------- accepted variations (contract §6)

def test_accepts_nil_request_and_other_envelope_prefix(tmp_path):
    raw = (DATA / "sync-request.xml").read_bytes().replace(b"soap:", b"soapenv:").replace(
        b"xmlns:soap=", b"xmlns:soapenv=")
    doc = etree.ElementTree(etree.fromstring(raw, _PARSER))
    assert_valid(doc, tmp_path)
    send = doc.getroot().find(f".//{{{SYNC_NS}}}SendMessage")
    req = send.find("request")
    send.remove(req)
    nil = etree.SubElement(send, "request", nsmap={"xsi": "http://www.w3.org/2001/XMLSchema-instance"})
    nil.set("{http://www.w3.org/2001/XMLSchema-instance}nil", "true")
    assert_valid(doc, tmp_path)


def test_accepts_escaped_string_payload_and_empty_optionals(tmp_path):
    doc = load("sync-request.xml")
    info = request_info(doc)
    corr = etree.Element("correlationId")
    info.insert(1, corr)  # <correlationId/>
    route = etree.Element("routeId")
    info.insert(4, route)  # <routeId/>
    data = unq(doc.getroot(), "requestData/data")
    xsi = "http://www.w3.org/2001/XMLSchema-instance"
    # <data xsi:type="xs:string"> holding an entity-escaped XML document
    new = etree.Element("data", nsmap={"xs": XS_NS, "xsi": xsi})
    new.set(f"{{{xsi}}}type", "xs:string")
    new.text = '<?xml version="1.0"?><r xmlns="urn:x"><a>1</a></r>'
    data.getparent().replace(data, new)
    assert_valid(doc, tmp_path)


def test_accepts_plain_id_on_body(tmp_path):
    doc = load("sync-request.xml")
    doc.getroot().find(f"{{{SOAP_NS}}}Body").set("Id", "body-1")
    assert_valid(doc, tmp_path)


def test_rejects_empty_data_wrapper_missing(tmp_path):
    doc = load("sync-request.xml")
    req = unq(doc.getroot(), "request")
    req.remove(req.find("requestData"))
    assert_invalid(doc, tmp_path, "requestData")


# ---------------------------------------------------------------- WS-Security layouts (contract §8, §9)

B64 = "QUJD" * 22  # 88 base64 characters, the size of a GOST 34.310 signature value
X509_V3 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
BASE64 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
GOST_SIG = "http://www.w3.org/2001/04/xmldsig-more#gost34310-gost34311"
GOST_DIG = "http://www.w3.org/2001/04/xmldsig-more#gost34311"


def _signed_info(uri: str, transforms: list[str], c14n: str = EXC_C14N) -> str:
    tr = "".join(f'<ds:Transform Algorithm="{t}"/>' for t in transforms)
    return (f'<ds:SignedInfo><ds:CanonicalizationMethod Algorithm="{c14n}">'
            f'<ec:InclusiveNamespaces xmlns:ec="{EXC_C14N}" PrefixList="soap"/>'
            f'</ds:CanonicalizationMethod>'
            f'<ds:SignatureMethod Algorithm="{GOST_SIG}"/>'
            f'<ds:Reference URI="{uri}"><ds:Transforms>{tr}</ds:Transforms>'
            f'<ds:DigestMethod Algorithm="{GOST_DIG}"/><ds:DigestValue>{B64[:44]}</ds:DigestValue>'
            f'</ds:Reference></ds:SignedInfo>')


def _signed_request(key_info: str, body_id: str) -> etree._ElementTree:
    doc = load("sync-request.xml")
    root = doc.getroot()
    header = root.find(f"{{{SOAP_NS}}}Header")
    security = etree.fromstring(
        f'<wsse:Security xmlns:wsse="{WSSE_NS}" xmlns:wsu="{WSU_NS}" xmlns:soap="{SOAP_NS}" '
        f'xmlns:ds="{DS_NS}" soap:mustUnderstand="1">'
        f'<ds:Signature Id="SIG-1">{_signed_info("#" + body_id, [EXC_C14N])}'
        f'<ds:SignatureValue>{B64}</ds:SignatureValue>{key_info}</ds:Signature>'
        f'</wsse:Security>')
    header.append(security)
    root.find(f"{{{SOAP_NS}}}Body").set(f"{{{WSU_NS}}}Id", body_id)
    return doc


CLIENT_KEY_INFO = (
    f'<ds:KeyInfo><wsse:SecurityTokenReference>'
    f'<wsse:KeyIdentifier ValueType="{X509_V3}" EncodingType="{BASE64}">{B64}</wsse:KeyIdentifier>'
    f'</wsse:SecurityTokenReference></ds:KeyInfo>')

GATEWAY_KEY_INFO = (
    '<ds:KeyInfo Id="KI-1"><wsse:SecurityTokenReference wsu:Id="STR-1"><ds:X509Data>'
    '<ds:X509IssuerSerial><ds:X509IssuerName>CN=ҰЛТТЫҚ КУӘЛАНДЫРУШЫ ОРТАЛЫҚ (GOST),C=KZ</ds:X509IssuerName>'
    '<ds:X509SerialNumber>'
    '1096074281460298349573283510948302848139210562917'
    '</ds:X509SerialNumber></ds:X509IssuerSerial>'
    '</ds:X509Data></wsse:SecurityTokenReference></ds:KeyInfo>')


def test_accepts_client_wsse_layout(tmp_path):
    assert_valid(_signed_request(CLIENT_KEY_INFO, "id-6f1c2d3e-4a5b-4c6d-8e7f-90a1b2c3d4e5"), tmp_path)


def test_accepts_gateway_wss4j_layout(tmp_path):
    assert_valid(_signed_request(GATEWAY_KEY_INFO, "id-0a1b2c3d4e5f"), tmp_path)


def test_header_content_is_validated(tmp_path):
    doc = _signed_request(CLIENT_KEY_INFO, "id-1")
    value = doc.getroot().find(f".//{{{DS_NS}}}SignatureValue")
    value.getparent().remove(value)
    assert_invalid(doc, tmp_path, "KeyInfo")


def test_rejects_bad_must_understand_and_wsu_id(tmp_path):
    doc = _signed_request(CLIENT_KEY_INFO, "id-1")
    doc.getroot().find(f".//{{{WSSE_NS}}}Security").set(f"{{{SOAP_NS}}}mustUnderstand", "true")
    assert_invalid(doc, tmp_path, "mustUnderstand")
    doc = _signed_request(CLIENT_KEY_INFO, "id-1")
    doc.getroot().find(f"{{{SOAP_NS}}}Body").set(f"{{{WSU_NS}}}Id", "1-not-an-ncname")
    assert_invalid(doc, tmp_path, "Id")


def test_accepts_enveloped_payload_signature_in_data(tmp_path):
    doc = load("sync-response.xml")
    payload = unq(doc.getroot(), "responseData/data")[0]
    c14n = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
    sig = etree.fromstring(
        f'<ds:Signature xmlns:ds="{DS_NS}">'
        + _signed_info("", ["http://www.w3.org/2000/09/xmldsig#enveloped-signature", c14n + "#WithComments"],
                       c14n=c14n)
        + f'<ds:SignatureValue>{B64}</ds:SignatureValue>'
        f'<ds:KeyInfo><ds:X509Data><ds:X509Certificate>{B64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>'
        f'</ds:Signature>')
    payload.append(sig)
    assert_valid(doc, tmp_path)
    # the signature inside data is declared, hence validated too
    sig.remove(sig.find(f"{{{DS_NS}}}SignedInfo"))
    assert_invalid(doc, tmp_path, "SignatureValue")


# ---------------------------------------------------------------- the WSDL

def test_wsdl_loads_in_zeep():
    import zeep

    client = zeep.Client(str(SYNC_WSDL))
    service = client.wsdl.services["ISyncChannelHttpService"]
    port = service.ports["SyncChannelHttpPort"]
    binding = port.binding
    assert binding.name.text == "{http://bip.bee.kz/SyncChannel/v10/Interfaces/Binding2}SyncChannelHttpBinding"
    operation = binding.get("SendMessage")
    assert operation.soapaction == ""
    assert "sendMessageFault" in operation.faults
    assert client.wsdl.types.get_element(f"{{{SYNC_NS}}}SendMessage") is not None
    assert client.wsdl.types.get_element(f"{{{SYNC_NS}}}SendMessageResponse") is not None
    assert client.wsdl.types.get_element(f"{{{SYNC_NS}}}SendMessageFault1_SendMessageFault") is not None


def test_zeep_builds_a_request_the_schema_accepts(tmp_path):
    import zeep

    client = zeep.Client(str(SYNC_WSDL))
    envelope = client.create_message(client.service, "SendMessage", request={
        "requestInfo": {
            "messageId": "6f1c2d3e-4a5b-4c6d-8e7f-90a1b2c3d4e5",
            "serviceId": "DEMO_Echo",
            "messageDate": "2026-11-25T10:00:00+06:00",
            "sender": {"senderId": "demo-consumer", "password": "demo-consumer-pass"},
            "properties": [{"key": "CONNECTOR_CLIENT", "value": "true"}],
        },
        "requestData": {},
    })
    assert_valid(envelope, tmp_path)


def _wsdl_docs() -> list[etree._Element]:
    return [etree.parse(str(p), _PARSER).getroot() for p in sorted(WSDL_DIR.glob("SyncChannel-*.wsdl"))]


def test_wsdl_names_and_soap_action():
    ns = {"wsdl": WSDL_NS, "soap": WSDL_SOAP_NS}
    main = etree.parse(str(SYNC_WSDL), _PARSER).getroot()
    assert main.get("targetNamespace") == "http://bip.bee.kz/SyncChannel/v10/Interfaces/Binding2"
    ops = main.xpath("wsdl:binding[@name='SyncChannelHttpBinding']/wsdl:operation[@name='SendMessage']",
                     namespaces=ns)
    assert len(ops) == 1
    actions = ops[0].xpath("soap:operation/@soapAction", namespaces=ns)
    assert actions == [""]
    assert main.xpath("wsdl:binding/soap:binding/@style", namespaces=ns) == ["document"]
    assert ops[0].xpath("wsdl:fault/soap:fault/@name", namespaces=ns) == ["sendMessageFault"]
    assert main.xpath("wsdl:service[@name='ISyncChannelHttpService']/wsdl:port[@name='SyncChannelHttpPort']"
                      "/soap:address/@location", namespaces=ns) == ["http://localhost:8080/bip-sync/"]

    port_types = [pt for doc in _wsdl_docs() for pt in doc.xpath("wsdl:portType", namespaces=ns)]
    assert len(port_types) == 1
    pt = port_types[0]
    assert pt.getparent().get("targetNamespace") == "http://bip.bee.kz/SyncChannel/v10/Interfaces"
    assert pt.get("name") == "ISyncChannel"
    op = pt.find(f"{{{WSDL_NS}}}operation")
    assert op.get("name") == "SendMessage"
    assert op.find(f"{{{WSDL_NS}}}input").get("name") == "SendMessageRequest"
    assert op.find(f"{{{WSDL_NS}}}output").get("name") == "SendMessageResponse"
    assert op.find(f"{{{WSDL_NS}}}fault").get("name") == "sendMessageFault"

    parts = {m.get("name"): (m[0].get("name"), m[0].get("element"))
             for doc in _wsdl_docs() for m in doc.xpath("wsdl:message", namespaces=ns)}
    assert {k: v[0] for k, v in parts.items()} == {
        "SendMessageRequestMsg": "SendMessageParameters",
        "SendMessageResponseMsg": "SendMessageResult",
        "SendMessage_sendMessageFaultMsg": "sendMessageFault",
    }


def test_wsdl_schema_locations_point_at_xsd_dir():
    for doc in _wsdl_docs():
        for imp in doc.iter(f"{{{XS_NS}}}import"):
            loc = imp.get("schemaLocation")
            assert loc.startswith("../xsd/") and (WSDL_DIR / loc).resolve().is_file(), loc
            assert imp.get("namespace")
