"""The payload EDS (enveloped XMLDSig, contract §9): round trips, refusals, libxmlsec1 both ways
(tests/xmlsec_oracle.py: the python-xmlsec wheel, and the xmlsec1 command where installed; the command signs)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from lxml import etree

from gateway import client
from gateway.security import algorithms as alg
from gateway.security import wss, xmldsig
from gateway.security.algorithms import AlgorithmPolicy, SignatureError
from tests import xmlsec_oracle
from tests.test_wss import ECHO_NS, KEYS, NS, Pki, make_pki, payload

POLICY = AlgorithmPolicy()


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


def refused(document, name: str, policy: AlgorithmPolicy = POLICY) -> SignatureError:
    with pytest.raises(SignatureError) as caught:
        xmldsig.verify_document(document, policy=policy)
    assert caught.value.name == name, caught.value
    return caught.value


def signed_bytes(pki: Pki, kind: str = "rsa", root: etree._Element | None = None) -> bytes:
    signer = getattr(pki, kind)
    signed = xmldsig.sign_document(payload() if root is None else root, signer.key, signer.cert)
    return etree.tostring(signed, encoding="UTF-8")


def edited(document: bytes, path: str, change) -> bytes:
    root = etree.fromstring(document)
    change(root.xpath(path, namespaces=NS)[0])
    return etree.tostring(root, encoding="UTF-8")


@pytest.mark.parametrize("kind", KEYS)
def test_round_trip(pki, kind):
    signer = getattr(pki, kind)
    original = payload()
    signed = xmldsig.sign_document(original, signer.key, signer.cert)
    assert original.find(xmldsig.SIGNATURE) is None  # the input is left as it was
    assert signed[-1].tag == xmldsig.SIGNATURE

    signed_info = signed[-1].find(xmldsig.SIGNED_INFO)
    assert signed_info.find(xmldsig.CANONICALIZATION_METHOD).get("Algorithm") == alg.C14N
    reference = signed_info.find(xmldsig.REFERENCE)
    assert reference.get("URI") == ""
    assert reference.xpath("ds:Transforms/ds:Transform/@Algorithm", namespaces=NS) == [alg.ENVELOPED,
                                                                                       alg.C14N_COMMENTS]
    assert signed[-1].find(f"{xmldsig.KEY_INFO}/{xmldsig.X509_DATA}/{xmldsig.X509_CERTIFICATE}") is not None

    for document in (signed, etree.tostring(signed)):
        verified = xmldsig.verify_document(document, policy=POLICY)
        assert verified.certificate == signer.cert
        assert verified.root.tag == f"{{{ECHO_NS}}}EchoRequest"
        assert verified.signature_method == (alg.RSA_SHA256 if kind == "rsa" else alg.ECDSA_SHA256)
        assert verified.digest_method == alg.SHA256


def test_signing_order_of_the_contract(pki):
    """Sign the payload, escape it into `data`, WSS-sign the envelope; verify both on the way in."""
    document = signed_bytes(pki, "ec")
    raw = client.build_send_message(service_id="ECHO", sender_id="consumer", payload=etree.fromstring(document),
                                    style="escaped")
    signed = wss.sign_envelope(raw, pki.rsa.key, pki.rsa.cert)
    verified = wss.verify_envelope(signed, policy=POLICY, now=datetime.now(timezone.utc))
    text = verified.body.findtext(".//data")
    assert xmldsig.verify_document(text.encode(), policy=POLICY).certificate == pki.ec.cert


def test_expired_certificate_still_verifies(pki):
    assert xmldsig.verify_document(signed_bytes(pki, "expired"), policy=POLICY).certificate == pki.expired.cert


def test_comments_are_outside_the_digest_and_stripped(pki):
    """URI="" excludes comments whatever #WithComments says (XMLDSig §4.4.3.3), as xmlsec1 does."""
    document = signed_bytes(pki).replace("<text>сә".encode(), "<text>сә<!-- unsigned -->".encode())
    verified = xmldsig.verify_document(document, policy=POLICY)
    assert verified.root.findtext("text") == "сәлем"  # not "сә", as reading before the comment would give
    assert not verified.root.xpath("//comment()")


