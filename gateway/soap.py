"""Building and editing SOAP 1.1 messages of the SyncChannel: faults, sessionId, serialisation."""
from __future__ import annotations

from datetime import datetime, timezone

from lxml import etree

from gateway import contract as c
from gateway.faults import Fault

NSMAP = {"soap": c.SOAP_NS}


def serialize(tree_or_element) -> bytes:
    return etree.tostring(tree_or_element, xml_declaration=True, encoding="UTF-8")


def now_iso() -> str:
    """xs:dateTime of now, with the local offset as senders write it."""
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="milliseconds")


def add_text(parent: etree._Element, tag: str, value: str | None) -> None:
    """An unqualified child with text; an optional element that has no value is left out."""
    if value is not None:
        etree.SubElement(parent, tag).text = value


def _error_info(parent: etree._Element, tag: str, fault: Fault, session_id: str | None) -> etree._Element:
    info = etree.SubElement(parent, tag)
    etree.SubElement(info, "errorCode").text = fault.code
    etree.SubElement(info, "errorMessage").text = fault.message
    if fault.data:
        etree.SubElement(info, "errorData").text = fault.data
    etree.SubElement(info, "errorDate").text = fault.at.isoformat(timespec="milliseconds")
    if fault.sub is not None:
        _error_info(info, "subError", fault.sub, None)
    if session_id:
        etree.SubElement(info, "sessionId").text = session_id
    return info


def fault_envelope(fault: Fault, session_id: str | None, element: str = c.SYNC_FAULT) -> bytes:
    """soap:Fault with the catalogue entry in detail/<the operation's fault element> (ErrorInfo)."""
    envelope = etree.Element(c.ENVELOPE, nsmap=NSMAP)
    body = etree.SubElement(envelope, c.BODY)
    soap_fault = etree.SubElement(body, c.FAULT)
    etree.SubElement(soap_fault, "faultcode").text = f"soap:{fault.spec.soap_faultcode}"
    etree.SubElement(soap_fault, "faultstring").text = f"{fault.code}: {fault.spec.en}"
    detail = etree.SubElement(soap_fault, "detail")
    _error_info(detail, element, fault, session_id)
    return serialize(envelope)


def _set_last(parent: etree._Element, tag: str, value: str) -> None:
    for old in parent.findall(tag):
        parent.remove(old)
    etree.SubElement(parent, tag).text = value


def drop_transport_signature(tree: etree._ElementTree) -> None:
    """A hop's WS-Security header does not survive the gateway's edits: it is replaced or removed."""
    header = tree.getroot().find(c.HEADER)
    if header is not None:
        for security in header.findall(f"{{{c.WSSE_NS}}}Security"):
            header.remove(security)


def prepare_forward(operation: etree._Element, info_path: str, session_id: str) -> None:
    """The request as the provider sees it: the gateway's sessionId set, the caller's password removed."""
    info = operation.find(info_path)
    sender = info.find("sender")
    for password in sender.findall("password"):
        sender.remove(password)
    # sessionId is the last element of SyncMessageInfo.
    _set_last(info, "sessionId", session_id)


def stamp_answer(operation: etree._Element, info_path: str, fault_element: str, session_id: str) -> None:
    """Set the gateway's sessionId in the provider's response or fault before it goes back."""
    if operation.tag == c.FAULT:
        info = operation.find(f"detail/{fault_element}")
        if info is not None:
            _set_last(info, "sessionId", session_id)
        return
    _set_last(operation.find(info_path), "sessionId", session_id)
