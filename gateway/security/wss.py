"""The WS-Security transport signature (contract §8): sign a SOAP 1.1 envelope, verify one.

Verification proves which certificate signed the envelope's one soap:Body (and wsu:Timestamp);
trust, validity and revocation of that certificate are the caller's checks (`certs`).
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

from cryptography import x509
from lxml import etree

from gateway import contract as c
from gateway import soap
from gateway.security.algorithms import (EXC_C14N, AlgorithmPolicy, SignatureError, canonicalize, digest,
                                         in_scope_prefixes, load_certificate, malformed, methods_for_key)
from gateway.security.gost.x509 import public_key as certificate_key
from gateway.security.issuerserial import CertificateIndex, NameKey, parse_name
from gateway.security.xmldsig import (KEY_INFO, SIGNATURE, X509_CERTIFICATE, X509_DATA, ParsedSignature,
                                      der_base64, new_signature, read_signature, seal)

SECURITY = c.q(c.WSSE_NS, "Security")
BINARY_SECURITY_TOKEN = c.q(c.WSSE_NS, "BinarySecurityToken")
TOKEN_REFERENCE = c.q(c.WSSE_NS, "SecurityTokenReference")
KEY_IDENTIFIER = c.q(c.WSSE_NS, "KeyIdentifier")
WSSE_REFERENCE = c.q(c.WSSE_NS, "Reference")
TIMESTAMP = c.q(c.WSU_NS, "Timestamp")
CREATED = c.q(c.WSU_NS, "Created")
EXPIRES = c.q(c.WSU_NS, "Expires")
WSU_ID = c.q(c.WSU_NS, "Id")
X509_ISSUER_SERIAL = c.q(c.DS_NS, "X509IssuerSerial")
X509_ISSUER_NAME = c.q(c.DS_NS, "X509IssuerName")
X509_SERIAL_NUMBER = c.q(c.DS_NS, "X509SerialNumber")
X509V3 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
BASE64_BINARY = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
KEY_INFO_STYLES = ("keyidentifier", "bst", "issuerserial")

# Setting wsu:Id on a Body whose envelope does not declare wsu would otherwise invent an "ns0" prefix.
etree.register_namespace("wsu", c.WSU_NS)

# Every attribute a reference could be resolved by (pitfall 3): Id, ID, id in any namespace (wsu:Id, xml:id).
_ID_ATTRIBUTES = etree.XPath("//@*[local-name()='Id' or local-name()='ID' or local-name()='id']")


def _new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4()}"


def _instant(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _reference(target: etree._Element, digest_method: str, prefixes: list[str] | None = None):
    value = digest(digest_method, canonicalize(target, EXC_C14N, prefixes, comments=False))
    return "#" + target.get(WSU_ID), [(EXC_C14N, prefixes)], value


def _key_info(signature: etree._Element, security: etree._Element, cert: x509.Certificate, style: str) -> None:
    key_info = etree.SubElement(signature, KEY_INFO)
    token = etree.SubElement(key_info, TOKEN_REFERENCE)
    if style == "keyidentifier":
        etree.SubElement(token, KEY_IDENTIFIER, ValueType=X509V3, EncodingType=BASE64_BINARY).text = der_base64(cert)
    elif style == "bst":
        bst = etree.Element(BINARY_SECURITY_TOKEN, ValueType=X509V3, EncodingType=BASE64_BINARY)
        bst.set(WSU_ID, _new_id("X509"))
        bst.text = der_base64(cert)
        security.insert(0, bst)  # before the Signature that refers to it, as streaming processors need
        etree.SubElement(token, WSSE_REFERENCE, URI="#" + bst.get(WSU_ID), ValueType=X509V3)
    else:  # WSS4J, as the gateway signs its replies
        signature.set("Id", _new_id("SIG"))
        key_info.set("Id", _new_id("KI"))
        token.set(WSU_ID, _new_id("STR"))
        serial = etree.SubElement(etree.SubElement(token, X509_DATA), X509_ISSUER_SERIAL)
        etree.SubElement(serial, X509_ISSUER_NAME).text = cert.issuer.rfc4514_string()
        etree.SubElement(serial, X509_SERIAL_NUMBER).text = str(cert.serial_number)


def sign_envelope(raw: bytes, key, cert: x509.Certificate, *, key_info: str = "keyidentifier",
                  timestamp_seconds: int | None = None) -> bytes:
    """Replace any WS-Security header with our signature over the Body (and a Timestamp when asked).

    Only the Header and the Body's attributes change; the Body's content is serialised as parsed.
    """
    if key_info not in KEY_INFO_STYLES:
        raise ValueError(f"key_info must be one of {', '.join(KEY_INFO_STYLES)}")
    signature_method, digest_method = methods_for_key(key)
    tree = c.PARSER.parse(raw)
    envelope = tree.getroot()
    body = envelope.find(c.BODY)
    if envelope.tag != c.ENVELOPE or body is None:
        raise ValueError("not a SOAP 1.1 envelope with a Body")
    soap.drop_transport_signature(tree)
    header = envelope.find(c.HEADER)
    if header is None:
        header = etree.SubElement(envelope, c.HEADER)  # SubElement reuses the envelope's soap prefix
        envelope.insert(0, header)
    for name in list(body.attrib):
        if etree.QName(name).localname in ("Id", "ID", "id"):
            del body.attrib[name]
    body.set(WSU_ID, _new_id("id"))

    security = etree.SubElement(header, SECURITY, nsmap={"wsse": c.WSSE_NS, "wsu": c.WSU_NS})
    security.set(c.MUST_UNDERSTAND, "1")
    # The Body's PrefixList keeps QName content (xsi:type="xs:string") bound as signed (pitfall 7). Only
    # prefixes of the parsed input qualify: lxml silently drops PrefixList entries missing from the
    # document's dictionary, i.e. prefixes declared through its API, like the wsse of our own header.
    references = [_reference(body, digest_method, in_scope_prefixes(body))]
    if timestamp_seconds is not None:
        timestamp = etree.SubElement(security, TIMESTAMP)
        timestamp.set(WSU_ID, _new_id("TS"))
        now = datetime.now(timezone.utc)
        etree.SubElement(timestamp, CREATED).text = _instant(now)
        etree.SubElement(timestamp, EXPIRES).text = _instant(now + timedelta(seconds=timestamp_seconds))
        references.append(_reference(timestamp, digest_method))
    signature = new_signature(security, signature_method, digest_method, references, EXC_C14N)
    _key_info(signature, security, cert, key_info)
    seal(signature, key)
    return soap.serialize(tree)


@dataclass
class VerifiedEnvelope:
    certificate: x509.Certificate
    tree: etree._ElementTree  # the document parsed from raw (hardened parser)
    body: etree._Element  # the Envelope's soap:Body, proven covered by a verified reference
    signature_method: str
    digest_method: str
    references: list[str]
    timestamp: tuple[datetime, datetime | None] | None


def _id_index(root: etree._Element) -> dict[str, list[etree._Element]]:
    index: dict[str, list[etree._Element]] = {}
    for value in _ID_ATTRIBUTES(root):
        owners = index.setdefault(str(value), [])
        element = value.getparent()
        if not owners or owners[-1] is not element:  # Id and wsu:Id of one element are one owner
            owners.append(element)
    return index


def _resolve(ids: dict[str, list[etree._Element]], uri: str | None, what: str) -> etree._Element:
    if not uri or not uri.startswith("#") or uri.startswith("#xpointer("):
        raise malformed(f"{what} URI {uri!r} is not a same-document '#id' reference")
    owners = ids.get(uri[1:], ())
    if not owners:
        raise malformed(f"{what} {uri} points to no element")
    if len(owners) > 1:
        raise SignatureError("SIGNATURE_DUPLICATE_ID", f"{what} {uri}: {len(owners)} elements carry this Id")
    return owners[0]


def _token_text(token: etree._Element) -> str:
    encoding = token.get("EncodingType", BASE64_BINARY)
    if token.get("ValueType") != X509V3 or encoding != BASE64_BINARY:
        raise malformed(f"unsupported token ValueType {token.get('ValueType')!r} / EncodingType {encoding!r}: "
                        "a base64 X509v3 certificate is expected")
    return token.text or ""


def _by_issuer_serial(serial: etree._Element, certificates) -> x509.Certificate:
    name, number = serial.findtext(X509_ISSUER_NAME), serial.findtext(X509_SERIAL_NUMBER)
    try:
        issuer = parse_name(name)
        serial_number = int(number.strip())
    except (AttributeError, TypeError, ValueError) as error:
        raise malformed(f"unreadable X509IssuerSerial ({name!r}, {number!r}): {error}") from None
    found = certificates(issuer, serial_number)
    if found is None:
        raise malformed(f"X509IssuerSerial: no known certificate for issuer {name.strip()}, serial {serial_number}; "
                        "send the certificate itself (KeyIdentifier or BinarySecurityToken) or make it known "
                        "to the verifier")
    return found


def _certificate(parsed: ParsedSignature, ids, certificates) -> x509.Certificate:
    """The signer's certificate, from any of the three KeyInfo styles (or a plain ds:X509Data)."""
    if parsed.key_info is None:
        raise malformed("the signature has no KeyInfo")
    holder = parsed.key_info.find(TOKEN_REFERENCE)
    if holder is not None:
        reference = holder.find(WSSE_REFERENCE)
        if reference is not None:
            token = _resolve(ids, reference.get("URI"), "SecurityTokenReference")
            if token.tag != BINARY_SECURITY_TOKEN:
                raise malformed(f"SecurityTokenReference {reference.get('URI')} is not a BinarySecurityToken")
            return load_certificate(_token_text(token))
        identifier = holder.find(KEY_IDENTIFIER)
        if identifier is not None:
            return load_certificate(_token_text(identifier))
    data = (parsed.key_info if holder is None else holder).find(X509_DATA)
    if data is not None:
        encoded = data.findtext(X509_CERTIFICATE)
        if encoded is not None:
            return load_certificate(encoded)
        serial = data.find(X509_ISSUER_SERIAL)
        if serial is not None:
            return _by_issuer_serial(serial, certificates)
    raise malformed("KeyInfo holds no X.509 token this gateway understands")