def test_missing_signature(pki):
    refused(etree.tostring(payload()), "PAYLOAD_SIGNATURE_MISSING")
    not_last = etree.fromstring(signed_bytes(pki))
    etree.SubElement(not_last, "after")
    refused(not_last, "PAYLOAD_SIGNATURE_MISSING")
    nested = etree.fromstring(signed_bytes(pki))
    etree.SubElement(nested, "wrapper").append(nested[-2])
    refused(nested, "PAYLOAD_SIGNATURE_MISSING")


def test_a_trailing_comment_after_the_signature_is_fine(pki):
    root = etree.fromstring(signed_bytes(pki))
    root.append(etree.Comment("trailing"))
    assert xmldsig.verify_document(root, policy=POLICY).certificate == pki.rsa.cert


def test_tampered_content_and_value(pki):
    document = signed_bytes(pki)
    error = refused(document.replace("сәлем".encode(), "salem".encode()), "PAYLOAD_SIGNATURE_INVALID")
    assert "digest" in error.detail

    def flip(value):
        value.text = ("B" if value.text[0] == "A" else "A") + value.text[1:]

    error = refused(edited(document, "//ds:SignatureValue", flip), "PAYLOAD_SIGNATURE_INVALID")
    assert "signature value" in error.detail
    other = pki.other.cert
    swapped = edited(document, "//ds:X509Certificate", lambda el: setattr(el, "text", xmldsig.der_base64(other)))
    assert "signature value" in refused(swapped, "PAYLOAD_SIGNATURE_INVALID").detail


@pytest.mark.parametrize("change", [
    pytest.param(lambda ref: ref.set("URI", "#x"), id="uri-fragment"),
    pytest.param(lambda ref: ref.attrib.pop("URI"), id="no-uri"),
    pytest.param(lambda ref: ref.find(xmldsig.TRANSFORMS).remove(ref.find(xmldsig.TRANSFORMS)[0]), id="no-enveloped"),
    pytest.param(lambda ref: ref.find(xmldsig.TRANSFORMS).append(
        etree.Element(xmldsig.TRANSFORM, Algorithm="http://www.w3.org/TR/1999/REC-xslt-19991116")), id="xslt"),
    pytest.param(lambda ref: ref.getparent().append(etree.fromstring(etree.tostring(ref))), id="two-references"),
    pytest.param(lambda ref: ref.getparent().remove(ref), id="no-reference"),
])
def test_malformed_references(pki, change):
    refused(edited(signed_bytes(pki), "//ds:Reference", change), "SIGNATURE_MALFORMED")


def test_malformed_key_info(pki):
    document = signed_bytes(pki)
    refused(edited(document, "//ds:KeyInfo", lambda el: el.getparent().remove(el)), "SIGNATURE_MALFORMED")
    refused(edited(document, "//ds:X509Certificate", lambda el: setattr(el, "text", "AAAA")), "SIGNATURE_MALFORMED")
    refused(edited(document, "//ds:SignedInfo", lambda el: el.getparent().remove(el)), "SIGNATURE_MALFORMED")


@pytest.mark.parametrize("tag,uri,name", [
    # A GOST method names a GOST key: an RSA key never verifies under it, a GOST digest is another digest.
    ("ds:SignatureMethod", alg.GOST2015_512_SIGNATURE, "PAYLOAD_SIGNATURE_INVALID"),
    ("ds:SignatureMethod", alg.GOST2015_256_SIGNATURE, "PAYLOAD_SIGNATURE_INVALID"),
    ("ds:Reference/ds:DigestMethod", alg.GOST2015_512_DIGEST, "PAYLOAD_SIGNATURE_INVALID"),
    ("ds:SignatureMethod", "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256", "SIGNATURE_ALGORITHM_UNSUPPORTED"),
    ("ds:SignatureMethod", alg.RSA_SHA1_KALKAN, "SIGNATURE_ALGORITHM_REFUSED"),
    ("ds:Reference/ds:DigestMethod", alg.SHA1, "SIGNATURE_ALGORITHM_REFUSED"),
])
def test_algorithms(pki, tag, uri, name):
    document = edited(signed_bytes(pki), f"//ds:SignedInfo/{tag}", lambda el: el.set("Algorithm", uri))
    refused(document, name)


