"""XMLDSig: the ds:Signature structure both signatures share, and the payload EDS (ЭЦП, contract §9).

The payload signature is enveloped, the last child of the business document: Reference URI="",
c14n 1.0, transforms enveloped-signature + c14n#WithComments, KeyInfo/X509Data/X509Certificate.
Only which certificate signed is proven here; whether it is trusted is `certs`' question.
"""
from __future__ import annotations

import base64
import binascii
import copy
import hmac
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from gateway.contract import DS_NS, PARSER, XSI_TYPE, q
from gateway.security.gost.x509 import public_key as certificate_key
from gateway.security.algorithms import (C14N, C14N_COMMENTS, C14N_METHODS, ENVELOPED, EXC_C14N,
                                         INCLUSIVE_NAMESPACES, AlgorithmPolicy, SignatureError, b64decode,
                                         canonicalize, digest, inclusive_prefixes, load_certificate, malformed,
                                         methods_for_key, sign_value, verify_value)

SIGNATURE = q(DS_NS, "Signature")
SIGNED_INFO = q(DS_NS, "SignedInfo")
CANONICALIZATION_METHOD = q(DS_NS, "CanonicalizationMethod")
SIGNATURE_METHOD = q(DS_NS, "SignatureMethod")
REFERENCE = q(DS_NS, "Reference")
TRANSFORMS = q(DS_NS, "Transforms")
TRANSFORM = q(DS_NS, "Transform")
DIGEST_METHOD = q(DS_NS, "DigestMethod")
DIGEST_VALUE = q(DS_NS, "DigestValue")
SIGNATURE_VALUE = q(DS_NS, "SignatureValue")
KEY_INFO = q(DS_NS, "KeyInfo")
X509_DATA = q(DS_NS, "X509Data")
X509_CERTIFICATE = q(DS_NS, "X509Certificate")
MAX_REFERENCES = 16


# --- the ds:Signature structure, shared with wss -------------------------------------------------

@dataclass(frozen=True)
class Reference:
    uri: str | None
    transforms: tuple[str, ...]
    prefixes: list[str] | None  # InclusiveNamespaces PrefixList of the exc-c14n transform
    digest_method: str
    digest_value: str

    def c14n_method(self, skip: int = 0) -> str:
        """The C14N this reference is digested with, after `skip` leading transforms: its one C14N
        transform, or C14N 1.0 when there is none (XMLDSig 1.1 §4.4.3.2). Anything else is refused."""
        rest = self.transforms[skip:]
        if not rest:
            return C14N
        if len(rest) == 1 and rest[0] in C14N_METHODS:
            return rest[0]
        raise malformed(f"reference {self.uri!r}: unsupported transforms {', '.join(self.transforms)}")

    def matches(self, data: bytes) -> bool:
        try:
            expected = b64decode(self.digest_value)
        except binascii.Error:
            return False
        return hmac.compare_digest(digest(self.digest_method, data), expected)


@dataclass(frozen=True)
class ParsedSignature:
    signed_info: etree._Element
    c14n_method: str
    c14n_prefixes: list[str] | None
    signature_method: str
    references: list[Reference]
    value: str
    key_info: etree._Element | None

    def verifies(self, public_key) -> bool:
        """Whether SignatureValue signs the canonical SignedInfo (canonicalised in place, in its context)."""
        try:
            value = b64decode(self.value)
        except binascii.Error:
            return False
        signed = canonicalize(self.signed_info, self.c14n_method, self.c14n_prefixes)
        return verify_value(public_key, self.signature_method, value, signed)


def _algorithm(parent: etree._Element, tag: str) -> str:
    element = parent.find(tag)
    algorithm = None if element is None else element.get("Algorithm")
    if not algorithm:
        raise malformed(f"{etree.QName(parent).localname} has no {etree.QName(tag).localname} Algorithm")
    return algorithm


def _signed_text(element: etree._Element | None) -> str | None:
    """The text of a signed value: comments are no part of it (C14N leaves them out), so they do not cut it short."""
    if element is None:
        return None
    return (element.text or "") + "".join(child.tail or "" for child in element if child.tag is etree.Comment)


def _reference(element: etree._Element) -> Reference:
    transforms, prefixes = [], None
    for transform in element.iterfind(f"{TRANSFORMS}/{TRANSFORM}"):
        transforms.append(transform.get("Algorithm", ""))
        prefixes = inclusive_prefixes(transform)  # only a last C14N transform is ever accepted
    value = _signed_text(element.find(DIGEST_VALUE))
    if value is None:
        raise malformed(f"reference {element.get('URI')!r} has no DigestValue")
    return Reference(element.get("URI"), tuple(transforms), prefixes, _algorithm(element, DIGEST_METHOD), value)