def _timestamp_error(detail: str) -> SignatureError:
    return SignatureError("TIMESTAMP_INVALID", detail)


def _moment(text: str | None, what: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip())
    except (AttributeError, ValueError):
        raise _timestamp_error(f"unreadable {what} {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _check_timestamp(header: etree._Element, covered: list[etree._Element], now: datetime,
                     clock_skew: timedelta) -> tuple[datetime, datetime | None] | None:
    stamps = header.findall(f"{SECURITY}/{TIMESTAMP}")
    if not stamps:
        return None
    if len(stamps) > 1:
        raise _timestamp_error("several wsu:Timestamp elements")
    stamp = stamps[0]
    if not any(stamp is target for target in covered):
        raise _timestamp_error("wsu:Timestamp is not covered by the signature")
    created = _moment(stamp.findtext(CREATED), "Created")
    expires = None if stamp.find(EXPIRES) is None else _moment(stamp.findtext(EXPIRES), "Expires")
    now = now if now.tzinfo else now.replace(tzinfo=timezone.utc)
    if created > now + clock_skew:
        raise _timestamp_error(f"Created {created.isoformat()} is in the future (now {now.isoformat()})")
    if expires is not None and expires <= now:
        raise _timestamp_error(f"expired at {expires.isoformat()} (now {now.isoformat()})")
    return created, expires


