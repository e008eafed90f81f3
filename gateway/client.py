"""Public ShEP SyncChannel client pieces: build `SendMessage`, read answers, send over HTTP.

Used by `shep send`, the simulators and the tests; endpoints and simulators use this module,
never the gateway's pipeline.
"""
from __future__ import annotations

import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from lxml import etree

from gateway import contract as c
from gateway.soap import add_text, now_iso, serialize

STYLES = ("inline", "typed", "escaped")


def _put_data(parent: etree._Element, payload: etree._Element | None, style: str,
              xsi_type: str | None = None) -> None:
    """`data` in one of the three contract styles: untyped inline, typed inline (xsi:type), escaped text."""
    if payload is None:
        return
    if style == "inline":
        data = etree.SubElement(parent, "data")
        data.append(payload)
    elif style == "escaped":
        data = etree.SubElement(parent, "data", nsmap={"xs": c.XS_NS, "xsi": c.XSI_NS})
        data.set(c.XSI_TYPE, "xs:string")
        data.text = etree.tostring(payload, encoding="unicode")
    elif style == "typed":
        qname = etree.QName(xsi_type or payload.tag)
        data = etree.SubElement(parent, "data", nsmap={"t": qname.namespace, "xsi": c.XSI_NS})
        data.set(c.XSI_TYPE, f"t:{qname.localname}")
        data.text = payload.text
        for child in payload:
            data.append(child)
    else:
        raise ValueError(f"style must be one of {', '.join(STYLES)}")


def build_send_message(*, service_id: str, sender_id: str, password: str | None = None,
                       payload: etree._Element | None = None, style: str = "inline",
                       xsi_type: str | None = None, message_id: str | None = None,
                       correlation_id: str | None = None, route_id: str | None = None,
                       message_date: str | None = None,
                       properties: dict[str, str] | None = None) -> bytes:
    """A SyncChannel `SendMessage` envelope; `xsi_type` ("{ns}Type") is used by the typed style."""
    envelope = etree.Element(c.ENVELOPE, nsmap={"soap": c.SOAP_NS})
    etree.SubElement(envelope, c.HEADER)
    body = etree.SubElement(envelope, c.BODY)
    send = etree.SubElement(body, c.SEND_MESSAGE, nsmap={"sync": c.SYNC_NS})
    request = etree.SubElement(send, "request")
    info = etree.SubElement(request, "requestInfo")
    add_text(info, "messageId", message_id or str(uuid.uuid4()))
    add_text(info, "correlationId", correlation_id)
    add_text(info, "serviceId", service_id)
    add_text(info, "messageDate", message_date or now_iso())
    add_text(info, "routeId", route_id)
    sender = etree.SubElement(info, "sender")
    add_text(sender, "senderId", sender_id)
    add_text(sender, "password", password)
    for key, value in (properties or {}).items():
        prop = etree.SubElement(info, "properties")
        add_text(prop, "key", key)
        add_text(prop, "value", value)
    _put_data(etree.SubElement(request, "requestData"), payload, style, xsi_type)
    return serialize(envelope)


def build_send_message_response(*, message_id: str, correlation_id: str | None = None,
                                status_code: str = c.SUCCESS_STATUS,
                                status_message: str = "Message has been processed successfully",
                                session_id: str | None = None, payload: etree._Element | None = None,
                                style: str = "inline", xsi_type: str | None = None) -> bytes:
    """A provider's `SendMessageResponse` envelope."""
    envelope = etree.Element(c.ENVELOPE, nsmap={"soap": c.SOAP_NS})
    body = etree.SubElement(envelope, c.BODY)
    answer = etree.SubElement(body, c.SEND_MESSAGE_RESPONSE, nsmap={"sync": c.SYNC_NS})
    response = etree.SubElement(answer, "response")
    info = etree.SubElement(response, "responseInfo")
    add_text(info, "messageId", message_id)
    add_text(info, "correlationId", correlation_id)
    add_text(info, "responseDate", now_iso())
    status = etree.SubElement(info, "status")
    add_text(status, "code", status_code)
    add_text(status, "message", status_message)
    add_text(info, "sessionId", session_id)
    _put_data(etree.SubElement(response, "responseData"), payload, style, xsi_type)
    return serialize(envelope)



def build_send_message_fault(*, code: str, message: str, summary: str, detail: str | None = None,
                             session_id: str | None = None, faultcode: str = "soap:Client") -> tuple[int, bytes]:
    """A provider's SOAP fault for `SendMessage` (HTTP 500): the contract's fault element in `detail`, ErrorInfo
    with the provider's own `code`; `faultcode` soap:Client when the caller's message is at fault."""
    envelope = etree.Element(c.ENVELOPE, nsmap={"soap": c.SOAP_NS})
    fault = etree.SubElement(etree.SubElement(envelope, c.BODY), c.FAULT)
    add_text(fault, "faultcode", faultcode)
    add_text(fault, "faultstring", f"{code}: {summary}")
    info = etree.SubElement(etree.SubElement(fault, "detail"), c.SYNC_FAULT, nsmap={"sync": c.SYNC_NS})
    add_text(info, "errorCode", code)
    add_text(info, "errorMessage", message)
    add_text(info, "errorData", detail)
    add_text(info, "errorDate", now_iso())
    add_text(info, "sessionId", session_id)
    return 500, serialize(envelope)

