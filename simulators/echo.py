"""A demo provider for the tour and the tests: answers `SendMessage` with the payload's text echoed.

It stands for any provider system behind the gateway and talks only SOAP (it uses the public
`gateway.client` builders, not the gateway's internals). What it cannot answer (not a SendMessage, or a
payload that is not an EchoRequest) gets the contract's SOAP fault with its own code, as a real provider's
refusal would (`shep conformance provider` holds it to that).
"""
from __future__ import annotations

from lxml import etree
from twisted.web import resource

from gateway import contract as c
from gateway.client import build_send_message_fault, build_send_message_response
from gateway.web import contract_files
from gateway.web.body import read_body

ECHO_NS = "urn:shep-emulator:demo:echo"
NOT_A_SEND_MESSAGE = "ECHO-001"
NOT_AN_ECHO_REQUEST = "ECHO-002"


class NotEcho(ValueError):
    """The payload is none of the three ways of carrying an EchoRequest (contract §6)."""


def _echoed_text(data: etree._Element | None) -> str:
    if data is None:
        raise NotEcho("requestData/data is missing")
    children = [el for el in data if isinstance(el.tag, str)]
    if children and children[0].tag == f"{{{ECHO_NS}}}EchoRequest":
        return children[0].findtext("text") or ""
    if children and data.find("text") is not None:  # typed inline: the Echo type's children sit directly in data
        return data.findtext("text") or ""
    if not children:  # escaped: the document is the text of data
        try:
            document = c.PARSER.parse((data.text or "").strip().encode("utf-8")).getroot()
        except (ValueError, etree.XMLSyntaxError) as exc:
            raise NotEcho(f"the text of data is not an XML document: {exc}") from None
        if document.tag == f"{{{ECHO_NS}}}EchoRequest":
            return document.findtext("text") or ""
    raise NotEcho(f"data holds {children[0].tag if children else 'text'}, not {{{ECHO_NS}}}EchoRequest")


def answer(raw: bytes) -> tuple[int, bytes]:
    try:
        root = c.PARSER.parse(raw).getroot()
        info = root.find(f"{c.BODY}/{c.SEND_MESSAGE}/request/requestInfo")
        if info is None:
            raise ValueError("soap:Body holds no SendMessage/request/requestInfo")
    except (ValueError, etree.XMLSyntaxError) as exc:
        return build_send_message_fault(code=NOT_A_SEND_MESSAGE, message="the demo echo provider expects a "
                                        "SyncChannel SendMessage", summary="not a SendMessage", detail=str(exc))
    try:
        text = _echoed_text(root.find(f"{c.BODY}/{c.SEND_MESSAGE}/request/requestData/data"))
    except NotEcho as exc:
        return build_send_message_fault(code=NOT_AN_ECHO_REQUEST, message="the payload is not an EchoRequest",
                                        summary="not an EchoRequest", detail=str(exc),
                                        session_id=info.findtext("sessionId"))
    payload = etree.Element(f"{{{ECHO_NS}}}EchoResponse", nsmap={"echo": ECHO_NS})
    etree.SubElement(payload, "text").text = text
    return 200, build_send_message_response(
        message_id=info.findtext("messageId"), correlation_id=info.findtext("correlationId"),
        session_id=info.findtext("sessionId"), payload=payload)


class EchoProvider(resource.Resource):
    isLeaf = True

    def render_GET(self, request):
        return contract_files.serve_here(request, c.SYNC_WSDL, "SyncChannel (ISyncChannel)")

    def render_POST(self, request):
        request.setHeader(b"Content-Type", b"text/xml; charset=utf-8")
        raw = read_body(request)
        if raw is None:
            request.setResponseCode(413)
            return b"<error>the message is larger than this site accepts</error>"
        status, body = answer(raw)
        request.setResponseCode(status)
        return body
