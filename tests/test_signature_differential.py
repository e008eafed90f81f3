"""Differential test of the strict-profile WS-Security verifier (`wss.verify_envelope`, lxml + cryptography)
against signxml and xmlsec1: on a seeded corpus of valid and deliberately broken envelopes, all three must
reach the same verdict.

What "verdict" means, for all three alike: ACCEPT when the signature is cryptographically valid AND covers
the Envelope's one soap:Body, no signed Id is ambiguous, and a present wsu:Timestamp is signed and current
(its values read as signed: comments are not part of them).

- ours: `wss.verify_envelope` (it implements the whole profile itself), with SHA-1 allowed, see below.
- signxml: `XMLVerifier().verify(raw, x509_cert=…, location=<wsse:Security>, expect_references=<count>)`,
  then `profile_problem` on the Ids of the elements it returned as signed.
- xmlsec1: libxmlsec1 through tests/xmlsec_oracle.py (the python-xmlsec wheel, and the xmlsec1 command where
  installed, which must agree with it on every case): `--verify` with the id-attr options of
  library-notes §10 and `--pubkey-cert-pem`, then `profile_problem` on the Reference URIs of the SignedInfo it
  verified (all of them, "ok/all" checked).
  xmlsec1 registers Ids only on soap:Body and wsu:Timestamp, so the duplicate-Id rule can only be a
  pre-check on the same bytes: `profile_problem` is exactly that, and it is applied to both oracles.

signxml and xmlsec1 do not resolve WS-Security tokens (library-notes §2.1, §10): `token_certificate` reads
the signer's certificate from the KeyInfo as the X.509 token profile says (KeyIdentifier or BST reference,
ValueType X509v3; X509IssuerSerial through the test PKI) and hands it to both; a KeyInfo it cannot resolve
means "no key" and both refuse without running. Certificate validity is the caller's check in the gateway
(`certs`), so signxml is asked to check it at a moment the certificate is valid.

Algorithm policy: the corpus is compared with SHA-1 allowed everywhere (`AlgorithmPolicy(allow_sha1=True)`,
signxml's SHA-1 methods admitted, xmlsec1's default), so SHA-1 messages are a real three-way comparison; that
the default policy refuses them is asserted separately. What remains different by policy (transforms beyond
the single C14N, the §8.1 SHA-1 spellings, DOCTYPE), or by an oracle's documented deviation, is listed in
EXPECTED_DIFFERENCES, each with its reason, and those verdicts are asserted exactly.

This test found two bugs in the verifier, both about unsigned comments: a comment inside a DigestValue cut
the value short (a valid message refused), and one inside wsu:Expires before its offset made an expired
Timestamp current (read as naive UTC: +5 h for a +05:00 sender). See the variant/ cases.
"""
from __future__ import annotations

import base64
import itertools
import random
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml import (CanonicalizationMethod, DigestAlgorithm, SignatureConfiguration, SignatureConstructionMethod,
                     SignatureMethod, SignatureReference, XMLSigner, XMLVerifier)

from gateway import client
from gateway import contract as c
from gateway.security import algorithms as alg
from gateway.security import wss
from gateway.security.algorithms import AlgorithmPolicy, SignatureError
from gateway.security.issuerserial import name_key
from gateway.security.xmldsig import seal
from tests import xmlsec_oracle
from tests.test_wss import (KEYS, NS, WSU_ID, XMLSEC_IDS, Pki, Signer, dump, envelope, make_pki, one, parse,
                            resign, xmlsec_signed)

SEED = 20260417
ALLOW_SHA1 = AlgorithmPolicy(allow_sha1=True)
SKEW = timedelta(minutes=5)  # verify_envelope's default clock skew; the profile applies the same
LOCATION = f"./{{{c.SOAP_NS}}}Header/{{{c.WSSE_NS}}}Security/"
ID_NAMES = ("Id", "ID", "id")
ATTACKER = "urn:attacker"
XML_ID = "{http://www.w3.org/XML/1998/namespace}id"
ID_SPELLINGS = {"wsu:Id": WSU_ID, "id": "id", "Id": "Id", "ID": "ID", "xml:id": XML_ID, "other:Id": "{urn:other}Id"}
# signxml's allow-lists: what the gateway's algorithms module knows (RSA/ECDSA, SHA-1 and SHA-2).
SIGNXML_METHODS = frozenset(m for m in SignatureMethod if m.name.split("_")[0] in ("RSA", "ECDSA")
                            and "SHA3_" not in m.name and "SHA224" not in m.name)
SIGNXML_DIGESTS = frozenset(d for d in DigestAlgorithm if d.name in ("SHA1", "SHA256", "SHA384", "SHA512"))
XPATH = "http://www.w3.org/TR/1999/REC-xpath-19991116"
# library-notes §10's options, plus the lower- and upper-case Id spellings the profile also accepts on the Body.
XMLSEC1_IDS = (*XMLSEC_IDS, ("id", c.BODY), ("ID", c.BODY))

# Every mutation kind the corpus must hold at least one case of.
MUTATIONS = ("text", "attr-add", "attr-remove", "attr-change", "element-add", "ns-rebind", "ns-shadow",
             "digest-value", "sigvalue-byte", "sigvalue-truncate", "ref-uri", "no-signature", "cert-swap",
             "xsw", "dup-id", "comment", "ws-inside", "ws-outside")

SIGNXML_WITH_COMMENTS = ("signxml digests comments for a '#id' reference with a #WithComments transform; XMLDSig "
                         "§4.4.3.3 removes them for bare-name references, as ours and xmlsec1 do")
# Intended differences (a policy of ours, or an oracle's own deviation), not bugs of ours:
# case -> (ours, signxml, xmlsec1 accept?), why. Asserted exactly.
EXPECTED_DIFFERENCES: dict[str, tuple[tuple[bool, bool, bool], str]] = {
    "wss/transform-enveloped-resigned": ((False, True, True),
                                         "strict profile: one C14N transform per reference; the others run the "
                                         "enveloped-signature transform, a no-op on a detached Body"),
    "wss/transform-xpath-resigned": ((False, True, True),
                                     "strict profile refuses XPath filtering; signxml skips transforms it does not "
                                     "know (a keep-all filter changes nothing), xmlsec1 runs it"),
    "wss/transform-xpath-filtering-resigned": ((False, False, True),
                                               "strict profile refuses XPath filtering; signxml skips it and digests "
                                               "the unfiltered Body, xmlsec1 runs it"),
    "wss/sha1-kalkan-spelling": ((True, False, False),
                                 "the §8.1 xmldsig-more#rsa-sha1 / #sha1 spellings are aliases only the gateway "
                                 "knows"),
    "variant/comment-in-signaturevalue": ((False, False, True),
                                          "SignatureValue is not signed: ours and signxml read its first text node "
                                          "and fail closed; xmlsec1 reads all of it"),
    "variant/pi-in-digestvalue-resealed": ((False, False, True),
                                           "a PI is signed markup only the signer can put there: ours and signxml "
                                           "read DigestValue up to it and fail closed; xmlsec1 reads all its text"),
    "variant/reference-exc-with-comments-comment-added": ((True, False, True), SIGNXML_WITH_COMMENTS),
    "variant/reference-c14n10-with-comments-comment-added": ((True, False, True), SIGNXML_WITH_COMMENTS),
    "wss/doctype": ((False, False, True),
                    "hardened parsing refuses any DOCTYPE (library-notes §5), as signxml does; xmlsec1 has "
                    "no such policy"),
}


