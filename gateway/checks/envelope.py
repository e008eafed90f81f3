"""Hardened parsing and SOAP 1.1 envelope structure, for the caller's request and the provider's answer."""
from __future__ import annotations

import re
from datetime import date

from lxml import etree

from gateway import contract as c
from gateway.context import MessageContext
from gateway.faults import Fault

_EMPTY_OPTIONALS = ("correlationId", "routeId", "properties", "sessionId")
# Java's SimpleDateFormat `Z` writes the offset as +0500; xs:dateTime wants +05:00.
_COLONLESS_OFFSET = re.compile(r"(-?\d{4,}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?[+-]\d\d)(\d\d)")
_BARE_DATE = re.compile(r"\d{4}-\d\d-\d\d")


def _parse(ctx: MessageContext) -> None:
    try:
        ctx.tree = c.PARSER.parse(ctx.raw)
    except ValueError as exc:
        raise Fault("XML_DTD_FORBIDDEN", str(exc)) from None
    except etree.XMLSyntaxError as exc:
        if "depth" in str(exc).lower():
            raise Fault("XML_TOO_DEEP", str(exc)) from None
        raise Fault("XML_MALFORMED", str(exc) or "empty document") from None


def _limit_depth(ctx: MessageContext) -> None:
    limit = ctx.env.settings.max_depth
    depth = c.max_depth(ctx.tree.getroot())
    if depth > limit:
        raise Fault("XML_TOO_DEEP", f"depth {depth}, limit {limit}")


def _structure(ctx: MessageContext) -> None:
    """Envelope → optional Header → exactly one Body with exactly one element: sets ctx.operation."""
    root = ctx.tree.getroot()
    if root.tag != c.ENVELOPE:
        if etree.QName(root).localname == "Envelope":
            raise Fault("SOAP_VERSION_MISMATCH", f"envelope namespace {etree.QName(root).namespace}")
        raise Fault("SOAP_ENVELOPE_INVALID", f"root element is {root.tag}, not soap:Envelope")
    children = [el for el in root if isinstance(el.tag, str)]
    bodies = [el for el in root.iter(c.BODY)]
    if len(bodies) != 1 or bodies[0].getparent() is not root:
        raise Fault("SOAP_ENVELOPE_INVALID",
                    f"{len(bodies)} soap:Body elements; exactly one, under Envelope, is required")
    body = bodies[0]
    headers = [el for el in children if el.tag == c.HEADER]
    if len(headers) > 1 or (headers and children.index(headers[0]) > children.index(body)):
        raise Fault("SOAP_ENVELOPE_INVALID", "soap:Header must appear at most once, before soap:Body")
    operations = [el for el in body if isinstance(el.tag, str)]
    if len(operations) != 1:
        raise Fault("SOAP_ENVELOPE_INVALID", f"soap:Body holds {len(operations)} elements; exactly one is required")
    ctx.operation = operations[0]


def parse_xml(ctx: MessageContext) -> None:
    _parse(ctx)


def limit_xml_depth(ctx: MessageContext) -> None:
    _limit_depth(ctx)


def check_envelope(ctx: MessageContext) -> None:
    _structure(ctx)
    root = ctx.tree.getroot()
    header = root.find(c.HEADER)
    for block in header if header is not None else ():
        if not isinstance(block.tag, str):
            continue
        must = block.get(c.MUST_UNDERSTAND)
        if must in ("1", "true") and etree.QName(block).namespace not in c.UNDERSTOOD_HEADERS:
            raise Fault("SOAP_MUST_UNDERSTAND", f"header {block.tag}")
    ctx.shape = ctx.shapes.get(ctx.operation.tag)
    if ctx.shape is None:
        served = ", ".join(etree.QName(tag).localname for tag in ctx.shapes)
        raise Fault("UNKNOWN_OPERATION", f"soap:Body holds {ctx.operation.tag}; this address serves {served}")


