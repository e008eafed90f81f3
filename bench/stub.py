"""The benchmark's provider, in a process of its own so its CPU is never counted as the gateway's.

    python bench/stub.py --cert C --key K --trust A.pem [--trust B.pem ...]

It behaves like a real provider: every request must carry a WS-Security signature by one of the
trusted certificates (the client's when called directly, the gateway's when called through it),
and every answer is signed with its own key.

- `POST /sync`: SyncChannel `SendMessage` → signed `SendMessageResponse` echoing the text;
- `POST /async`: IAsyncChannelClient `sendMessage` (a push) → signed `sendMessageResponse`;
- `GET /stats`: JSON with the counts and the distinct async messageIds received.

Prints `listening on <port>` once it serves.
"""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lxml import etree  # noqa: E402
from twisted.internet import reactor  # noqa: E402
from twisted.web import resource, server  # noqa: E402

from gateway import contract as c  # noqa: E402
from gateway.asyncchannel import wire  # noqa: E402
from gateway.asyncclient import PUSH_MESSAGE  # noqa: E402
from gateway.client import build_send_message_response, load_credentials  # noqa: E402
from gateway.security.algorithms import AlgorithmPolicy, SignatureError  # noqa: E402
from gateway.security.certs import load_certificates  # noqa: E402
from gateway.security.issuerserial import CertificateIndex  # noqa: E402
from gateway.security.wss import sign_envelope, verify_envelope  # noqa: E402
from simulators.echo import ECHO_NS  # noqa: E402


class Stub(resource.Resource):
    isLeaf = True

    def __init__(self, key, cert, trusted):
        super().__init__()
        self.key, self.cert = key, cert
        self.trusted = trusted
        self.known = CertificateIndex(trusted).find
        self.policy = AlgorithmPolicy()
        self.counts = {"sync": 0, "async": 0, "refused": 0}
        self.delivered: set[str] = set()

    def _verified(self, raw: bytes) -> etree._Element:
        verified = verify_envelope(raw, policy=self.policy, now=datetime.now(timezone.utc), certificates=self.known)
        if verified.certificate not in self.trusted:
            raise SignatureError("CERT_UNTRUSTED", "signed by a certificate this provider does not trust")
        return next(el for el in verified.body if isinstance(el.tag, str))

    def render_GET(self, request):
        request.setHeader(b"Content-Type", b"application/json")
        return json.dumps({**self.counts, "delivered": len(self.delivered)}).encode()

    def render_POST(self, request):
        request.setHeader(b"Content-Type", b"text/xml; charset=utf-8")
        try:
            operation = self._verified(request.content.read())
            answer = self._sync(operation) if request.path == b"/sync" else self._async(operation)
        except (SignatureError, ValueError, AttributeError, etree.XMLSyntaxError) as error:
            self.counts["refused"] += 1
            request.setResponseCode(400)
            return f"<error>{type(error).__name__}: {error}</error>".encode()
        return sign_envelope(answer, self.key, self.cert, key_info="keyidentifier")

    def _sync(self, operation: etree._Element) -> bytes:
        info = operation.find("request/requestInfo")
        text = operation.findtext(f"request/requestData/data/{{{ECHO_NS}}}EchoRequest/text")
        payload = etree.Element(f"{{{ECHO_NS}}}EchoResponse", nsmap={"echo": ECHO_NS})
        etree.SubElement(payload, "text").text = text
        self.counts["sync"] += 1
        return build_send_message_response(message_id=info.findtext("messageId"),
                                           correlation_id=info.findtext("correlationId"),
                                           session_id=info.findtext("sessionId"), payload=payload)

    def _async(self, operation: etree._Element) -> bytes:
        if operation.tag != PUSH_MESSAGE:
            raise ValueError(f"unexpected operation {operation.tag}")
        info = operation.find("request/messageInfo")
        message_id = info.findtext("messageId")
        self.counts["async"] += 1
        self.delivered.add(message_id)
        return wire.send_message_response(message_id=message_id, correlation_id=info.findtext("correlationId"),
                                          session_id=info.findtext("sessionId"), wrapper="sendMessageResponse",
                                          ns=c.ASYNC_CLIENT_NS)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--trust", action="append", required=True, help="PEM certificate whose signatures it accepts")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    key, cert = load_credentials(cert=args.cert, key=args.key)
    trusted = [load_certificates(Path(path).read_bytes())[0] for path in args.trust]
    port = reactor.listenTCP(args.port, server.Site(Stub(key, cert, trusted)), interface="127.0.0.1", backlog=512)
    print(f"listening on {port.getHost().port}", flush=True)
    reactor.run()


if __name__ == "__main__":
    main()
