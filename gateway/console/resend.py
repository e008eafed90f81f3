"""«Resend this message»: the stored request-in bytes posted again to the gateway's own address, as the
sender would, and what came of it.

The gateway judges a resend as any other request: a message it accepted before is a replay (SHEP-160),
and the journal keeps a sender's password only as "[redacted]", so a message that authenticated with a
password fails authentication first. What a resend is good for is a message whose first try was refused
before it was accepted (its bytes were journalled, its messageId not claimed) and whose sender
authenticates otherwise (its certificate). The console shows the outcome as the gateway answered it.
"""
from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass

from lxml import etree

from gateway.contract import PARSER
from gateway.registry import ASYNC

TIMEOUT = 30.0
_WSSE = b"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"


@dataclass(frozen=True)
class Outcome:
    address: str
    http_status: int | None
    fault_code: str | None  # the ErrorInfo code or SOAP faultcode of the answer; None: no fault
    fault_text: str | None
    session_id: str | None  # the resend's own session in the journal
    error: str | None = None  # the gateway could not be reached


def address(service, body: bytes) -> str:
    """Where the sender would post it: the AsyncChannel, the WS-Security address for a signed envelope, or
    the SyncChannel."""
    if service is not None and service.channel == ASYNC:
        return "/bip-async/"
    return "/bip-sync-wss-gost/" if _WSSE in body else "/bip-sync/"


def read_answer(raw: bytes) -> tuple[str | None, str | None, str | None]:
    """(fault code, its text, sessionId) of the gateway's answer: a SOAP fault's ErrorInfo errorCode (else its
    faultcode), None for an answer that is no fault; the sessionId of the fault or the response."""
    try:
        root = PARSER.parse(raw).getroot()
    except (ValueError, etree.XMLSyntaxError):
        return "not XML", raw[:200].decode("utf-8", "replace"), None
    session = next((el.text for el in root.iter("sessionId") if el.text), None)
    fault = next(root.iter("{http://schemas.xmlsoap.org/soap/envelope/}Fault"), None)
    if fault is None:
        return None, None, session
    code = next((el.text for el in fault.iter("errorCode") if el.text), None) or fault.findtext("faultcode")
    text = next((el.text for el in fault.iter("errorMessage") if el.text), None) or fault.findtext("faultstring")
    return code, text, session


def resend(base_url: str, service, body: bytes) -> Outcome:
    path = address(service, body)
    status, answer, error = post(base_url, path, body)
    if status is None:
        return Outcome(path, None, None, None, None, error)
    return Outcome(path, status, *read_answer(answer))


def post(base_url: str, path: str, body: bytes) -> tuple[int | None, bytes, str | None]:
    """(HTTP status, answer, None) or (None, b"", why it failed)."""
    request = urllib.request.Request(base_url + path, data=body, method="POST",
                                     headers={"Content-Type": "text/xml; charset=utf-8"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.status, response.read(), None
    except urllib.error.HTTPError as error:  # a fault answer (its HTTP status is 4xx/5xx)
        return error.code, error.read(), None
    except (OSError, urllib.error.URLError) as error:
        return None, b"", str(error)