def verify_envelope(raw: bytes, *, policy: AlgorithmPolicy, now: datetime, clock_skew: timedelta = timedelta(minutes=5),
                    certificates: Callable[[NameKey, int], x509.Certificate | None] = lambda issuer, serial: None,
                    tree: etree._ElementTree | None = None) -> VerifiedEnvelope:
    """Verify the one ds:Signature in wsse:Security; SignatureError names the catalogue fault.

    Structure, XSW and algorithm checks come before any crypto. `certificates(issuer, serial)` resolves
    the X509IssuerSerial KeyInfo style (`issuerserial.CertificateIndex.find`). Unsigned comments are
    stripped from the verified elements, so what is read from `body` is what was digested. Not-well-formed
    or DOCTYPE input raises the parser's etree.XMLSyntaxError / ValueError. `tree`, when given, is `raw` as
    the hardened parser read it, untouched (it saves parsing twice); it is verified, and returned, in place.
    """
    tree = c.PARSER.parse(raw) if tree is None else tree
    envelope = tree.getroot()
    header = envelope.find(c.HEADER) if envelope.tag == c.ENVELOPE else None
    signatures = [] if header is None else header.findall(f"{SECURITY}/{SIGNATURE}")
    if not signatures:
        raise SignatureError("SIGNATURE_MISSING", "no wsse:Security/ds:Signature in the SOAP Header")
    if len(signatures) > 1:
        raise malformed(f"{len(signatures)} ds:Signature elements in wsse:Security: exactly one is expected")
    parsed = read_signature(signatures[0], policy)

    # XSW guard (pitfall 6): one soap:Body, the Envelope's own, so any signed Body is that one.
    body = envelope.find(c.BODY)
    bodies = sum(1 for _ in envelope.iter(c.BODY))
    if body is None or bodies != 1:
        raise SignatureError("SIGNATURE_WRAPPING", f"{bodies} soap:Body elements; exactly one, "
                                                   "the Envelope's child, is expected")
    ids = _id_index(envelope)
    # (reference, the one element it resolves to, its C14N): all checked before any crypto.
    signed = [(reference, _resolve(ids, reference.uri, "Reference"), reference.c14n_method())
              for reference in parsed.references]
    body_reference = next((reference for reference, target, _ in signed if target is body), None)
    if body_reference is None:
        raise SignatureError("SIGNATURE_BODY_NOT_COVERED", "no Reference points to the soap:Body")
    certificate = _certificate(parsed, ids, certificates)

    for reference, target, method in signed:
        if not reference.matches(canonicalize(target, method, reference.prefixes, comments=False)):
            raise SignatureError("SIGNATURE_DIGEST_INVALID", f"the digest of {reference.uri} does not match: "
                                                             "the signed content was changed")
    if not parsed.verifies(certificate_key(certificate)):
        raise SignatureError("SIGNATURE_VALUE_INVALID", "the SignatureValue does not verify with the certificate "
                                                        f"of {certificate.subject.rfc4514_string()}")
    targets = [target for _, target, _ in signed]
    # Before the Timestamp is read: an unsigned comment splitting <wsu:Expires> would truncate what is read
    # ("…T01:05:16<!---->+05:00" read as UTC: 5 h more).
    for target in targets:
        etree.strip_tags(target, etree.Comment)
    timestamp = _check_timestamp(header, targets, now, clock_skew)
    return VerifiedEnvelope(certificate, tree, body, parsed.signature_method, body_reference.digest_method,
                            [reference.uri for reference in parsed.references], timestamp)


def verify_signed_by(raw: bytes, certificate: x509.Certificate, *, policy: AlgorithmPolicy,
                     now: datetime) -> VerifiedEnvelope:
    """`verify_envelope`, and the signer must be `certificate`: how a party that hears from one sender
    only, the gateway (a push receiver, a provider), proves a message is that sender's and not a forgery.

    The certificate is compared whole, not by chain: anyone the same CA certified could sign otherwise.
    """
    verified = verify_envelope(raw, policy=policy, now=now, certificates=CertificateIndex([certificate]).find)
    if verified.certificate != certificate:
        raise SignatureError("NOT_FROM_GATEWAY", f"signed by {verified.certificate.subject.rfc4514_string()}, "
                                                 f"not by the gateway's {certificate.subject.rfc4514_string()}")
    return verified