def read_signature(signature: etree._Element, policy: AlgorithmPolicy) -> ParsedSignature:
    """The parts of a ds:Signature, its algorithms admitted by `policy` (before any crypto is spent)."""
    signed_info = signature.find(SIGNED_INFO)
    value = signature.findtext(SIGNATURE_VALUE)
    if signed_info is None or value is None:
        raise malformed("ds:Signature needs SignedInfo and SignatureValue")
    c14n = _algorithm(signed_info, CANONICALIZATION_METHOD)
    method = _algorithm(signed_info, SIGNATURE_METHOD)
    references = [_reference(element) for element in signed_info.iterfind(REFERENCE)]
    if not 0 < len(references) <= MAX_REFERENCES:
        # The cap keeps one message from buying thousands of canonicalisations.
        raise malformed(f"SignedInfo has {len(references)} References: 1 to {MAX_REFERENCES} are accepted")
    for reference in references:
        policy.check(method, reference.digest_method)
    if c14n not in C14N_METHODS:
        raise malformed(f"unsupported CanonicalizationMethod {c14n!r}")
    return ParsedSignature(signed_info, c14n, inclusive_prefixes(signed_info.find(CANONICALIZATION_METHOD)),
                           method, references, value, signature.find(KEY_INFO))


def new_signature(parent: etree._Element, signature_method: str, digest_method: str,
                  references: list[tuple[str, list[tuple[str, list[str] | None]], bytes]],
                  c14n_method: str) -> etree._Element:
    """Append ds:Signature (SignedInfo + empty SignatureValue) to `parent`; references are
    (URI, [(transform, PrefixList or None)], digest). Add KeyInfo, then `seal` it."""
    signature = etree.SubElement(parent, SIGNATURE, nsmap={"ds": DS_NS})
    signed_info = etree.SubElement(signature, SIGNED_INFO)
    etree.SubElement(signed_info, CANONICALIZATION_METHOD, Algorithm=c14n_method)
    etree.SubElement(signed_info, SIGNATURE_METHOD, Algorithm=signature_method)
    for uri, transforms, value in references:
        reference = etree.SubElement(signed_info, REFERENCE, URI=uri)
        holder = etree.SubElement(reference, TRANSFORMS)
        for algorithm, prefixes in transforms:
            transform = etree.SubElement(holder, TRANSFORM, Algorithm=algorithm)
            if prefixes:
                etree.SubElement(transform, INCLUSIVE_NAMESPACES, nsmap={"ec": EXC_C14N}, PrefixList=" ".join(prefixes))
        etree.SubElement(reference, DIGEST_METHOD, Algorithm=digest_method)
        etree.SubElement(reference, DIGEST_VALUE).text = base64.b64encode(value).decode()
    etree.SubElement(signature, SIGNATURE_VALUE)
    return signature


def seal(signature: etree._Element, key) -> None:
    """Fill SignatureValue; the Signature must already sit at its final place (inclusive C14N sees context)."""
    signed_info = signature.find(SIGNED_INFO)
    c14n = signed_info.find(CANONICALIZATION_METHOD)
    method = signed_info.find(SIGNATURE_METHOD).get("Algorithm")
    value = sign_value(key, method, canonicalize(signed_info, c14n.get("Algorithm"), inclusive_prefixes(c14n)))
    signature.find(SIGNATURE_VALUE).text = base64.b64encode(value).decode()


@lru_cache(maxsize=32)  # the gateway signs every forward with the same few certificates
def der_base64(cert: x509.Certificate) -> str:
    return base64.b64encode(cert.public_bytes(Encoding.DER)).decode()


# --- the payload EDS ----------------------------------------------------------------------------------

@dataclass
class VerifiedDocument:
    certificate: x509.Certificate
    root: etree._Element  # the verified document (what may be processed)
    signature_method: str
    digest_method: str


def _document(root: etree._Element):
    """What Reference URI="" covers: the whole document when `root` is its root (top-level PIs
    included), else the subtree of `root`."""
    return root.getroottree() if root.getparent() is None else root


