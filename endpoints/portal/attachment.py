"""The PHC attachment documents the portal sends and reads (xsd/services/attachment/attachment.xsd):
AttachmentRequest out; Registration, AttachmentCoupon and AttachmentRefusal in."""
from __future__ import annotations

from datetime import datetime

from lxml import etree

from gateway import contract as c

NS = "urn:shep-emulator:phc-attachment:v1"
REQUEST = f"{{{NS}}}AttachmentRequest"
REGISTRATION = f"{{{NS}}}Registration"
COUPON = f"{{{NS}}}AttachmentCoupon"
REFUSAL = f"{{{NS}}}AttachmentRefusal"
REASONS = ("FREE_CHOICE", "RESIDENCE_CHANGE", "CAMPAIGN", "NEWBORN")
ADDRESS_FIELDS = ("region", "district", "city", "street", "building", "flat")


def _add(parent: etree._Element, tag: str, value) -> None:
    if value not in (None, ""):
        etree.SubElement(parent, tag).text = str(value)


def build_request(*, number: str, submitted_at: datetime, applicant: dict, representative_iin: str | None,
                  clinic_bin: str, district: str | None, reason: str) -> etree._Element:
    """An AttachmentRequest of diagram 1 (channel PORTAL); children unqualified, in the schema's order."""
    root = etree.Element(REQUEST, nsmap={"att": NS})
    _add(root, "requestNumber", number)
    _add(root, "submittedAt", submitted_at.isoformat(timespec="seconds"))
    _add(root, "channel", "PORTAL")
    person = etree.SubElement(root, "applicant")
    for name in ("iin", "surname", "name", "patronymic"):
        _add(person, name, applicant.get(name))
    _add(person, "birthDate", applicant["birth_date"])
    if applicant.get("address"):
        address = etree.SubElement(person, "address")
        for name in ADDRESS_FIELDS:
            _add(address, name, applicant["address"].get(name))
    _add(root, "representativeIin", representative_iin)
    _add(root, "clinicBin", clinic_bin)
    _add(root, "districtNumber", district)
    _add(root, "reason", reason)
    return root


def standalone(payload: etree._Element) -> bytes:
    """The received business document as its signer produced it: declarations inherited from the
    envelope are not part of what was signed (as the gateway's own payload check reads it)."""
    document = c.PARSER.parse(etree.tostring(payload)).getroot()
    etree.cleanup_namespaces(document)
    return etree.tostring(document)


def _children(element: etree._Element | None) -> dict:
    """Leaf children as a dict of text; nested elements are read by the callers."""
    if element is None:
        return {}
    return {child.tag: child.text for child in element if isinstance(child.tag, str) and len(child) == 0
            and not child.tag.startswith("{")}


def read_registration(root: etree._Element) -> dict:
    return _children(root)


def read_coupon(root: etree._Element) -> dict:
    coupon = _children(root)
    person = root.find("person")
    coupon["person"] = _children(person)
    if person is not None and person.find("address") is not None:
        coupon["person"]["address"] = _children(person.find("address"))
    coupon["clinic"] = _children(root.find("clinic"))
    coupon["district"] = _children(root.find("district"))
    return coupon


def read_refusal(root: etree._Element) -> dict:
    refusal = _children(root)
    refusal["reasons"] = [{"code": reason.findtext("code"), "text_ru": reason.findtext("textRu"),
                           "text_kk": reason.findtext("textKk")} for reason in root.findall("reason")]
    return refusal