# --- the corpus -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # a MUTATIONS entry, "base", "wss" (a case of tests/test_wss.py) or "variant"
    raw: bytes
    expect: bool | None  # the corpus's intent (None: depends on the base, see the mutation)


@dataclass(frozen=True)
class Base:
    name: str
    raw: bytes
    signer: Signer
    origin: str  # who signed: ours, signxml, xmlsec1


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def der(cert: x509.Certificate) -> str:
    return b64(cert.public_bytes(Encoding.DER))


def instant(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def signxml_signed(signer: Signer, kind: str, *, key_info: str, timestamp: bool, data_style: str) -> bytes:
    """An envelope signed by signxml as library-notes §2 describes (detached, exc-c14n, STR in KeyInfo)."""
    root = parse(envelope(data_style))
    root.find(c.BODY).set(WSU_ID, "Body-1")
    security = etree.SubElement(root.find(c.HEADER), wss.SECURITY, nsmap={"wsse": c.WSSE_NS, "wsu": c.WSU_NS})
    security.set(c.MUST_UNDERSTAND, "1")
    exc = CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0
    references = [SignatureReference(URI="#Body-1", c14n_method=exc)]
    info = etree.Element(f"{{{c.DS_NS}}}KeyInfo", nsmap={"ds": c.DS_NS})
    token = etree.SubElement(info, wss.TOKEN_REFERENCE)
    if key_info == "bst":
        bst = etree.SubElement(security, wss.BINARY_SECURITY_TOKEN, ValueType=wss.X509V3,
                               EncodingType=wss.BASE64_BINARY)
        bst.set(WSU_ID, "X509-1")
        bst.text = der(signer.cert)
        etree.SubElement(token, wss.WSSE_REFERENCE, URI="#X509-1", ValueType=wss.X509V3)
    else:
        etree.SubElement(token, wss.KEY_IDENTIFIER, ValueType=wss.X509V3,
                         EncodingType=wss.BASE64_BINARY).text = der(signer.cert)
    if timestamp:
        stamp = etree.SubElement(security, wss.TIMESTAMP)
        stamp.set(WSU_ID, "TS-1")
        moment = datetime.now(timezone.utc)
        etree.SubElement(stamp, wss.CREATED).text = instant(moment)
        etree.SubElement(stamp, wss.EXPIRES).text = instant(moment + timedelta(seconds=300))
        references.append(SignatureReference(URI="#TS-1", c14n_method=exc))
    method = SignatureMethod.RSA_SHA256 if kind == "rsa" else SignatureMethod.ECDSA_SHA256
    xml_signer = XMLSigner(method=SignatureConstructionMethod.detached, signature_algorithm=method,
                           digest_algorithm=DigestAlgorithm.SHA256, c14n_algorithm=exc)
    security.append(xml_signer.sign(root, key=signer.key, reference_uri=references, key_info=info))
    return dump(root)


def make_bases(pki: Pki) -> list[Base]:
    bases = []
    combos = itertools.product(KEYS, wss.KEY_INFO_STYLES, (None, 300))
    for index, (kind, style, seconds) in enumerate(combos):
        data_style = client.STYLES[index % len(client.STYLES)]
        signer = getattr(pki, kind)
        raw = wss.sign_envelope(envelope(data_style), signer.key, signer.cert, key_info=style,
                                timestamp_seconds=seconds)
        bases.append(Base(f"ours-{kind}-{style}-{data_style}{'-ts' if seconds else ''}", raw, signer, "ours"))
    bases.append(Base("signxml-rsa-bst-escaped-ts", signxml_signed(pki.rsa, "rsa", key_info="bst", timestamp=True,
                                                                   data_style="escaped"), pki.rsa, "signxml"))
    bases.append(Base("signxml-ec-keyidentifier-typed", signxml_signed(pki.ec, "ec", key_info="keyidentifier",
                                                                       timestamp=False, data_style="typed"),
                      pki.ec, "signxml"))
    for kind, data_style in (("rsa", "inline"), ("ec", "escaped")):
        raw = xmlsec_signed(getattr(pki, kind), envelope(data_style))
        bases.append(Base(f"xmlsec1-{kind}-keyidentifier-{data_style}", raw, getattr(pki, kind), "xmlsec1"))
    return bases


def body_elements(root: etree._Element) -> list[etree._Element]:
    return [el for el in root.find(c.BODY).iter() if isinstance(el.tag, str)]


def local(name: str) -> str:
    return etree.QName(name).localname


def edited(raw: bytes, edit: Callable[[etree._Element], None]) -> bytes:
    root = parse(raw)
    edit(root)
    return dump(root)


def body_reference_by(root: etree._Element, body_id: str) -> etree._Element:
    return one(root, f"//ds:SignedInfo/ds:Reference[@URI='#{body_id}']")


def body_reference(root: etree._Element) -> etree._Element:
    return body_reference_by(root, root.find(c.BODY).get(WSU_ID))


def flip(text: str, rng: random.Random) -> str:
    data = bytearray(base64.b64decode(text))
    data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return b64(bytes(data))


def cycle(options: list, index: int):
    return options[index % len(options)]


def changed_char(text: str, rng: random.Random) -> str:
    index = rng.randrange(len(text))
    new = "Q" if text[index] != "Q" else "R"
    return text[:index] + new + text[index + 1:]


class Mutator:
    """Each method: (base, rng, index) -> [(suffix, raw, expect)]: seeded changes of a valid message. Where a kind
    has variants, the base's position `index` cycles through them, so each variant occurs."""

    def __init__(self, pki: Pki, stranger_ec: x509.Certificate):
        self.pki = pki
        self.stranger_ec = stranger_ec

    def text(self, base, rng, index):
        out = []
        count = sum(1 for el in body_elements(parse(base.raw)) if el.text)
        for index in range(count):
            root = parse(base.raw)
            element = [el for el in body_elements(root) if el.text][index]
            element.text = changed_char(element.text, rng)
            out.append((f"{local(element.tag)}", dump(root), False))
        return out

    def attr_add(self, base, rng, index):
        root = parse(base.raw)
        rng.choice(body_elements(root)).set("audit", "1")
        return [("", dump(root), False)]

    def _attribute(self, root, rng):
        found = [(el, name) for el in body_elements(root) for name in el.attrib]
        content = [(el, name) for el, name in found if local(name) not in ID_NAMES]
        return rng.choice(content or found)

    def attr_remove(self, base, rng, index):
        root = parse(base.raw)
        element, name = self._attribute(root, rng)
        del element.attrib[name]
        return [(local(name), dump(root), False)]

    def attr_change(self, base, rng, index):
        root = parse(base.raw)
        element, name = self._attribute(root, rng)
        element.set(name, changed_char(element.get(name), rng))
        return [(local(name), dump(root), False)]

    def element_add(self, base, rng, index):
        root = parse(base.raw)
        parent = rng.choice(body_elements(root))
        extra = etree.Element(f"{{{ATTACKER}}}Injected")
        extra.text = "x"
        parent.insert(rng.randrange(len(parent) + 1), extra)
        return [(local(parent.tag), dump(root), False)]

    @staticmethod
    def _body_region(raw: bytes) -> tuple[int, int]:
        return raw.index(b"<soap:Body"), raw.index(b"</soap:Body>")

    def ns_rebind(self, base, rng, index):
        """Rebind, at its declaration, a prefix declared inside the Body. Ours signs with a PrefixList of every
        in-scope prefix, so even QName-only prefixes (xs of xsi:type) are signed; others may leave those out."""
        start, end = self._body_region(base.raw)
        declarations = [m for m in re.finditer(rb'xmlns:(\w+)="([^"]*)"', base.raw) if start <= m.start() < end]
        match = rng.choice(declarations)
        prefix = match.group(1)
        raw = base.raw[:match.start(2)] + f"{ATTACKER}:{prefix.decode()}".encode() + base.raw[match.end(2):]
        used = re.search(rb"<" + prefix + rb":|\s" + prefix + rb":\w+=", base.raw[start:end]) is not None
        return [(prefix.decode(), raw, False if used or base.origin == "ours" else None)]

    def ns_shadow(self, base, rng, index):
        """Declare sync (in scope, unused below) anew on <request>: signed only where a PrefixList names it."""
        raw = base.raw.replace(b"<request>", f'<request xmlns:sync="{ATTACKER}">'.encode(), 1)
        assert raw != base.raw
        return [("", raw, base.origin != "ours")]

    def digest_value(self, base, rng, index):
        root = parse(base.raw)
        value = one(body_reference(root), "ds:DigestValue")
        value.text = flip(value.text, rng)
        return [("", dump(root), False)]

    def sigvalue_byte(self, base, rng, index):
        root = parse(base.raw)
        value = one(root, "//ds:SignatureValue")
        value.text = flip(value.text, rng)
        return [("", dump(root), False)]

    def sigvalue_truncate(self, base, rng, index):
        root = parse(base.raw)
        value = one(root, "//ds:SignatureValue")
        cut = rng.randint(1, 8)
        value.text = b64(base64.b64decode(value.text)[:-cut])
        return [(str(cut), dump(root), False)]

    def ref_uri(self, base, rng, index):
        """A Reference URI changed, and SignedInfo sealed again by the signer: only resolution is at stake."""
        root = parse(base.raw)
        reference = body_reference(root)
        body_id = reference.get("URI")[1:]
        label, target = cycle([("missing", "#missing"), ("empty", ""), ("xpointer-root", "#xpointer(/)"),
                               ("other-case", "#" + body_id.upper()), ("xpointer-id", f"#xpointer(id('{body_id}'))")],
                              index)
        reference.set("URI", target)
        seal(one(root, "//ds:Signature"), base.signer.key)
        return [(label, dump(root), False)]

    def no_signature(self, base, rng, index):
        root = parse(base.raw)
        signature = one(root, "//ds:Signature")
        signature.getparent().remove(signature)
        return [("", dump(root), False)]

    def cert_swap(self, base, rng, index):
        root = parse(base.raw)
        # The same key type, so the value check itself fails, not a key/method mismatch.
        other = self.pki.other.cert if base.signer is self.pki.rsa else self.stranger_ec
        tokens = root.xpath("//wsse:KeyIdentifier | //wsse:BinarySecurityToken", namespaces=NS)
        if tokens:
            tokens[0].text = der(other)
        else:  # a certificate the test PKI knows
            one(root, "//ds:X509SerialNumber").text = str(self.pki.other.cert.serial_number)
        return [("", dump(root), False)]

    def xsw(self, base, rng, index):
        root = parse(base.raw)
        header, body = root.find(c.HEADER), root.find(c.BODY)
        variant = cycle(["wrapper-new-body", "wrapper-only", "wrapper-in-security", "new-body-same-id",
                         "nested-in-new-body"], index)
        wrapper = etree.Element(f"{{{ATTACKER}}}Wrapper")
        evil = etree.Element(c.BODY)
        evil.append(parse(envelope(text="evil")).find(c.BODY)[0])
        if variant == "wrapper-in-security":
            one(root, "//wsse:Security").append(wrapper)
        elif variant == "nested-in-new-body":
            evil.append(wrapper)
        else:
            header.append(wrapper)
        wrapper.append(body)
        if variant == "new-body-same-id":
            evil.set(WSU_ID, body.get(WSU_ID))
        if variant != "wrapper-only":
            root.append(evil)
        return [(variant, dump(root), False)]

    def dup_id(self, base, rng, index):
        root = parse(base.raw)
        label, attribute = cycle(list(ID_SPELLINGS.items()), index)
        decoy = etree.Element(f"{{{ATTACKER}}}Decoy")
        decoy.set(attribute, root.find(c.BODY).get(WSU_ID))
        place = cycle(["header", "security", "after-body"], index)
        parent = {"header": root.find(c.HEADER), "security": one(root, "//wsse:Security"), "after-body": root}
        parent[place].append(decoy)
        return [(f"{label}-{place}", dump(root), False)]

    def comment(self, base, rng, index):
        """Exclusive C14N without comments: comments in signed content are not signed (stays valid)."""
        root = parse(base.raw)
        variant = cycle(["between-elements", "split-text", "in-signedinfo", "in-digestvalue"], index)
        if variant == "split-text":
            element = rng.choice([el for el in body_elements(root) if el.text and len(el.text) > 1])
            index = rng.randrange(1, len(element.text))
            note = etree.Comment(" x ")
            note.tail = element.text[index:]
            element.text = element.text[:index]
            element.insert(0, note)
        elif variant == "in-digestvalue":  # SignedInfo's C14N leaves it out: the value is still what was signed
            value = one(body_reference(root), "ds:DigestValue")
            note = etree.Comment(" unsigned ")
            note.tail, value.text = value.text[20:], value.text[:20]
            value.append(note)
        elif variant == "in-signedinfo":
            info = one(root, "//ds:SignedInfo")
            info.insert(rng.randrange(len(info) + 1), etree.Comment(" unsigned "))
        else:
            parent = rng.choice(body_elements(root))
            parent.insert(rng.randrange(len(parent) + 1), etree.Comment(" unsigned "))
        return [(variant, dump(root), True)]

    def ws_inside(self, base, rng, index):
        root = parse(base.raw)
        variant = cycle(["body-text", "element-tail", "signedinfo"], index)
        if variant == "signedinfo":
            element = rng.choice(list(one(root, "//ds:SignedInfo"))[:-1])
        elif variant == "body-text":
            element = None
            root.find(c.BODY).text = (root.find(c.BODY).text or "") + "\n  "
        else:
            element = rng.choice([el for el in body_elements(root)[1:] if el.getnext() is not None] or
                                 body_elements(root)[1:])
        if element is not None:
            element.tail = (element.tail or "") + "\n    "
        return [(variant, dump(root), False)]

    def ws_outside(self, base, rng, index):
        variant = cycle(["envelope", "header-tail", "security", "signature", "body-start-tag", "prolog"], index)
        if variant == "body-start-tag":  # C14N normalises whitespace between attributes
            return [(variant, base.raw.replace(b"<soap:Body ", b"<soap:Body \n\t  ", 1), True)]
        if variant == "prolog":
            return [(variant, base.raw.replace(b"?>", b"?>\n\n", 1) + b"\n", True)]
        root = parse(base.raw)
        if variant == "envelope":
            root.text = "\n  "
        elif variant == "header-tail":
            root.find(c.HEADER).tail = "\n  "
        elif variant == "security":
            for child in one(root, "//wsse:Security"):
                child.tail = "\n    "
        else:  # between SignedInfo, SignatureValue and KeyInfo: not under SignedInfo
            for child in one(root, "//ds:Signature"):
                child.tail = "\n      "
        return [(variant, dump(root), True)]


def wss_cases(pki: Pki) -> list[tuple[str, bytes, bool | None]]:
    """The messages of tests/test_wss.py (round trips, refusals), rebuilt here as corpus entries."""
    rsa, ec = pki.rsa, pki.ec
    cases = []

    def add(name, raw, expect):
        cases.append((name, raw, expect))

    signed = wss.sign_envelope(envelope(), rsa.key, rsa.cert)
    signed_ts = wss.sign_envelope(envelope(), rsa.key, rsa.cert, timestamp_seconds=60)
    body_id = parse(signed).find(c.BODY).get(WSU_ID)

    add("missing-signature", envelope(), False)
    add("empty-security", edited(envelope(), lambda r: etree.SubElement(r.find(c.HEADER), wss.SECURITY)), False)

    def second_signature(root):
        signature = one(root, "//ds:Signature")
        signature.getparent().append(etree.fromstring(etree.tostring(signature)))
    add("two-signatures", edited(signed, second_signature), False)
    add("tampered-body", wss.sign_envelope(envelope(text="hello"), ec.key, ec.cert)
        .replace(b"<senderId>consumer<", b"<senderId>intruder<"), False)

    def first_char(root):
        value = one(root, "//ds:SignatureValue")
        value.text = ("B" if value.text[0] == "A" else "A") + value.text[1:]
    add("tampered-signature-value", edited(signed, first_char), False)
    add("someone-elses-certificate", signed.replace(der(rsa.cert).encode(), der(pki.other.cert).encode()), False)

    def wrap(keep_evil):
        def edit(root):
            header, body = root.find(c.HEADER), root.find(c.BODY)
            etree.SubElement(header, f"{{{ATTACKER}}}Wrapper").append(body)
            if keep_evil:
                etree.SubElement(root, c.BODY).append(parse(envelope(text="evil")).find(c.BODY)[0])
        return edit
    add("xsw-wrapper-and-new-body", edited(signed, wrap(True)), False)
    add("xsw-wrapper-only", edited(signed, wrap(False)), False)
    for label, attribute in ID_SPELLINGS.items():
        def decoy(root, attribute=attribute):
            etree.SubElement(root.find(c.HEADER), f"{{{ATTACKER}}}Decoy").set(attribute, body_id)
        add(f"duplicate-id-{label}", edited(signed, decoy), False)

    def drop_reference(prefix):
        def edit(root):
            uri = "#" + root.find(c.BODY).get(WSU_ID) if prefix == "body" else None
            path = f"//ds:Reference[@URI='{uri}']" if uri else "//ds:Reference[starts-with(@URI, '#TS-')]"
            reference = one(root, path)
            reference.getparent().remove(reference)
        return edit
    add("body-not-covered", resign(signed_ts, rsa.key, drop_reference("body")), False)
    add("timestamp-not-covered", resign(signed_ts, rsa.key, drop_reference("ts")), False)

    def times(created: timedelta, expires: timedelta):
        def edit(root):
            moment = datetime.now(timezone.utc)
            one(root, "//wsu:Created").text = instant(moment + created)
            one(root, "//wsu:Expires").text = instant(moment + expires)
        return edit
    add("timestamp-expired", resign(signed_ts, rsa.key, times(-timedelta(minutes=10), -timedelta(minutes=5))), False)
    add("timestamp-future", resign(signed_ts, rsa.key, times(timedelta(minutes=10), timedelta(minutes=20))), False)
    add("timestamp-current", resign(signed_ts, rsa.key, times(-timedelta(minutes=1), timedelta(minutes=5))), True)

    # SHA-1 is compared with allow_sha1 everywhere; the default refusal is asserted on its own below.
    for signature_method, digest_method, name in ((alg.RSA_SHA1, alg.SHA1, "rsa-sha1"),
                                                  (alg.RSA_SHA256, alg.SHA1, "sha1-digest"),
                                                  (alg.RSA_SHA1, alg.SHA256, "rsa-sha1-sha256-digest")):
        add(f"sha1-{name}", resign(signed, rsa.key, signature_method=signature_method, digest_method=digest_method),
            True)
    add("sha1-kalkan-spelling", resign(signed, rsa.key, signature_method=alg.RSA_SHA1_KALKAN,
                                       digest_method=alg.SHA1_KALKAN), True)
    add("sha1-ecdsa", resign(wss.sign_envelope(envelope(), ec.key, ec.cert), ec.key, signature_method=alg.ECDSA_SHA1),
        True)
    # A GOST method over an RSA signature, a GOST digest in place of SHA-256: refused by all three.
    for tag, uri, name in (("ds:SignatureMethod", alg.GOST2004_SIGNATURE, "gost2004-on-rsa"),
                           ("ds:SignatureMethod", alg.GOST2015_512_SIGNATURE, "gost2015-512-on-rsa"),
                           ("ds:Reference/ds:DigestMethod", alg.GOST2015_256_DIGEST, "gost2015-256-digest"),
                           ("ds:SignatureMethod", "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256", "hmac"),
                           ("ds:Reference/ds:DigestMethod", "http://www.w3.org/2001/04/xmldsig-more#md5", "md5")):
        add(f"unsupported-{name}", edited(signed, lambda r, tag=tag, uri=uri: one(r, f"//ds:SignedInfo/{tag}")
                                          .set("Algorithm", uri)), False)

    # XPath "true()" keeps every node, and the enveloped-signature transform is a no-op on a detached Body:
    # the digest stays that of the exc-c14n Body. The filtering XPath drops <password>: digested without it.
    for transform, expression, name in ((alg.ENVELOPED, None, "enveloped"), (XPATH, "true()", "xpath"),
                                        (XPATH, "not(ancestor-or-self::password)", "xpath-filtering")):
        def extra_transform(root, transform=transform, expression=expression, name=name):
            holder = one(root, "//ds:Reference/ds:Transforms")
            element = etree.Element(f"{{{c.DS_NS}}}Transform", Algorithm=transform)
            if expression is not None:
                etree.SubElement(element, f"{{{c.DS_NS}}}XPath").text = expression
            holder.insert(0, element)
            if name == "xpath-filtering":
                filtered = parse(dump(root))
                password = one(filtered, "//password")
                password.getparent().remove(password)
                prefixes = one(root, "//ec:InclusiveNamespaces").get("PrefixList").split()
                one(root, "//ds:Reference/ds:DigestValue").text = b64(alg.digest(alg.SHA256, alg.canonicalize(
                    filtered.find(c.BODY), alg.EXC_C14N, prefixes, comments=False)))
        if name != "xpath-filtering":
            add(f"transform-{name}", edited(signed, extra_transform), False)  # as test_wss: SignedInfo as it was

        def resealed(root, extra_transform=extra_transform):
            extra_transform(root)
            seal(one(root, "//ds:Signature"), rsa.key)
        add(f"transform-{name}-resigned", edited(signed, resealed), False)

    def inclusive(root):
        one(root, "//ds:Reference/ds:Transforms/ds:Transform").set("Algorithm", alg.C14N)

    def no_transforms(root):
        transforms = one(root, "//ds:Reference/ds:Transforms")
        transforms.getparent().remove(transforms)
    add("c14n10-reference", resign(signed, rsa.key, inclusive), True)
    add("no-transform-reference", resign(signed, rsa.key, no_transforms), True)

    bst = wss.sign_envelope(envelope(), rsa.key, rsa.cert, key_info="bst")
    add("bst-removed", edited(bst, lambda r: one(r, "//wsse:BinarySecurityToken").getparent()
                              .remove(one(r, "//wsse:BinarySecurityToken"))), False)
    add("keyidentifier-not-base64", edited(signed, lambda r: setattr(one(r, "//wsse:KeyIdentifier"), "text",
                                                                     "not base64!")), False)
    add("keyidentifier-not-a-certificate", edited(signed, lambda r: setattr(
        one(r, "//wsse:KeyIdentifier"), "text", b64(b"not a certificate"))), False)
    add("keyidentifier-wrong-valuetype", edited(signed, lambda r: one(r, "//wsse:KeyIdentifier").set(
        "ValueType", "urn:X509SubjectKeyIdentifier")), False)
    issuerserial = wss.sign_envelope(envelope(), rsa.key, rsa.cert, key_info="issuerserial")
    add("issuerserial-unknown", edited(issuerserial, lambda r: setattr(one(r, "//ds:X509SerialNumber"), "text",
                                                                       "12345")), False)
    add("issuerserial-java-keywords", edited(issuerserial, lambda r: setattr(
        one(r, "//ds:X509IssuerName"), "text", one(r, "//ds:X509IssuerName").text.replace("2.5.4.5=",
                                                                                          "SERIALNUMBER="))), True)
    add("keyinfo-removed", edited(signed, lambda r: one(r, "//ds:Signature").remove(one(r, "//ds:KeyInfo"))), False)

    def java(root):
        method = one(root, "//ds:CanonicalizationMethod")
        etree.SubElement(method, alg.INCLUSIVE_NAMESPACES, nsmap={"ec": alg.EXC_C14N}, PrefixList="soap wsse")

    def wrapped_value(root):
        value = one(root, "//ds:SignatureValue")
        value.text = "\n".join(value.text[i:i + 76] for i in range(0, len(value.text), 76))
    add("java-inclusive-namespaces", edited(resign(signed, rsa.key, java), wrapped_value), True)
    add("comment-splitting-sender", signed.replace(b"<senderId>consumer", b"<senderId>cons<!-- x -->umer"), True)
    add("expired-certificate", wss.sign_envelope(envelope(), pki.expired.key, pki.expired.cert), True)
    add("rebound-qname-prefix", wss.sign_envelope(envelope("escaped"), rsa.key, rsa.cert).replace(
        f'xmlns:xs="{c.XS_NS}"'.encode(), f'xmlns:xs="{ATTACKER}"'.encode()), False)
    add("doctype", signed.replace(b"?>", b"?>\n<!DOCTYPE soap:Envelope>", 1), False)
    add("not-an-envelope", b"<x/>", False)
    return cases


def variant_cases(pki: Pki) -> list[tuple[str, bytes, bool | None]]:
    """Valid messages off the beaten path: other SHA-2 sizes, SignedInfo C14N variants."""
    rsa, ec = pki.rsa, pki.ec
    signed = wss.sign_envelope(envelope("typed"), rsa.key, rsa.cert, key_info="bst", timestamp_seconds=300)
    signed_ec = wss.sign_envelope(envelope("inline"), ec.key, ec.cert)
    cases = [
        ("rsa-sha512", resign(signed, rsa.key, signature_method=alg.RSA_SHA512, digest_method=alg.SHA512), True),
        ("rsa-sha384-sha512-digest", resign(signed, rsa.key, signature_method=alg.RSA_SHA384,
                                            digest_method=alg.SHA512), True),
        ("ecdsa-sha384", resign(signed_ec, ec.key, signature_method=alg.ECDSA_SHA384, digest_method=alg.SHA384), True),
        ("ecdsa-sha512", resign(signed_ec, ec.key, signature_method=alg.ECDSA_SHA512, digest_method=alg.SHA256), True),
    ]

    def c14n_method(uri, note=None):
        def edit(root):
            one(root, "//ds:CanonicalizationMethod").set("Algorithm", uri)
            if note is not None:
                one(root, "//ds:SignedInfo").insert(2, etree.Comment(note))
        return edit
    # Inclusive C14N of SignedInfo takes the envelope's namespace context in: it must be honoured in place.
    cases.append(("signedinfo-c14n10", resign(signed, rsa.key, c14n_method(alg.C14N)), True))
    # WithComments at SignedInfo level: a comment sealed in is signed, one added afterwards breaks the value.
    with_comments = resign(signed, rsa.key, c14n_method(alg.EXC_C14N_COMMENTS, " signed "))
    cases.append(("signedinfo-exc-with-comments", with_comments, True))
    cases.append(("signedinfo-exc-with-comments-added", with_comments.replace(b"<!-- signed -->",
                                                                              b"<!-- signed --><!-- added -->"),
                  False))
    cases.append(("signedinfo-c14n10-with-comments", resign(signed, rsa.key, c14n_method(alg.C14N_COMMENTS, " s ")),
                  True))
    # A #WithComments transform on a "#id" reference: comments are still not signed (XMLDSig §4.4.3.3).
    for uri, label in ((alg.EXC_C14N_COMMENTS, "exc"), (alg.C14N_COMMENTS, "c14n10")):
        def reference_c14n(root, uri=uri):
            one(body_reference(root), "ds:Transforms/ds:Transform").set("Algorithm", uri)
        with_comments = resign(signed, rsa.key, reference_c14n)
        cases.append((f"reference-{label}-with-comments", with_comments, True))
        cases.append((f"reference-{label}-with-comments-comment-added",
                      with_comments.replace(b"<senderId>", b"<senderId><!-- x -->", 1), True))

    # Comments, PIs and CDATA inside base64 values. Canonical SignedInfo leaves comments out, so a comment in a
    # DigestValue keeps the signed value; a PI stays in it. SignatureValue is not signed.
    def split(path: str, node: Callable[[], etree._Element], reseal: bool = False):
        def edit(root):
            value = one(root, path)
            inserted = node()
            inserted.tail, value.text = value.text[20:], value.text[:20]
            value.append(inserted)
            if reseal:
                seal(one(root, "//ds:Signature"), rsa.key)
        return edit

    plain = wss.sign_envelope(envelope(), rsa.key, rsa.cert)
    cases.append(("comment-in-digestvalue", edited(plain, split("//ds:DigestValue", lambda: etree.Comment("x"))),
                  True))
    cases.append(("pi-in-digestvalue-resealed", edited(plain, split("//ds:DigestValue", lambda: etree.PI("x"), True)),
                  False))
    cases.append(("cdata-in-digestvalue", plain.replace(b"<ds:DigestValue>", b"<ds:DigestValue><![CDATA[", 1)
                  .replace(b"</ds:DigestValue>", b"]]></ds:DigestValue>", 1), True))
    cases.append(("comment-in-signaturevalue", edited(plain, split("//ds:SignatureValue",
                                                                    lambda: etree.Comment("x"))), False))

    # Timestamps in the senders' local offset (+05:00). An unsigned comment before the offset must not turn
    # an expired Expires into a naive, UTC and 5 h later one.
    kz = timezone(timedelta(hours=5))

    def stamp(created: timedelta | None, expires: timedelta | None):
        def edit(root):
            moment, holder = datetime.now(timezone.utc), one(root, "//wsu:Timestamp")
            for tag, delta in ((wss.CREATED, created), (wss.EXPIRES, expires)):
                if delta is None:
                    holder.remove(holder.find(tag))
                else:
                    holder.find(tag).text = (moment + delta).astimezone(kz).isoformat(timespec="milliseconds")
        return edit

    expired = resign(signed, rsa.key, stamp(-timedelta(hours=2), -timedelta(hours=1)))
    current = resign(signed, rsa.key, stamp(-timedelta(minutes=1), timedelta(minutes=4)))
    cases.append(("timestamp-kz-offset", current, True))
    cases.append(("timestamp-kz-offset-expired", expired, False))
    cases.append(("timestamp-kz-offset-expired-comment", expired.replace(b"+05:00</wsu:Expires>",
                                                                         b"<!---->+05:00</wsu:Expires>"), False))
    cases.append(("timestamp-kz-offset-comment", current.replace(b"+05:00</wsu:Expires>",
                                                                 b"<!---->+05:00</wsu:Expires>"), True))
    cases.append(("timestamp-without-expires", resign(signed, rsa.key, stamp(-timedelta(minutes=1), None)), True))
    # WS-I Basic Security Profile R3203: a Timestamp has exactly one Created.
    cases.append(("timestamp-without-created", resign(signed, rsa.key, stamp(None, timedelta(minutes=4))), False))

    # The Body signed under each Id spelling the profile accepts (digest and value computed afresh).
    for label, attribute in ID_SPELLINGS.items():
        def rename(root, attribute=attribute):
            body = root.find(c.BODY)
            value = body.attrib.pop(WSU_ID)
            body.set(attribute, value)
            reference = body_reference_by(root, value)
            prefixes = one(reference, ".//ec:InclusiveNamespaces").get("PrefixList").split()
            one(reference, "ds:DigestValue").text = b64(alg.digest(alg.SHA256, alg.canonicalize(
                body, alg.EXC_C14N, prefixes, comments=False)))
            seal(one(root, "//ds:Signature"), rsa.key)
        cases.append((f"body-id-{label}", edited(plain, rename), True))
    return cases


@dataclass
class Corpus:
    pki: Pki
    cases: list[Case]


def stranger_certificate() -> x509.Certificate:
    """A self-signed EC certificate: swapped into EC messages, so the value check fails on a key of the right type."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stranger EC")])
    moment = datetime.now(timezone.utc)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(moment - timedelta(days=1))
            .not_valid_after(moment + timedelta(days=10)).sign(key, hashes.SHA256()))


def build_corpus(pki: Pki) -> Corpus:
    rng = random.Random(SEED)
    stranger = stranger_certificate()
    bases = make_bases(pki)
    cases: list[Case] = [Case(f"base/{b.name}", "base", b.raw, True) for b in bases]
    cases += [Case(f"wss/{name}", "wss", raw, expect) for name, raw, expect in wss_cases(pki)]
    cases += [Case(f"variant/{name}", "variant", raw, expect) for name, raw, expect in variant_cases(pki)]
    mutator = Mutator(pki, stranger)
    for kind in MUTATIONS:
        method = getattr(mutator, kind.replace("-", "_"))
        # Every base for the cheap structural kinds, a seeded sample for the rest keeps ~200 cases.
        chosen = rng.sample(bases, 3) if kind == "text" else bases if kind in ("cert-swap", "xsw") else \
            rng.sample(bases, 7)
        for index, base in enumerate(chosen):
            for suffix, raw, expect in method(base, rng, index):
                name = f"{kind}/{base.name}" + (f"/{suffix}" if suffix else "")
                cases.append(Case(name, kind, raw, expect))
    names = Counter(case.name for case in cases)
    assert not [name for name, count in names.items() if count > 1], "case names must be unique"
    return Corpus(pki, cases)


# --- the three verdicts ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Verdict:
    accepted: bool
    why: str = ""

    def __str__(self) -> str:
        return "ACCEPT" if self.accepted else f"refuse ({self.why})"


ACCEPT = Verdict(True)


def ours(corpus: Corpus, case: Case, moment: datetime, policy: AlgorithmPolicy = ALLOW_SHA1) -> Verdict:
    try:
        wss.verify_envelope(case.raw, policy=policy, now=moment, certificates=corpus.pki.lookup)
    except SignatureError as error:
        return Verdict(False, error.name)
    except (ValueError, etree.XMLSyntaxError) as error:  # the hardened parser's refusals
        return Verdict(False, f"parser: {error}")
    except Exception as error:  # a crash is a bug, never a verdict
        raise AssertionError(f"{case.name}: verify_envelope crashed") from error
    return ACCEPT


_PLAIN = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def _root(raw: bytes) -> etree._Element | None:
    try:
        return etree.fromstring(raw, _PLAIN)
    except etree.XMLSyntaxError:
        return None


def _signature(root: etree._Element) -> etree._Element | None:
    """The ds:Signature both oracles are pointed at: the first in Header/wsse:Security (signxml's `location`)."""
    found = root.xpath("/soap:Envelope/soap:Header/wsse:Security/ds:Signature", namespaces=NS)
    return found[0] if found else None


def _id_owners(root: etree._Element) -> dict[str, list[etree._Element]]:
    owners: dict[str, list[etree._Element]] = {}
    for element in root.iter():
        if isinstance(element.tag, str):
            for value in {value for name, value in element.attrib.items() if local(name) in ID_NAMES}:
                owners.setdefault(value, []).append(element)
    return owners


def token_certificate(root: etree._Element, pki: Pki) -> x509.Certificate | None:
    """The signer's certificate per the WSS X.509 token profile (KeyIdentifier or BST, ValueType X509v3,
    base64), or X509IssuerSerial looked up in the test PKI; None when the KeyInfo names none."""
    signature = _signature(root)
    key_info = None if signature is None else signature.find(f"{{{c.DS_NS}}}KeyInfo")
    if key_info is None:
        return None
    holder = key_info.find(wss.TOKEN_REFERENCE)
    holder = key_info if holder is None else holder
    token = holder.find(wss.KEY_IDENTIFIER)
    reference = holder.find(wss.WSSE_REFERENCE)
    if reference is not None:
        uri = reference.get("URI", "")
        owners = _id_owners(root).get(uri[1:], []) if uri.startswith("#") else []
        token = owners[0] if len(owners) == 1 and owners[0].tag == wss.BINARY_SECURITY_TOKEN else None
    if token is not None:
        if token.get("ValueType") != wss.X509V3 or token.get("EncodingType", wss.BASE64_BINARY) != wss.BASE64_BINARY:
            return None
        try:
            return x509.load_der_x509_certificate(base64.b64decode("".join((token.text or "").split()), validate=True))
        except ValueError:
            return None
    serial = holder.find(f"{{{c.DS_NS}}}X509Data/{{{c.DS_NS}}}X509IssuerSerial")
    if serial is None:
        return None
    try:
        issuer = x509.Name.from_rfc4514_string(serial.findtext(f"{{{c.DS_NS}}}X509IssuerName"),
                                               {"SERIALNUMBER": NameOID.SERIAL_NUMBER})
        return pki.lookup(name_key(issuer), int(serial.findtext(f"{{{c.DS_NS}}}X509SerialNumber")))
    except (TypeError, ValueError):
        return None


def profile_problem(raw: bytes, covered: list[str | None], moment: datetime) -> str | None:
    """The gateway's structural rules, applied to what an oracle proved on `raw`: `covered` are the Ids of the
    elements whose digests it verified (None: a signed node-set that is no '#Id' element). None when they hold,
    else why not: one Signature in wsse:Security, exactly one soap:Body and it is the Envelope's child, every
    signed Id on exactly one element (under any Id-like name), the Body among the signed, a present
    wsu:Timestamp signed and current."""
    root = _root(raw)
    signatures = root.xpath("/soap:Envelope/soap:Header/wsse:Security/ds:Signature", namespaces=NS)
    if len(signatures) != 1:
        return f"{len(signatures)} ds:Signature in wsse:Security"
    bodies = root.xpath("//soap:Body", namespaces=NS)
    if len(bodies) != 1 or bodies[0].getparent() is not root:
        return f"wrapping: {len(bodies)} soap:Body, the Envelope's own {'not ' if root.find(c.BODY) is None else ''}" \
               "among them"
    owners = _id_owners(root)
    for value in covered:
        if value is None:
            return "a signed node-set that is not an '#Id' element"
        if len(owners.get(value, ())) != 1:
            return f"Id {value!r} is on {len(owners.get(value, ()))} elements"
    signed = [owners[value][0] for value in covered]
    if not any(element is bodies[0] for element in signed):
        return "the soap:Body is not signed"
    stamps = root.xpath("/soap:Envelope/soap:Header/wsse:Security/wsu:Timestamp", namespaces=NS)
    if stamps:
        if len(stamps) > 1 or not any(element is stamps[0] for element in signed):
            return "wsu:Timestamp not signed"
        created, expires = (_instant(stamps[0].find(tag)) for tag in (wss.CREATED, wss.EXPIRES))
        if created is None:
            return "wsu:Timestamp without a readable Created (WS-I BSP R3203)"
        if created > moment + SKEW or (expires is not None and expires <= moment):
            return "wsu:Timestamp not current"
    return None


def _instant(element: etree._Element | None) -> datetime | None:
    """xs:dateTime of a signed element's string-value (comments are not signed content); no offset means UTC."""
    if element is None:
        return None
    try:
        value = datetime.fromisoformat("".join(element.itertext()).strip())
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _signed_id(element: etree._Element | None) -> str | None:
    if element is None:
        return None
    return next((value for name, value in element.attrib.items() if local(name) in ID_NAMES), None)


def by_signxml(corpus: Corpus, case: Case, moment: datetime) -> Verdict:
    root = _root(case.raw)
    cert = None if root is None else token_certificate(root, corpus.pki)
    if cert is None:
        return Verdict(False, "no certificate in KeyInfo")
    references = len(_signature(root).findall(f"{{{c.DS_NS}}}SignedInfo/{{{c.DS_NS}}}Reference"))
    config = SignatureConfiguration(
        location=LOCATION, expect_references=references, signature_methods=SIGNXML_METHODS,
        digest_algorithms=SIGNXML_DIGESTS,
        # Validity is the gateway's certs check, not the verifier's: check at a moment the certificate is valid.
        verification_time=cert.not_valid_before_utc + (cert.not_valid_after_utc - cert.not_valid_before_utc) / 2)
    try:
        # validate_schema=False as library-notes §2.8 advises: its schema refuses WSS4J's InclusiveNamespaces.
        results = XMLVerifier().verify(case.raw, x509_cert=cert, expect_config=config, validate_schema=False)
    except Exception as error:  # signxml raises InvalidInput, InvalidDigest, ValueError (unknown URIs), …
        return Verdict(False, f"{type(error).__name__}: {str(error)[:90]}")
    results = results if isinstance(results, list) else [results]
    covered = [_signed_id(result.signed_xml) for result in results]
    body_id = _signed_id(root.find(c.BODY))
    if any(_signed_id(r.signed_xml) == body_id and r.signed_xml.tag != c.BODY for r in results):
        return Verdict(False, "the element signed under the Body's Id is no soap:Body")
    problem = profile_problem(case.raw, covered, moment)
    return ACCEPT if problem is None else Verdict(False, f"profile: {problem}")


def by_xmlsec1(corpus: Corpus, case: Case, moment: datetime) -> Verdict:
    root = _root(case.raw)
    cert = None if root is None else token_certificate(root, corpus.pki)
    if cert is None:
        return Verdict(False, "no certificate in KeyInfo")
    result = xmlsec_oracle.verify(case.raw, cert=cert, ids=XMLSEC1_IDS)
    if not result.ok:
        # "func=…:error=12:invalid data:data and digest do not match", the SignedInfo counts, or the wheel's error
        causes = [line.split(":error=")[1][:100] for line in result.detail.splitlines() if ":error=" in line]
        return Verdict(False, causes[0] if causes else result.detail.strip()[-90:])
    uris = _signature(root).xpath("ds:SignedInfo/ds:Reference/@URI", namespaces=NS)
    if result.references != len(uris):
        return Verdict(False, f"not every Reference verified: {result.detail[-200:]!r}")
    covered = [uri[1:] if uri.startswith("#") and not uri.startswith("#xpointer(") else None for uri in uris]
    problem = profile_problem(case.raw, covered, moment)
    return ACCEPT if problem is None else Verdict(False, f"profile: {problem}")


@dataclass(frozen=True)
class Verdicts:
    ours: Verdict
    signxml: Verdict
    xmlsec1: Verdict

    def accepted(self) -> tuple[bool, bool, bool]:
        return self.ours.accepted, self.signxml.accepted, self.xmlsec1.accepted

    def agree(self) -> bool:
        return len(set(self.accepted())) == 1


# --- fixtures and tests ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return build_corpus(make_pki())


@pytest.fixture(scope="module")
def verdicts(corpus) -> dict[str, Verdicts]:
    moment = datetime.now(timezone.utc)  # one clock for ours and the profile; corpus Timestamps last 60-300 s
    with ThreadPoolExecutor(max_workers=4) as pool:  # the xmlsec1 command is a process per case: a few at once
        by_xmlsec = list(pool.map(lambda case: by_xmlsec1(corpus, case, moment), corpus.cases))
    return {case.name: Verdicts(ours(corpus, case, moment), by_signxml(corpus, case, moment), xmlsec)
            for case, xmlsec in zip(corpus.cases, by_xmlsec, strict=True)}


def _table(rows: list[tuple[str, Verdicts]]) -> str:
    return "\n".join(f"{name}\n    ours:    {v.ours}\n    signxml: {v.signxml}\n    xmlsec1: {v.xmlsec1}"
                     for name, v in rows)


def test_all_three_verifiers_agree_on_every_case(verdicts):
    disagreements = [(name, v) for name, v in verdicts.items() if name not in EXPECTED_DIFFERENCES and not v.agree()]
    assert not disagreements, f"{len(disagreements)} disagreement(s):\n{_table(disagreements)}"


def test_expected_differences_are_exactly_these(verdicts):
    wrong = [(f"{name} (expected ours/signxml/xmlsec1 = {expected}: {reason})", verdicts[name])
             for name, (expected, reason) in EXPECTED_DIFFERENCES.items() if verdicts[name].accepted() != expected]
    assert not wrong, _table(wrong)


def test_agreed_verdicts_match_the_corpus_intent(corpus, verdicts):
    """Guards the harness: three verifiers wrong the same way (say, a wrong certificate) would still agree."""
    wrong = [(f"{case.name} (intended {'accept' if case.expect else 'refuse'})", verdicts[case.name])
             for case in corpus.cases
             if case.expect is not None and case.name not in EXPECTED_DIFFERENCES
             and verdicts[case.name].ours.accepted != case.expect]
    assert not wrong, _table(wrong)


def test_corpus_is_large_varied_and_not_vacuous(corpus, verdicts):
    kinds = Counter(case.kind for case in corpus.cases)
    assert 100 <= len(corpus.cases) <= 300, kinds
    assert [kind for kind in MUTATIONS if kinds[kind] == 0] == []
    accepted = sum(1 for v in verdicts.values() if all(v.accepted()))
    refused = sum(1 for v in verdicts.values() if not any(v.accepted()))
    assert accepted >= 40 and refused >= 80, (accepted, refused)
    # Refusals for many distinct reasons, not one harness failure repeated.
    assert len({v.ours.why for v in verdicts.values() if not v.ours.accepted}) >= 8
    assert len({v.signxml.why.split(":")[0] for v in verdicts.values() if not v.signxml.accepted}) >= 4


def test_default_policy_refuses_what_allow_sha1_admits(corpus):
    moment = datetime.now(timezone.utc)
    sha1 = [case for case in corpus.cases if case.name.startswith("wss/sha1-")]
    assert len(sha1) == 5
    for case in sha1:
        assert ours(corpus, case, moment, AlgorithmPolicy()) == Verdict(False, "SIGNATURE_ALGORITHM_REFUSED"), case.name