def sign_document(root: etree._Element, key, cert: x509.Certificate) -> etree._Element:
    """A signed copy of `root` (a standalone document; `root` is left as it was)."""
    signed = copy.deepcopy(root)  # lxml copies the in-scope declarations onto the new root
    signature_method, digest_method = methods_for_key(key)
    value = digest(digest_method, canonicalize(_document(signed), C14N, comments=False))
    signature = new_signature(signed, signature_method, digest_method,
                              [("", [(ENVELOPED, None), (C14N_COMMENTS, None)], value)], C14N)
    data = etree.SubElement(etree.SubElement(signature, KEY_INFO), X509_DATA)
    etree.SubElement(data, X509_CERTIFICATE).text = der_base64(cert)
    seal(signature, key)
    return signed


def _last_element(root: etree._Element) -> etree._Element | None:
    return next((child for child in reversed(root) if isinstance(child.tag, str)), None)


@contextmanager
def _enveloped(signature: etree._Element):
    """The enveloped-signature transform: the document without the Signature element, its tail text
    kept in place (lxml would take it along), restored afterwards."""
    parent, previous, tail = signature.getparent(), signature.getprevious(), signature.tail
    index = parent.index(signature)
    saved = parent.text if previous is None else previous.tail
    if tail:
        if previous is None:
            parent.text = (saved or "") + tail
        else:
            previous.tail = (saved or "") + tail
    parent.remove(signature)
    try:
        yield
    finally:
        parent.insert(index, signature)
        signature.tail = tail
        if previous is None:
            parent.text = saved
        else:
            previous.tail = saved


def verify_document(root: etree._Element | bytes, *, policy: AlgorithmPolicy) -> VerifiedDocument:
    """Verify the enveloped signature that is the last element child of `root`; unsigned comments
    are then stripped from the returned root, so what is processed is what was digested."""
    if isinstance(root, bytes):
        root = PARSER.parse(root).getroot()
    signature = _last_element(root)
    if signature is None or signature.tag != SIGNATURE:
        raise SignatureError("PAYLOAD_SIGNATURE_MISSING", "the document's last child is not a ds:Signature")
    parsed = read_signature(signature, policy)
    reference = parsed.references[0]
    if len(parsed.references) != 1 or reference.uri != "":
        raise malformed('the payload signature must have exactly one Reference, URI="" (the whole document)')
    if reference.transforms[:1] != (ENVELOPED,):
        raise malformed("the payload Reference must start with the enveloped-signature transform")
    c14n = reference.c14n_method(skip=1)
    encoded = None if parsed.key_info is None else parsed.key_info.findtext(f"{X509_DATA}/{X509_CERTIFICATE}")
    if encoded is None:
        # Not an X509IssuerSerial alone: the document travels to parties that do not share the gateway's
        # certificate index, and each verifies it on its own.
        raise malformed("the payload signature has no KeyInfo/X509Data/X509Certificate: a signed document "
                        "carries its certificate (contract §9)")
    certificate = load_certificate(encoded)
    with _enveloped(signature):
        document = canonicalize(_document(root), c14n, reference.prefixes, comments=False)
    if not reference.matches(document):
        raise SignatureError("PAYLOAD_SIGNATURE_INVALID", "the digest does not match: the document was changed")
    if not parsed.verifies(certificate_key(certificate)):
        raise SignatureError("PAYLOAD_SIGNATURE_INVALID",
                             "the signature value does not verify with the KeyInfo certificate")
    etree.strip_tags(root, etree.Comment)
    return VerifiedDocument(certificate, root, parsed.signature_method, reference.digest_method)


def standalone(element: etree._Element) -> etree._Element:
    """A business document carried inline in `data`, as its signer produced it on its own: the declarations
    it inherits from the envelope dropped, but those its QName values (xsi:type="t:Response") use kept."""
    document = etree.fromstring(etree.tostring(element))
    used = {value.partition(":")[0] for el in document.iter() if isinstance(el.tag, str)
            for value in [el.get(XSI_TYPE)] if value and ":" in value}
    etree.cleanup_namespaces(document, keep_ns_prefixes=sorted(used))
    return document


def document_in_data(data: etree._Element) -> bytes:
    """The signed business document inside `data` in any style: escaped text, typed inline (`data` itself is
    the document) or untyped inline (its one child)."""
    children = [el for el in data if isinstance(el.tag, str)]
    if not children:
        return (data.text or "").strip().encode("utf-8")
    return etree.tostring(standalone(data if data.get(XSI_TYPE) is not None else children[0]))