def test_sha1_accepted_when_allowed(pki):
    """An rsa-sha1/sha1 signature as libxmlsec1 makes it, refused by default."""
    document = xmlsec_sign(pki, alg.RSA_SHA1, alg.SHA1)
    refused(document, "SIGNATURE_ALGORITHM_REFUSED")
    verified = xmldsig.verify_document(document, policy=AlgorithmPolicy(allow_sha1=True))
    assert (verified.signature_method, verified.digest_method) == (alg.RSA_SHA1, alg.SHA1)


# --- libxmlsec1 both ways --------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KEYS)
def test_xmlsec_accepts_our_documents(pki, kind):
    """The certificate in our KeyInfo chains to the CA the oracle trusts."""
    # A pretty-printed payload with a comment: whitespace is signed, the comment is not.
    root = etree.fromstring(f'<echo:EchoRequest xmlns:echo="{ECHO_NS}">\n  <text>сәлем<!-- c --></text>\n'
                            '</echo:EchoRequest>')
    for document in (signed_bytes(pki, kind), signed_bytes(pki, kind, root)):
        verdict = xmlsec_oracle.verify(document, trusted=pki.ca.cert)
        assert verdict.ok, verdict.detail
        tampered = document.replace("сәлем".encode(), b"salem")
        assert not xmlsec_oracle.verify(tampered, trusted=pki.ca.cert).ok


TEMPLATE = """<?xml version="1.0" encoding="UTF-8"?>
<!-- a comment outside the root -->
<echo:EchoRequest xmlns:echo="{echo}">
  <text>сәлем<!-- inside --></text>
  <ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#">
    <ds:SignedInfo>
      <ds:CanonicalizationMethod Algorithm="{c14n}"/>
      <ds:SignatureMethod Algorithm="{method}"/>
      <ds:Reference URI="">
        <ds:Transforms>
          <ds:Transform Algorithm="{enveloped}"/>
          <ds:Transform Algorithm="{c14n_comments}"/>
        </ds:Transforms>
        <ds:DigestMethod Algorithm="{digest}"/>
        <ds:DigestValue/>
      </ds:Reference>
    </ds:SignedInfo>
    <ds:SignatureValue/>
    <ds:KeyInfo><ds:X509Data/></ds:KeyInfo>
  </ds:Signature>
</echo:EchoRequest>
"""


def xmlsec_sign(pki: Pki, method: str, digest: str, kind: str = "rsa") -> bytes:
    """A payload signed by libxmlsec1 as KalkanCrypt lays it out: pretty-printed, comments, the Signature with a
    tail."""
    template = TEMPLATE.format(echo=ECHO_NS, c14n=alg.C14N, method=method, enveloped=alg.ENVELOPED,
                               c14n_comments=alg.C14N_COMMENTS, digest=digest)
    signer = getattr(pki, kind)
    return xmlsec_oracle.sign(template.encode(), signer.key, signer.cert)


@pytest.mark.parametrize("kind", KEYS)
def test_we_accept_xmlsec_documents(pki, kind):
    method = alg.RSA_SHA256 if kind == "rsa" else alg.ECDSA_SHA256
    document = xmlsec_sign(pki, method, alg.SHA256, kind)
    assert b"<ds:SignatureValue/>" not in document
    verified = xmldsig.verify_document(document, policy=POLICY)
    assert verified.certificate == getattr(pki, kind).cert
    assert verified.root.findtext("text") == "сәлем"
    refused(document.replace("сәлем".encode(), b"salem"), "PAYLOAD_SIGNATURE_INVALID")
