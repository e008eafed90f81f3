"""The WS-Security transport signature: round trips, every refusal, and libxmlsec1 as an independent oracle
(tests/xmlsec_oracle.py: the python-xmlsec wheel, and the xmlsec1 command where installed; the command signs)."""
from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import NameOID
from lxml import etree

from gateway import client
from gateway import contract as c
from gateway.security import algorithms as alg
from gateway.security import wss
from gateway.security.gost import digests as gost_digests
from gateway.security.algorithms import AlgorithmPolicy, SignatureError
from gateway.security.issuerserial import CertificateIndex, NameKey
from gateway.security.xmldsig import seal
from tests import xmlsec_oracle

ECHO_NS = "urn:shep-emulator:demo:echo"
NS = {"soap": c.SOAP_NS, "wsse": c.WSSE_NS, "wsu": c.WSU_NS, "ds": c.DS_NS, "ec": alg.EXC_C14N}
WSU_ID = f"{{{c.WSU_NS}}}Id"
KEYS = ("rsa", "ec")


# --- a throw-away PKI -----------------------------------------------------------------------------

@dataclass
class Signer:
    key: object
    cert: x509.Certificate

    def key_and_cert(self, directory: Path, name: str = "signer") -> str:
        """The key and certificate as NAME.key.pem and NAME.pem in `directory`: "key path,certificate path"."""
        key, cert = directory / f"{name}.key.pem", directory / f"{name}.pem"
        key.write_bytes(self.key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
        cert.write_bytes(self.cert.public_bytes(Encoding.PEM))
        return f"{key},{cert}"


@dataclass
class Pki:
    ca: Signer
    rsa: Signer
    ec: Signer
    expired: Signer
    other: Signer  # a second RSA leaf: "signed by someone else"

    def lookup(self, issuer: NameKey, serial: int) -> x509.Certificate | None:
        leaves = (self.rsa, self.ec, self.expired, self.other)
        return CertificateIndex(s.cert for s in leaves).find(issuer, serial)

    def pem(self, directory: Path, name: str) -> Path:
        cert = self.ca.cert if name == "ca" else getattr(self, name).cert
        path = directory / f"{name}.pem"
        path.write_bytes(cert.public_bytes(Encoding.PEM))
        return path


def make_pki() -> Pki:
    now = datetime.now(timezone.utc)
    # Cyrillic and SERIALNUMBER in the issuer exercise X509IssuerName both ways.
    ca_name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "KZ"),
                         x509.NameAttribute(NameOID.SERIAL_NUMBER, "BIN161140016747"),
                         x509.NameAttribute(NameOID.COMMON_NAME, "ҰЛТТЫҚ КУӘЛАНДЫРУШЫ ОРТАЛЫҚ (TEST)")])
    ca_key = rsa.generate_private_key(65537, 2048)
    ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
               .not_valid_after(now + timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .sign(ca_key, hashes.SHA256()))

    def leaf(name: str, key, not_after: datetime) -> Signer:
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
                .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(not_after - timedelta(days=60)).not_valid_after(not_after)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .sign(ca_key, hashes.SHA256()))
        return Signer(key, cert)

    valid = now + timedelta(days=10)
    return Pki(ca=Signer(ca_key, ca_cert),
               rsa=leaf("RSA leaf", rsa.generate_private_key(65537, 2048), valid),
               ec=leaf("EC leaf", ec.generate_private_key(ec.SECP256R1()), valid),
               expired=leaf("expired leaf", rsa.generate_private_key(65537, 2048), now - timedelta(days=1)),
               other=leaf("other leaf", rsa.generate_private_key(65537, 2048), valid))


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


# --- helpers --------------------------------------------------------------------------------------

def payload(text: str = "сәлем") -> etree._Element:
    root = etree.Element(f"{{{ECHO_NS}}}EchoRequest", nsmap={"echo": ECHO_NS})
    etree.SubElement(root, "text").text = text
    return root


def envelope(style: str = "escaped", text: str = "сәлем") -> bytes:
    return client.build_send_message(service_id="ECHO", sender_id="consumer", password="secret",
                                     payload=payload(text), style=style,
                                     xsi_type=f"{{{ECHO_NS}}}Echo" if style == "typed" else None)


def now() -> datetime:
    return datetime.now(timezone.utc)