@dataclass
class SyncReply:
    """What came back: either a response (status, data) or a fault (ErrorInfo fields)."""
    http_status: int
    raw: bytes
    fault: dict | None = None
    status_code: str | None = None
    status_message: str | None = None
    session_id: str | None = None
    message_id: str | None = None
    data: etree._Element | None = None

    @property
    def ok(self) -> bool:
        return self.fault is None


def _error_info(el: etree._Element) -> dict:
    info = {child.tag: child.text for child in el if isinstance(child.tag, str) and child.tag != "subError"}
    sub = el.find("subError")
    if sub is not None:
        info["subError"] = _error_info(sub)
    return info


def read_reply(http_status: int, raw: bytes) -> SyncReply:
    """Decode a gateway answer; raises ValueError when it is not a SyncChannel answer at all."""
    try:
        root = c.PARSER.parse(raw).getroot()
    except (ValueError, etree.XMLSyntaxError) as exc:
        raise ValueError(f"HTTP {http_status}, the answer is not XML: {exc}") from None
    body = root.find(c.BODY)
    elements = [el for el in body if isinstance(el.tag, str)] if body is not None else []
    operation = elements[0] if elements else None
    if operation is not None and operation.tag == c.FAULT:
        # The operation's own fault element (sync or async): ErrorInfo either way.
        details = [el for el in operation.find("detail") if isinstance(el.tag, str)] \
            if operation.find("detail") is not None else []
        fault = _error_info(details[0]) if details else {}
        fault.setdefault("faultcode", operation.findtext("faultcode"))
        fault.setdefault("faultstring", operation.findtext("faultstring"))
        return SyncReply(http_status, raw, fault=fault, session_id=fault.get("sessionId"))
    if operation is None or operation.tag != c.SEND_MESSAGE_RESPONSE:
        raise ValueError(f"HTTP {http_status}, the answer is neither SendMessageResponse nor a SOAP fault")
    info = operation.find("response/responseInfo")
    return SyncReply(http_status, raw, status_code=info.findtext("status/code"),
                     status_message=info.findtext("status/message"), session_id=info.findtext("sessionId"),
                     message_id=info.findtext("messageId"), data=operation.find("response/responseData/data"))


def load_credentials(*, cert: str | None = None, key: str | None = None, p12: str | None = None,
                     password: str | None = None):
    """(private key, certificate) from PEM files or a PKCS#12 container (as the national CA issues them)."""
    from pathlib import Path

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import pkcs12

    from gateway.security.keyfiles import load_private_key

    if p12:
        private, certificate, _ = pkcs12.load_key_and_certificates(
            Path(p12).read_bytes(), password.encode() if password else None)
        if private is None or certificate is None:
            raise ValueError(f"{p12} holds no key and certificate")
        return private, certificate
    if not (cert and key):
        raise ValueError("give --cert and --key, or --p12")
    return (load_private_key(Path(key).read_bytes(), password.encode() if password else None),
            x509.load_pem_x509_certificate(Path(cert).read_bytes()))


def sign_payload(payload: etree._Element, key, cert) -> etree._Element:
    """The business document with its enveloped EDS (ЭЦП) as the last child (contract §9)."""
    from gateway.security.xmldsig import sign_document

    return sign_document(payload, key, cert)


def sign_request(raw: bytes, key, cert) -> bytes:
    """WS-Security transport signature in the layout ShEP clients produce (KeyIdentifier)."""
    from gateway.security.wss import sign_envelope

    return sign_envelope(raw, key, cert, key_info="keyidentifier")


def verify_reply_signature(raw: bytes, gateway_cert) -> str:
    """Verify the gateway's signature on an answer; returns the signer's subject, raises SignatureError."""

    from gateway.security.algorithms import AlgorithmPolicy
    from gateway.security.issuerserial import CertificateIndex
    from gateway.security.wss import verify_envelope

    verified = verify_envelope(raw, policy=AlgorithmPolicy(), now=datetime.now(timezone.utc),
                               certificates=CertificateIndex([gateway_cert]).find)
    if verified.certificate != gateway_cert:
        from gateway.security.algorithms import SignatureError
        raise SignatureError("SIGNATURE_MALFORMED", "the answer is signed by another certificate")
    return _who(verified.certificate)


def _who(cert) -> str:
    """A certificate as people read it: CN, and the IIN / BIN from the subject."""
    from cryptography.x509.oid import NameOID

    from gateway.security.identity import subject_bin, subject_iin

    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    ids = [f"{label} {value}" for label, value in (("IIN", subject_iin(cert)), ("BIN", subject_bin(cert))) if value]
    return f"{names[0].value if names else cert.subject.rfc4514_string()} ({', '.join(ids) or 'no IIN/BIN'})"


def fetch(url: str, timeout: float = 30) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def post(url: str, body: bytes, timeout: float = 60) -> tuple[int, bytes]:
    """A blocking POST for command-line use (the server side never blocks: it uses twisted Agent)."""
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


# Public for the AsyncChannel client, which reads ErrorInfo in status notifications too.
read_error_info = _error_info
