"""The person registry (ГБД ФЛ / ЖТ МДБ) as a sync provider behind the gateway (`GBDFL_UniversalServiceSync`).

It answers the `SendMessage` the gateway forwards with a `SendMessageResponse` (status SCSS001) whose
data is a `Response` signed by the registry's operator, like the real registry (contract §9, §10).
It talks only SOAP, through the public `gateway.client`, `gateway.contract` and `gateway.security`.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from lxml import etree
from twisted.web import resource

from gateway import contract as c
from gateway.client import STYLES, build_send_message_fault, build_send_message_response, sign_request
from gateway.faults import Fault
from gateway.security.algorithms import AlgorithmPolicy, SignatureError
from gateway.security.wss import verify_signed_by
from gateway.security.xmldsig import sign_document, standalone
from gateway.web import contract_files
from gateway.web.body import read_body
from simulators.gbdfl import wire
from simulators.gbdfl.dictionaries import Value
from simulators.gbdfl.population import Population, QueryError

# messageResult codes of the Response. 00000 is the registry's; the others are not published, so the
# emulator chose them (docs/gbdfl.md); "not found" and "bad request" replies carry no persons element.
SUCCESS = Value("00000", "Сообщение успешно обработано", "Хабарлама сәтті өңделді")
NOT_FOUND_CODE = "GBDFL-404"
NOT_FOUND_RU, NOT_FOUND_KZ = "Сведения о физическом лице не найдены", "Жеке тұлға туралы мәліметтер табылмады"
BAD_REQUEST_CODE = "GBDFL-400"
BAD_REQUEST_RU, BAD_REQUEST_KZ = "Некорректный запрос", "Сұрау дұрыс емес"
# The errorCode of the SOAP fault for a message without a valid Request (as one real provider answers).
FAULT_CODE = "999"
FAULT_RU = "Ошибка обработки запроса: сообщение не содержит корректного Request"
FAULT_EN = "The message carries no valid GBD FL Request"
SENDER_RU = "Государственная база данных «Физические лица»"
SENDER_KZ = "«Жеке тұлғалар» мемлекеттік деректер базасы"
MAX_PERSONS = 100


def _data(send: etree._Element) -> etree._Element | None:
    # Some clients qualify `data` (contract §6): match it by local name.
    return next((el for el in send.iterfind("request/requestData/*") if etree.QName(el).localname == "data"),
                None)


# A synthetic BIN for the registry operator's certificate (valid check digit; not a real organisation's).
OPERATOR_BIN = "080540003214"


class GbdflProvider(resource.Resource):
    """POST a SyncChannel `SendMessage` carrying a GBD FL `Request` (any data style), get the persons."""

    isLeaf = True

    def __init__(self, population: Population, operator_key, operator_cert, *,
                 not_found_code: str = NOT_FOUND_CODE, bad_request_code: str = BAD_REQUEST_CODE,
                 fault_code: str = FAULT_CODE, sender_code: str = "GBDFL", reply_style: str = "typed",
                 max_persons: int = MAX_PERSONS, transport_signature: bool = False, gateway_certificate=None):
        super().__init__()
        if reply_style not in STYLES:
            raise ValueError(f"reply_style must be one of {', '.join(STYLES)}, got {reply_style!r}")
        if max_persons < 1:
            raise ValueError(f"max_persons must be at least 1, got {max_persons}")
        self.population = population
        self.operator_key, self.operator_cert = operator_key, operator_cert
        self.not_found = Value(not_found_code, NOT_FOUND_RU, NOT_FOUND_KZ)
        self.bad_request_code = bad_request_code
        self.fault_code = fault_code
        self.sender = Value(sender_code, SENDER_RU, SENDER_KZ)
        self.reply_style = reply_style
        self.max_persons = max_persons
        # Services that require WS-Security (`/bip-sync-wss-gost/`) need the provider's answers signed too.
        self.transport_signature = transport_signature
        # Set: only requests WS-Security signed by this certificate (the gateway's) are answered.
        self.gateway_certificate = gateway_certificate

    def render_GET(self, request):
        return contract_files.serve_here(request, c.SYNC_WSDL, "SyncChannel (ISyncChannel)")

    def render_POST(self, request):
        status, body = self.answer(read_body(request))
        request.setResponseCode(status)
        request.setHeader(b"Content-Type", b"text/xml; charset=utf-8")
        return body

    def answer(self, raw: bytes | None) -> tuple[int, bytes]:
        """(HTTP status, SOAP body) for one message (None: larger than the site accepts): 200 with a Response,
        or 500 with a SOAP fault."""
        status, body = self._answer(raw)
        if self.transport_signature:
            body = sign_request(body, self.operator_key, self.operator_cert)
        return status, body

    def _answer(self, raw: bytes | None) -> tuple[int, bytes]:
        if raw is None:
            return self.fault("the message is larger than this site accepts")
        try:
            root = c.PARSER.parse(raw).getroot()
        except (ValueError, etree.XMLSyntaxError) as exc:
            return self.fault(f"the message is not XML: {exc}")
        send = root.find(f"{c.BODY}/{c.SEND_MESSAGE}")
        info = None if send is None else send.find("request/requestInfo")
        if info is None:
            return self.fault("a SyncChannel SendMessage is expected")
        if self.gateway_certificate is not None:
            try:
                verify_signed_by(raw, self.gateway_certificate, policy=AlgorithmPolicy(),
                                 now=datetime.now(timezone.utc))
            except SignatureError as error:
                # The catalogue's code and text: the check is the gateway's own, made by its provider.
                spec = Fault(error.name).spec
                return self.fault(error.detail, info.findtext("sessionId"), code=spec.code, message=spec.ru,
                                  summary=spec.en)
        try:
            request = wire.read_request(_data(send))
        except wire.MalformedRequest as exc:
            return self.fault(str(exc), info.findtext("sessionId"))
        try:
            persons = self.population.search(request.query, self.max_persons)
            result = SUCCESS if persons else self.not_found
        except QueryError as error:
            persons = []
            result = Value(self.bad_request_code, f"{BAD_REQUEST_RU}: {error.ru}", f"{BAD_REQUEST_KZ}: {error.kz}")
        message_id = str(uuid.uuid4())
        # The registry does not know the consumer's names: its code stands for them.
        receiver = Value(request.sender_code, request.sender_code, request.sender_code)
        response = wire.response_document(message_id=message_id, request_id=request.message_id, sender=self.sender,
                                          receiver=receiver, result=result, persons=persons)
        return 200, self.envelope(info, message_id, response)

    def envelope(self, info: etree._Element, message_id: str, response: etree._Element) -> bytes:
        """The SendMessageResponse carrying `response`, signed as the document a verifier will extract."""
        fields = dict(message_id=message_id, correlation_id=info.findtext("correlationId"),
                      session_id=info.findtext("sessionId"))
        if self.reply_style != "typed":
            signed = sign_document(response, self.operator_key, self.operator_cert)
            return build_send_message_response(payload=signed, style=self.reply_style, **fields)
        raw = build_send_message_response(payload=response, style="typed", xsi_type=wire.RESPONSE, **fields)
        envelope = c.PARSER.parse(raw).getroot()
        data = envelope.find(f"{c.BODY}/{c.SEND_MESSAGE_RESPONSE}/response/responseData/data")
        signed = sign_document(standalone(data), self.operator_key, self.operator_cert)
        data.append(signed[-1])  # the enveloped ds:Signature, last child
        return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")

    def fault(self, detail: str, session_id: str | None = None, *, code: str | None = None,
              message: str = FAULT_RU, summary: str = FAULT_EN) -> tuple[int, bytes]:
        """The sync fault element, by default with the provider's own code: a malformed message is the
        caller's fault."""
        return build_send_message_fault(code=code or self.fault_code, message=message, summary=summary,
                                        detail=detail, session_id=session_id)


class LazyGbdflProvider(resource.Resource):
    """The simulator as the server mounts it: the population and the operator's certificate are made on
    the first request, so a gateway that never routes to the registry does not pay for them."""

    isLeaf = True

    def __init__(self, make: Callable[[], GbdflProvider]):
        super().__init__()
        self._make = make
        self._provider: GbdflProvider | None = None

    def render(self, request):
        if self._provider is None:
            self._provider = self._make()
        return self._provider.render(request)


def operator_credentials(pki, state_dir: Path):
    """The registry operator's signing key and certificate, issued once by the test PKI and kept."""
    return pki.credentials(Path(state_dir) / "gbdfl" / "operator", "organization", org="ГБД ФЛ (ТЕСТ)",
                           bin=OPERATOR_BIN)