def tolerate_client_variations(ctx: MessageContext) -> None:
    """Normalise the shapes real clients send (contract §6; dates, sessionId) and record each as a deviation."""
    body = ctx.tree.getroot().find(c.BODY)
    if body.get("Id") is not None:
        ctx.deviate("plain Id attribute on soap:Body (wsu:Id expected)")
    info = ctx.operation.find(ctx.shape.info) if ctx.shape.info else None
    if info is not None:
        for name in _EMPTY_OPTIONALS:
            for el in info.findall(name):
                if len(el) == 0 and not (el.text or "").strip():
                    info.remove(el)
                    ctx.deviate(f"empty optional element <{name}/> removed")
        # ShEP sets sessionId (the contract); the real gateway replaces a sender's, and so does this one.
        for el in info.findall("sessionId"):
            info.remove(el)
            ctx.deviate(f"client sessionId {(el.text or '').strip()!r} replaced by the gateway's",
                        "STRICT_SESSION_ID")
    _tolerate_dates(ctx)
    data_parent = ctx.operation.find(ctx.shape.data.rsplit("/", 1)[0]) if ctx.shape.data else None
    if data_parent is not None:
        for el in data_parent:
            if isinstance(el.tag, str) and etree.QName(el).localname == "data" and etree.QName(el).namespace:
                ctx.deviate(f"data element qualified with {etree.QName(el).namespace}; read as unqualified")
                el.tag = "data"


def _tolerate_dates(ctx: MessageContext) -> None:
    """Rewrite the shapes of the contract's own dates that real clients send into xs:dateTime."""
    bare = ctx.shape.fields["message_date"] if ctx.shape.bare_date else None
    for path in ctx.shape.dates:
        el = ctx.operation.find(path)
        value = (el.text or "").strip() if el is not None else ""
        name = path.rsplit("/", 1)[-1]
        if _COLONLESS_OFFSET.fullmatch(value):
            el.text = _COLONLESS_OFFSET.sub(r"\1:\2", value)
            ctx.deviate(f"{name} {value}: offset without a colon, read as {el.text}", "STRICT_DATE_FORMAT")
        elif path == bare and _BARE_DATE.fullmatch(value):
            try:
                ctx.message_day = date.fromisoformat(value)
            except ValueError:
                continue  # not a day of the calendar: the schema refuses it
            # Any time satisfies the schema; check_message_date judges the day itself.
            el.text = f"{value}T00:00:00"
            ctx.deviate(f"{name} {value} without a time: checked as a day", "STRICT_DATE_FORMAT")


def _not_soap(ctx: MessageContext, data: str, sub: Fault | None = None) -> Fault:
    if ctx.http_status == 500:
        return Fault("PROVIDER_HTTP_ERROR", f"HTTP 500 without a SOAP fault: {data}", sub=sub)
    return Fault("PROVIDER_NOT_SOAP", data, sub=sub)


def parse_provider_answer(ctx: MessageContext) -> None:
    try:
        _parse(ctx)
        _limit_depth(ctx)
    except Fault as fault:
        raise _not_soap(ctx, fault.data, fault) from None


def check_provider_envelope(ctx: MessageContext) -> None:
    try:
        _structure(ctx)
    except Fault as fault:
        raise _not_soap(ctx, fault.data, fault) from None
    op = ctx.operation
    if op.tag == c.FAULT:
        ctx.is_fault = True
        ctx.note("the provider answered with a SOAP fault")
    elif op.tag != ctx.shape.answer or ctx.http_status == 500:
        raise _not_soap(ctx, f"soap:Body holds {op.tag}, not {etree.QName(ctx.shape.answer).localname} "
                             "or soap:Fault")


def check_provider_status(ctx: MessageContext) -> None:
    # SOAP 1.1 answers are 200, or 500 carrying a soap:Fault; anything else is an HTTP error.
    if ctx.http_status not in (200, 500):
        raise Fault("PROVIDER_HTTP_ERROR", f"HTTP {ctx.http_status}")
