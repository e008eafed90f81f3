"""SyncChannel SendMessage with zeep: the demo echo, its document inline in `data`, optionally WS-Security signed.

    python zeep_send.py http://127.0.0.1:8080 [--sign KEY.pem CERT.pem]

Needs `pip install zeep` (and `xmlsec` for --sign). Prints the status code, the sessionId and the echoed text.
"""
import argparse
import urllib.request
import uuid
from datetime import datetime, timezone

import zeep
from lxml import etree
from zeep import xsd

XS = "http://www.w3.org/2001/XMLSchema"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"


class Inline(xsd.AnyType):
    """`data` is xs:anyType: zeep writes a bare lxml element as its Python repr (SHEP-171). This type puts the
    element itself inside `data`: `inline(element)`."""

    def render(self, node, value, xsd_type=None, render_path=None):
        node.append(value)


def inline(element):
    return xsd.AnyObject(Inline(etree.QName(XS, "anyType")), element)


class NoAnyTypeAttribute(zeep.Plugin):
    """zeep also writes xsi:type="xs:anyType" on `data`: valid, but a zeep recipient then reads no content at
    all. Dropped before sending, so the document arrives as the contract's inline style."""

    def egress(self, envelope, http_headers, operation, binding_options):
        for data in envelope.iter("data"):
            prefix, _, local = (data.get(XSI_TYPE) or "").rpartition(":")
            if len(data) and local == "anyType" and data.nsmap.get(prefix or None) == XS:
                del data.attrib[XSI_TYPE]
        return envelope, http_headers


def signer(base: str, key: str, cert: str):
    """Signs each request with our certificate; checks each answer against the gateway's (`/api/certificate`)."""
    import xmlsec
    from zeep.wsse.signature import BinarySignature, MemorySignature

    with urllib.request.urlopen(f"{base}/api/certificate", timeout=15) as answer:
        gateway = MemorySignature(None, answer.read())  # verifies with the certificate it holds

    class GatewaySignature(BinarySignature):
        """zeep's own verify() would check the answer against *our* certificate."""

        def verify(self, envelope):
            return gateway.verify(envelope)  # SignatureVerificationFailed unless the gateway signed the Body

    return GatewaySignature(key, cert, signature_method=xmlsec.Transform.RSA_SHA256,
                            digest_method=xmlsec.Transform.SHA256)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("base", help="the gateway, e.g. http://127.0.0.1:8080")
    parser.add_argument("--sign", nargs=2, metavar=("KEY", "CERT"), help="PEM key and certificate")
    args = parser.parse_args()
    base = args.base.rstrip("/")
    wsse = signer(base, *args.sign) if args.sign else None
    client = zeep.Client(f"{base}/bip-sync/?wsdl", wsse=wsse, plugins=[NoAnyTypeAttribute()],
                         transport=zeep.Transport(timeout=15, operation_timeout=15),
                         settings=zeep.Settings(forbid_dtd=True))
    document = etree.fromstring(
        '<e:EchoRequest xmlns:e="urn:shep-emulator:demo:echo"><text>сәлем from zeep</text></e:EchoRequest>')
    answer = client.service.SendMessage(request={
        "requestInfo": {
            "messageId": str(uuid.uuid4()),
            "serviceId": "DEMO_Echo",
            "messageDate": datetime.now(timezone.utc),
            "sender": {"senderId": "demo-consumer", "password": "demo-consumer-pass"},
        },
        "requestData": {"data": inline(document)},
    })
    echoed = answer.responseData.data[0]  # xs:anyType comes back as a list of lxml elements
    print(answer.responseInfo.status.code, answer.responseInfo.sessionId, echoed.findtext("text"))


if __name__ == "__main__":
    main()
