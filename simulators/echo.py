"""A demo provider for the tour and the tests: answers `SendMessage` with the payload's text echoed.

It stands for any provider system behind the gateway and talks only SOAP (it uses the public
`gateway.client` builders, not the gateway's internals).
"""
from __future__ import annotations

from lxml import etree
from twisted.web import resource

from gateway import contract as c
from gateway.client import build_send_message_response
from gateway.web.body import read_body

ECHO_NS = "urn:shep-emulator:demo:echo"


def _echoed_text(data: etree._Element | None) -> str:
    if data is None:
        return ""
    children = [el for el in data if isinstance(el.tag, str)]
    if children and etree.QName(children[0]).localname == "EchoRequest":
        return children[0].findtext("text") or ""
    if children:  # typed inline: the Echo type's children sit directly in data
        return data.findtext("text") or ""
    try:  # escaped: the document is the text of data
        return c.PARSER.parse((data.text or "").strip().encode("utf-8")).getroot().findtext("text") or ""
    except (ValueError, etree.XMLSyntaxError):
        return ""


def answer(raw: bytes) -> bytes:
    root = c.PARSER.parse(raw).getroot()
    info = root.find(f"{c.BODY}/{c.SEND_MESSAGE}/request/requestInfo")
    data = root.find(f"{c.BODY}/{c.SEND_MESSAGE}/request/requestData/data")
    payload = etree.Element(f"{{{ECHO_NS}}}EchoResponse", nsmap={"echo": ECHO_NS})
    etree.SubElement(payload, "text").text = _echoed_text(data)
    return build_send_message_response(
        message_id=info.findtext("messageId"), correlation_id=info.findtext("correlationId"),
        session_id=info.findtext("sessionId"), payload=payload)


class EchoProvider(resource.Resource):
    isLeaf = True

    def render_POST(self, request):
        request.setHeader(b"Content-Type", b"text/xml; charset=utf-8")
        raw = read_body(request)
        if raw is None:
            request.setResponseCode(413)
            return b"<error>the message is larger than this site accepts</error>"
        try:
            return answer(raw)
        except (ValueError, AttributeError, etree.XMLSyntaxError):
            request.setResponseCode(400)
            return b"<error>the demo echo provider expects a SyncChannel SendMessage</error>"