def verify(pki: Pki, raw: bytes, **options) -> wss.VerifiedEnvelope:
    options.setdefault("policy", AlgorithmPolicy())
    options.setdefault("now", now())
    options.setdefault("certificates", pki.lookup)
    return wss.verify_envelope(raw, **options)


def refused(pki: Pki, raw: bytes, name: str, **options) -> SignatureError:
    with pytest.raises(SignatureError) as caught:
        verify(pki, raw, **options)
    assert caught.value.name == name, caught.value
    return caught.value


def parse(raw: bytes) -> etree._Element:
    return etree.fromstring(raw)


def one(root: etree._Element, path: str) -> etree._Element:
    found = root.xpath(path, namespaces=NS)
    assert len(found) == 1, (path, found)
    return found[0]


def dump(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def resign(raw: bytes, key, edit=None, *, signature_method: str | None = None,
           digest_method: str | None = None) -> bytes:
    """A crafted message: edit the parsed signed envelope, then recompute every digest and the value."""
    root = parse(raw)
    if edit is not None:
        edit(root)
    signed_info = one(root, "//ds:SignedInfo")
    if signature_method:
        one(signed_info, "ds:SignatureMethod").set("Algorithm", signature_method)
    for reference in signed_info.iterfind("ds:Reference", NS):
        if digest_method:
            one(reference, "ds:DigestMethod").set("Algorithm", digest_method)
        target = one(root, f"//*[@wsu:Id='{reference.get('URI')[1:]}']")
        transforms = reference.xpath("ds:Transforms/ds:Transform/@Algorithm", namespaces=NS) or [alg.C14N]
        prefixes = reference.xpath("ds:Transforms/ds:Transform/ec:InclusiveNamespaces/@PrefixList", namespaces=NS)
        data = alg.canonicalize(target, transforms[0], prefixes[0].split() if prefixes else None, comments=False)
        one(reference, "ds:DigestValue").text = base64.b64encode(
            alg.digest(one(reference, "ds:DigestMethod").get("Algorithm"), data)).decode()
    seal(signed_info.getparent(), key)
    return dump(root)


# --- round trips ----------------------------------------------------------------------------------

@pytest.mark.parametrize("timestamp", [None, 300])
@pytest.mark.parametrize("style", wss.KEY_INFO_STYLES)
@pytest.mark.parametrize("kind", KEYS)
def test_sign_verify_round_trip(pki, kind, style, timestamp):
    signer = getattr(pki, kind)
    signed = wss.sign_envelope(envelope(), signer.key, signer.cert, key_info=style, timestamp_seconds=timestamp)
    verified = verify(pki, signed)

    assert verified.certificate == signer.cert
    assert verified.body is verified.tree.getroot().find(c.BODY)
    assert verified.signature_method == (alg.RSA_SHA256 if kind == "rsa" else alg.ECDSA_SHA256)
    assert verified.digest_method == alg.SHA256
    body_id = verified.body.get(WSU_ID)
    assert body_id.startswith("id-") and verified.references[0] == "#" + body_id
    assert len(verified.references) == (1 if timestamp is None else 2)
    if timestamp is None:
        assert verified.timestamp is None
    else:
        created, expires = verified.timestamp
        assert expires - created == timedelta(seconds=timestamp)

    root = parse(signed)
    security = one(root, "/soap:Envelope/soap:Header/wsse:Security")
    assert security.get(c.MUST_UNDERSTAND) == "1"
    assert one(security, "ds:Signature/ds:SignedInfo/ds:CanonicalizationMethod").get("Algorithm") == alg.EXC_C14N
    body_reference = one(security, f"ds:Signature/ds:SignedInfo/ds:Reference[@URI='#{body_id}']")
    transforms = body_reference.xpath("ds:Transforms/ds:Transform/@Algorithm", namespaces=NS)
    assert transforms == [alg.EXC_C14N]  # one exc-c14n transform, no enveloped-signature
    token = one(security, "ds:Signature/ds:KeyInfo/wsse:SecurityTokenReference")
    if style == "keyidentifier":
        identifier = one(token, "wsse:KeyIdentifier")
        assert identifier.get("ValueType") == wss.X509V3 and identifier.get("EncodingType") == wss.BASE64_BINARY
        assert base64.b64decode(identifier.text) == signer.cert.public_bytes(Encoding.DER)
        assert not security.xpath("wsse:BinarySecurityToken", namespaces=NS)
    elif style == "bst":
        bst = one(security, "wsse:BinarySecurityToken")
        assert bst.get(WSU_ID).startswith("X509-")
        assert one(token, "wsse:Reference").get("URI") == "#" + bst.get(WSU_ID)
    else:
        assert one(security, "ds:Signature").get("Id").startswith("SIG-")
        assert one(security, "ds:Signature/ds:KeyInfo").get("Id").startswith("KI-")
        assert token.get(WSU_ID).startswith("STR-")
        serial = one(token, "ds:X509Data/ds:X509IssuerSerial")
        assert one(serial, "ds:X509SerialNumber").text == str(signer.cert.serial_number)


@pytest.mark.parametrize("style", client.STYLES)
def test_payload_is_untouched_and_qnames_still_resolve(pki, style):
    raw = envelope(style)
    signed = wss.sign_envelope(raw, pki.rsa.key, pki.rsa.cert)

    def segment(document: bytes) -> bytes:
        return document[document.index(b"<data"):document.index(b"</data>")]

    assert segment(signed) == segment(raw)  # byte-identical: only the Header and Body attributes change
    verified = verify(pki, signed)
    data = one(verified.body, ".//data")
    original = one(parse(raw), "//data")
    # Inclusive C14N of `data` would also show the xmlns:wsu now in scope, hence exc-c14n + its prefixes.
    assert etree.tostring(data, method="c14n", exclusive=True, inclusive_ns_prefixes=["xs", "xsi", "t"]) == \
        etree.tostring(original, method="c14n", exclusive=True, inclusive_ns_prefixes=["xs", "xsi", "t"])
    if style == "escaped":
        assert data.get(c.XSI_TYPE) == "xs:string" and data.nsmap["xs"] == c.XS_NS
        assert "xs" in one(parse(signed), "//ec:InclusiveNamespaces").get("PrefixList").split()
    elif style == "typed":
        assert data.nsmap[data.get(c.XSI_TYPE).split(":")[0]] == ECHO_NS


def test_rebinding_a_qname_prefix_breaks_the_digest(pki):
    """The PrefixList puts xmlns:xs under the digest, though exc-c14n alone would drop it."""
    signed = wss.sign_envelope(envelope("escaped"), pki.rsa.key, pki.rsa.cert)
    forged = signed.replace(f'xmlns:xs="{c.XS_NS}"'.encode(), b'xmlns:xs="urn:attacker"')
    assert forged != signed
    refused(pki, forged, "SIGNATURE_DIGEST_INVALID")


def test_previous_signature_and_body_ids_are_replaced(pki):
    root = parse(wss.sign_envelope(envelope(), pki.other.key, pki.other.cert, key_info="bst", timestamp_seconds=60))
    root.find(c.BODY).set("Id", "plain-old")
    signed = wss.sign_envelope(dump(root), pki.ec.key, pki.ec.cert)
    root = parse(signed)
    assert len(root.xpath("//wsse:Security", namespaces=NS)) == 1
    assert not root.xpath("//wsse:BinarySecurityToken | //wsu:Timestamp", namespaces=NS)
    assert dict(root.find(c.BODY).attrib).keys() == {WSU_ID}
    assert verify(pki, signed).certificate == pki.ec.cert


def test_header_is_created_when_missing(pki):
    raw = client.build_send_message_response(message_id="m-1", payload=payload())
    assert parse(raw).find(c.HEADER) is None
    signed = wss.sign_envelope(raw, pki.rsa.key, pki.rsa.cert, timestamp_seconds=60)
    assert parse(signed)[0].tag == c.HEADER
    assert verify(pki, signed).body.find(c.SEND_MESSAGE_RESPONSE) is not None


def test_sign_envelope_refuses_bad_input(pki):
    with pytest.raises(ValueError):
        wss.sign_envelope(envelope(), pki.rsa.key, pki.rsa.cert, key_info="thumbprint")
    with pytest.raises(ValueError):
        wss.sign_envelope(b"<notsoap/>", pki.rsa.key, pki.rsa.cert)
    with pytest.raises(TypeError):
        wss.sign_envelope(envelope(), ed25519.Ed25519PrivateKey.generate(), pki.rsa.cert)


def test_expired_certificate_still_verifies(pki):
    """Trust and validity are the caller's checks, at the message time."""
    signed = wss.sign_envelope(envelope(), pki.expired.key, pki.expired.cert)
    assert verify(pki, signed).certificate == pki.expired.cert


def test_java_style_inclusive_namespaces_and_wrapped_base64(pki):
    """WSS4J/.NET put ec:InclusiveNamespaces in CanonicalizationMethod and wrap base64 at 76 characters."""
    def java(root):
        method = one(root, "//ds:CanonicalizationMethod")
        etree.SubElement(method, alg.INCLUSIVE_NAMESPACES, nsmap={"ec": alg.EXC_C14N}, PrefixList="soap wsse")

    root = parse(resign(wss.sign_envelope(envelope(), pki.rsa.key, pki.rsa.cert), pki.rsa.key, java))
    value = one(root, "//ds:SignatureValue")
    value.text = "\n".join(value.text[i:i + 76] for i in range(0, len(value.text), 76))
    assert verify(pki, dump(root)).certificate == pki.rsa.cert


def test_unsigned_comments_are_stripped_from_the_verified_body(pki):
    """Comments are outside the digest: one splitting a value must not truncate what is read."""
    signed = wss.sign_envelope(envelope(), pki.rsa.key, pki.rsa.cert)
    forged = signed.replace(b"<senderId>consumer", b"<senderId>cons<!-- x -->umer")
    assert forged != signed
    assert verify(pki, forged).body.findtext(".//senderId") == "consumer"


def test_unsigned_comments_neither_stretch_a_timestamp_nor_cut_a_digest_value(pki):
    """Found by tests/test_signature_differential.py: values were read before comments were stripped."""
    kz = timezone(timedelta(hours=5))  # senders write their local offset

    def expired(root):
        one(root, "//wsu:Created").text = (now() - timedelta(hours=2)).astimezone(kz).isoformat()
        one(root, "//wsu:Expires").text = (now() - timedelta(hours=1)).astimezone(kz).isoformat()

    signed = resign(wss.sign_envelope(envelope(), pki.rsa.key, pki.rsa.cert, timestamp_seconds=60), pki.rsa.key,
                    expired)
    # Cut before its offset, Expires would be read as naive UTC: 5 h later, still current.
    stretched = signed.replace(b"+05:00</wsu:Expires>", b"<!---->+05:00</wsu:Expires>")
    assert stretched != signed
    assert "expired" in refused(pki, stretched, "TIMESTAMP_INVALID").detail

    root = parse(wss.sign_envelope(envelope(), pki.rsa.key, pki.rsa.cert))
    value = one(root, "//ds:DigestValue")
    note = etree.Comment(" left out of canonical SignedInfo: still the signed value ")
    note.tail, value.text = value.text[20:], value.text[:20]
    value.append(note)
    assert verify(pki, dump(root)).certificate == pki.rsa.cert


# --- refusals -------------------------------------------------------------------------------------

def test_missing_signature(pki):
    refused(pki, envelope(), "SIGNATURE_MISSING")
    root = parse(envelope())
    etree.SubElement(root.find(c.HEADER), f"{{{c.WSSE_NS}}}Security")
    refused(pki, dump(root), "SIGNATURE_MISSING")


def test_two_signatures_are_malformed(pki):
    root = parse(wss.sign_envelope(envelope(), pki.rsa.key, pki.rsa.cert))
    signature = one(root, "//ds:Signature")
    signature.getparent().append(etree.fromstring(etree.tostring(signature)))
    refused(pki, dump(root), "SIGNATURE_MALFORMED")


def test_tampered_body_fails_the_digest(pki):
    signed = wss.sign_envelope(envelope(text="hello"), pki.ec.key, pki.ec.cert)
    refused(pki, signed.replace(b"<senderId>consumer<", b"<senderId>intruder<"), "SIGNATURE_DIGEST_INVALID")


def test_tampered_signature_value(pki):
    root = parse(wss.sign_envelope(envelope(), pki.rsa.key, pki.rsa.cert))
    value = one(root, "//ds:SignatureValue")
    value.text = ("B" if value.text[0] == "A" else "A") + value.text[1:]
    refused(pki, dump(root), "SIGNATURE_VALUE_INVALID")


def test_signature_with_someone_elses_certificate(pki):
    signed = wss.sign_envelope(envelope(), pki.rsa.key, pki.rsa.cert)
    ours, theirs = (base64.b64encode(s.cert.public_bytes(Encoding.DER)) for s in (pki.rsa, pki.other))
    refused(pki, signed.replace(ours, theirs), "SIGNATURE_VALUE_INVALID")


def test_signed_body_moved_into_a_header_wrapper(pki):
    """Classic XSW: the signed Body kept (digest still fine) in a header, an attacker's Body in its place."""
    root = parse(wss.sign_envelope(envelope(), pki.rsa.key, pki.rsa.cert))
    header, body = root.find(c.HEADER), root.find(c.BODY)
    etree.SubElement(header, "{urn:attacker}Wrapper").append(body)
    evil = etree.SubElement(root, c.BODY)
    evil.append(parse(envelope(text="evil")).find(c.BODY)[0])
    refused(pki, dump(root), "SIGNATURE_WRAPPING")

    del evil.getparent()[-1]  # the only Body is now the wrapped one: still wrapping
    refused(pki, dump(root), "SIGNATURE_WRAPPING")


def test_duplicate_ids(pki):
    signed = wss.sign_envelope(envelope(), pki.rsa.key, pki.rsa.cert)
    body_id = parse(signed).find(c.BODY).get(WSU_ID)
    for attribute in (WSU_ID, "id", "Id", "{http://www.w3.org/XML/1998/namespace}id", "{urn:other}Id"):
        root = parse(signed)
        decoy = etree.SubElement(root.find(c.HEADER), "{urn:attacker}Decoy")
        decoy.set(attribute, body_id)
        error = refused(pki, dump(root), "SIGNATURE_DUPLICATE_ID")
        assert body_id in error.detail


def test_body_not_covered(pki):
    """Only the Timestamp is signed."""
    def drop_body_reference(root):
        body_id = root.find(c.BODY).get(WSU_ID)
        reference = one(root, f"//ds:Reference[@URI='#{body_id}']")
        reference.getparent().remove(reference)

    signed = wss.sign_envelope(envelope(), pki.rsa.key, pki.rsa.cert, timestamp_seconds=60)
    refused(pki, resign(signed, pki.rsa.key, drop_body_reference), "SIGNATURE_BODY_NOT_COVERED")


@pytest.mark.parametrize("signature_method,digest_method", [
    (alg.RSA_SHA1, alg.SHA1), (alg.RSA_SHA1_KALKAN, alg.SHA1_KALKAN), (alg.RSA_SHA256, alg.SHA1),
    (alg.RSA_SHA1, alg.SHA256)])
def test_sha1_refused_unless_allowed(pki, signature_method, digest_method):
    signed = resign(wss.sign_envelope(envelope(), pki.rsa.key, pki.rsa.cert), pki.rsa.key,
                    signature_method=signature_method, digest_method=digest_method)
    refused(pki, signed, "SIGNATURE_ALGORITHM_REFUSED")
    verified = verify(pki, signed, policy=AlgorithmPolicy(allow_sha1=True))
    assert (verified.signature_method, verified.digest_method) == (signature_method, digest_method)


def test_ecdsa_sha1_refused(pki):
    signed = resign(wss.sign_envelope(envelope(), pki.ec.key, pki.ec.cert), pki.ec.key,
                    signature_method=alg.ECDSA_SHA1)
    refused(pki, signed, "SIGNATURE_ALGORITHM_REFUSED")
    assert verify(pki, signed, policy=AlgorithmPolicy(allow_sha1=True)).signature_method == alg.ECDSA_SHA1


@pytest.mark.parametrize("tag,uri", [
    ("ds:SignatureMethod", "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"),
    ("ds:Reference/ds:DigestMethod", "http://www.w3.org/2001/04/xmldsig-more#md5")])
def test_unsupported_algorithms(pki, tag, uri):
    """Refused before any crypto: no need to re-sign the altered SignedInfo."""
    root = parse(wss.sign_envelope(envelope(), pki.rsa.key, pki.rsa.cert))
    one(root, f"//ds:SignedInfo/{tag}").set("Algorithm", uri)
    error = refused(pki, dump(root), "SIGNATURE_ALGORITHM_UNSUPPORTED")
    assert uri in error.detail


@pytest.mark.parametrize("transform", [alg.ENVELOPED, "http://www.w3.org/TR/1999/REC-xpath-19991116"])
def test_other_transforms_are_malformed(pki, transform):
    root = parse(wss.sign_envelope(envelope(), pki.rsa.key, pki.rsa.cert))
    transforms = one(root, "//ds:Reference/ds:Transforms")
    transforms.insert(0, etree.Element(f"{{{c.DS_NS}}}Transform", Algorithm=transform))
    refused(pki, dump(root), "SIGNATURE_MALFORMED")


def test_c14n_1_0_reference_and_no_transform_verify(pki):
    """Inclusive C14N 1.0 is accepted for references, and is the default without any transform."""
    def inclusive(root):
        one(root, "//ds:Reference/ds:Transforms/ds:Transform").set("Algorithm", alg.C14N)

    def none(root):
        transforms = one(root, "//ds:Reference/ds:Transforms")
        transforms.getparent().remove(transforms)

    signed = wss.sign_envelope(envelope(), pki.rsa.key, pki.rsa.cert)
    for edit in (inclusive, none):
        assert verify(pki, resign(signed, pki.rsa.key, edit)).certificate == pki.rsa.cert


def test_timestamp_checks(pki):
    signed = wss.sign_envelope(envelope(), pki.rsa.key, pki.rsa.cert, timestamp_seconds=60)
    assert verify(pki, signed, now=now() + timedelta(seconds=30)).timestamp is not None
    assert "expired" in refused(pki, signed, "TIMESTAMP_INVALID", now=now() + timedelta(minutes=2)).detail
    # Created ahead of the verifier's clock: tolerated within the skew, refused beyond it.
    assert verify(pki, signed, now=now() - timedelta(minutes=4)).timestamp is not None
    assert "future" in refused(pki, signed, "TIMESTAMP_INVALID", now=now() - timedelta(minutes=6)).detail
    refused(pki, signed, "TIMESTAMP_INVALID", now=now() - timedelta(seconds=30), clock_skew=timedelta(seconds=5))


def test_timestamp_not_covered(pki):
    def drop_timestamp_reference(root):
        reference = one(root, "//ds:Reference[starts-with(@URI, '#TS-')]")
        reference.getparent().remove(reference)

    signed = wss.sign_envelope(envelope(), pki.rsa.key, pki.rsa.cert, timestamp_seconds=60)
    error = refused(pki, resign(signed, pki.rsa.key, drop_timestamp_reference), "TIMESTAMP_INVALID")
    assert "not covered" in error.detail


def test_token_problems_are_malformed(pki):
    bst = parse(wss.sign_envelope(envelope(), pki.rsa.key, pki.rsa.cert, key_info="bst"))
    token = one(bst, "//wsse:BinarySecurityToken")
    token.getparent().remove(token)
    assert "points to no element" in refused(pki, dump(bst), "SIGNATURE_MALFORMED").detail

    keyidentifier = wss.sign_envelope(envelope(), pki.rsa.key, pki.rsa.cert)
    root = parse(keyidentifier)
    one(root, "//wsse:KeyIdentifier").text = "not base64!"
    refused(pki, dump(root), "SIGNATURE_MALFORMED")
    one(root, "//wsse:KeyIdentifier").text = base64.b64encode(b"not a certificate").decode()
    refused(pki, dump(root), "SIGNATURE_MALFORMED")
    one(root, "//wsse:KeyIdentifier").set("ValueType", "urn:X509SubjectKeyIdentifier")
    refused(pki, dump(root), "SIGNATURE_MALFORMED")

    issuerserial = wss.sign_envelope(envelope(), pki.rsa.key, pki.rsa.cert, key_info="issuerserial")
    error = refused(pki, issuerserial, "SIGNATURE_MALFORMED", certificates=lambda issuer, serial: None)
    assert "no known certificate" in error.detail

    root = parse(keyidentifier)
    key_info = one(root, "//ds:KeyInfo")
    key_info.getparent().remove(key_info)
    refused(pki, dump(root), "SIGNATURE_MALFORMED")


def test_issuer_serial_reads_java_keywords(pki):
    root = parse(wss.sign_envelope(envelope(), pki.rsa.key, pki.rsa.cert, key_info="issuerserial"))
    name = one(root, "//ds:X509IssuerName")
    assert name.text == pki.rsa.cert.issuer.rfc4514_string()
    name.text = name.text.replace("2.5.4.5=", "SERIALNUMBER=")
    assert verify(pki, dump(root)).certificate == pki.rsa.cert


def test_not_an_envelope_or_dtd():
    with pytest.raises(ValueError):
        wss.verify_envelope(b'<!DOCTYPE x [<!ENTITY e "x">]><x>&e;</x>', policy=AlgorithmPolicy(), now=now())
    with pytest.raises(SignatureError) as caught:
        wss.verify_envelope(b"<x/>", policy=AlgorithmPolicy(), now=now())
    assert caught.value.name == "SIGNATURE_MISSING"


# --- the algorithm policy -------------------------------------------------------------------------

def test_policy_and_methods_for_key(pki):
    assert alg.methods_for_key(pki.rsa.key) == (alg.RSA_SHA256, alg.SHA256)
    assert alg.methods_for_key(pki.ec.cert.public_key()) == (alg.ECDSA_SHA256, alg.SHA256)
    with pytest.raises(TypeError):
        alg.methods_for_key(ed25519.Ed25519PrivateKey.generate())
    AlgorithmPolicy().check(alg.RSA_SHA512, alg.SHA384)
    gost = [(uri, alg.SHA256) for uri in (alg.GOST2004_SIGNATURE, alg.GOST2015_256_SIGNATURE,
                                           alg.GOST2015_512_SIGNATURE)]
    gost += [(alg.RSA_SHA256, uri) for uri in (alg.GOST2004_DIGEST, alg.GOST2015_256_DIGEST, alg.GOST2015_512_DIGEST)]
    if not gost_digests.available(gost_digests.GOST34311):  # GOST 2004 has no pure-Python hash (test_gost.py)
        gost = [pair for pair in gost if not {alg.GOST2004_SIGNATURE, alg.GOST2004_DIGEST} & set(pair)]
    for signature_method, digest_method in gost:  # GOST is admitted (its refusal cases: tests/test_gost*.py)
        AlgorithmPolicy().check(signature_method, digest_method)
    with pytest.raises(SignatureError) as caught:
        AlgorithmPolicy().check(alg.SHA256, alg.SHA256)  # a digest URI is no SignatureMethod
    assert caught.value.name == "SIGNATURE_ALGORITHM_UNSUPPORTED"


# --- libxmlsec1, the independent oracle ----------------------------------------------------------

# The Ids a WS-Security Reference points at (library-notes §10): on soap:Body and wsu:Timestamp.
XMLSEC_IDS = (("Id", c.BODY), ("Id", f"{{{c.WSU_NS}}}Timestamp"))


@pytest.mark.parametrize("style", wss.KEY_INFO_STYLES)
@pytest.mark.parametrize("kind", KEYS)
def test_xmlsec_accepts_our_envelopes(pki, kind, style):
    signer = getattr(pki, kind)
    for style_data in client.STYLES:
        signed = wss.sign_envelope(envelope(style_data), signer.key, signer.cert, key_info=style, timestamp_seconds=60)
        verdict = xmlsec_oracle.verify(signed, cert=signer.cert, ids=XMLSEC_IDS)
        assert verdict.ok, verdict.detail
        assert verdict.references == 2  # the Body and the Timestamp


@pytest.mark.parametrize("kind", KEYS)
def test_xmlsec_rejects_a_tampered_envelope(pki, kind):
    signer = getattr(pki, kind)
    signed = wss.sign_envelope(envelope(), signer.key, signer.cert)
    assert xmlsec_oracle.verify(signed, cert=signer.cert, ids=XMLSEC_IDS).ok
    tampered = signed.replace(b"<senderId>consumer<", b"<senderId>intruder<")
    assert not xmlsec_oracle.verify(tampered, cert=signer.cert, ids=XMLSEC_IDS).ok
    root = parse(signed)
    one(root, "//ds:SignatureValue").text = base64.b64encode(b"\x01" * 64).decode()
    assert not xmlsec_oracle.verify(dump(root), cert=signer.cert, ids=XMLSEC_IDS).ok


def test_resign_reproduces_the_signer(pki):
    """`resign` (used above to craft messages) produces what the signer would: it is a faithful tool."""
    signed = wss.sign_envelope(envelope(), pki.ec.key, pki.ec.cert, timestamp_seconds=60)
    again = resign(signed, pki.ec.key)
    strip = etree.XPath("//ds:SignatureValue", namespaces=NS)
    a, b = parse(signed), parse(again)
    for root in (a, b):
        strip(root)[0].text = None
    assert dump(a) == dump(b)


WSS_TEMPLATE = """<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#">
      <ds:SignedInfo>
        <ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>
        <ds:SignatureMethod Algorithm="{method}"/>
        <ds:Reference URI="#{body_id}">
          <ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms>
          <ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>
          <ds:DigestValue/>
        </ds:Reference>
      </ds:SignedInfo>
      <ds:SignatureValue/>
      {key_info}
    </ds:Signature>"""
KEY_IDENTIFIER_INFO = f"""<ds:KeyInfo xmlns:wsse="{c.WSSE_NS}"><wsse:SecurityTokenReference><wsse:KeyIdentifier
          ValueType="{wss.X509V3}" EncodingType="{wss.BASE64_BINARY}">{{cert}}</wsse:KeyIdentifier>
        </wsse:SecurityTokenReference></ds:KeyInfo>"""
# libxmlsec1 fills in an empty X509IssuerSerial from the signing certificate, X509IssuerName as OpenSSL writes it.
ISSUER_SERIAL_INFO = "<ds:KeyInfo><ds:X509Data><ds:X509IssuerSerial/></ds:X509Data></ds:KeyInfo>"


def xmlsec_signed(signer: Signer, raw: bytes | None = None, *, key_info: str = KEY_IDENTIFIER_INFO) -> bytes:
    """`raw` (default: an `envelope()`) signed by libxmlsec1 itself, in the client layout of §8 (KeyIdentifier)
    unless another `key_info` template is given."""
    root = parse(envelope() if raw is None else raw)
    root.find(c.BODY).set(WSU_ID, "id-1")
    security = etree.SubElement(root.find(c.HEADER), f"{{{c.WSSE_NS}}}Security", nsmap={"wsse": c.WSSE_NS})
    security.set(c.MUST_UNDERSTAND, "1")
    method = alg.ECDSA_SHA256 if isinstance(signer.key, ec.EllipticCurvePrivateKey) else alg.RSA_SHA256
    security.append(etree.fromstring(WSS_TEMPLATE.format(method=method, body_id="id-1", key_info=key_info.format(
        cert=base64.b64encode(signer.cert.public_bytes(Encoding.DER)).decode()))))
    return xmlsec_oracle.sign(dump(root), signer.key, signer.cert, ids=(("Id", c.BODY),))


def in_token_reference(signed: bytes) -> bytes:
    """The KeyInfo's ds:X509Data moved into a wsse:SecurityTokenReference (WSS X.509 token profile §3.3.3),
    as WSS4J lays out X509IssuerSerial; KeyInfo is outside SignedInfo, so the signature still holds."""
    root = parse(signed)
    data = one(root, "//ds:KeyInfo/ds:X509Data")
    token = etree.SubElement(data.getparent(), wss.TOKEN_REFERENCE, nsmap={"wsse": c.WSSE_NS})
    token.append(data)
    return dump(root)


@pytest.mark.parametrize("kind", KEYS)
def test_we_accept_xmlsec_issuer_serial(pki, kind):
    """libxmlsec1 names the certificate itself; OpenSSL writes the Cyrillic issuer as \\D2\\B0… escapes."""
    signer = getattr(pki, kind)
    signed = xmlsec_signed(signer, key_info=ISSUER_SERIAL_INFO)
    assert "serialNumber=BIN161140016747" in one(parse(signed), "//ds:X509IssuerName").text
    for raw in (signed, in_token_reference(signed)):
        assert verify(pki, raw).certificate == signer.cert


@pytest.mark.parametrize("kind", KEYS)
def test_we_accept_xmlsec_envelopes(pki, kind):
    """An independent signer's envelope (pretty-printed, base64 wrapped) in the client layout of §8."""
    signed = xmlsec_signed(getattr(pki, kind))
    assert verify(pki, signed).certificate == getattr(pki, kind).cert
    refused(pki, signed.replace(b"<senderId>consumer<", b"<senderId>intruder<"), "SIGNATURE_DIGEST_INVALID")
