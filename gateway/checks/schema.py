"""Validation against the ShEP contract schemas (xsd/shep-sync.xsd), and reading requestInfo."""
from __future__ import annotations

from contextlib import contextmanager

from lxml import etree

from gateway import contract as c
from gateway.context import MessageContext, MessageInfo
from gateway.faults import Fault


def schema_errors(schema: etree.XMLSchema, doc) -> str | None:
    """libxml2's messages for an invalid document, or None when valid."""
    try:
        schema.assertValid(doc)
    except etree.DocumentInvalid as exc:
        errors = [f"line {e.line}: {e.message}" for e in exc.error_log] or [str(exc)]
        return "; ".join(errors[:5])
    return None


@contextmanager
def _payload_set_aside(ctx: MessageContext, path: str):
    """The payload is the service's business (validate_*_payload): the ShEP schema sees an empty `data`,
    so an xsi:type from the service's namespace is not an error of the envelope."""
    data = ctx.operation.find(path)
    if data is None:
        yield
        return
    parent, placeholder = data.getparent(), etree.Element(data.tag)
    parent.replace(data, placeholder)
    try:
        yield
    finally:
        parent.replace(placeholder, data)


def validate_request_schema(ctx: MessageContext) -> None:
    with _payload_set_aside(ctx, "request/requestData/data"):
        errors = schema_errors(c.sync_schema(), ctx.tree)
    if errors:
        raise Fault("SCHEMA_INVALID", errors)
    # `request` is nillable in the contract, but a SendMessage without requestInfo cannot be routed.
    if ctx.operation.find("request/requestInfo") is None:
        raise Fault("SCHEMA_INVALID", "request is nil: requestInfo is required")


def _text(parent: etree._Element, path: str) -> str | None:
    el = parent.find(path)
    return el.text if el is not None else None


def read_request_info(ctx: MessageContext) -> None:
    info = ctx.operation.find("request/requestInfo")
    ctx.info = MessageInfo(
        message_id=_text(info, "messageId") or "",
        correlation_id=_text(info, "correlationId"),
        service_id=_text(info, "serviceId") or "",
        message_date=_text(info, "messageDate") or "",
        route_id=_text(info, "routeId"),
        sender_id=_text(info, "sender/senderId") or "",
        password=_text(info, "sender/password"),
    )
    ctx.note(f"{ctx.info.sender_id} → {ctx.info.service_id}, messageId {ctx.info.message_id}")


def validate_response_schema(ctx: MessageContext) -> None:
    with _payload_set_aside(ctx, "response/responseData/data"):
        errors = schema_errors(c.sync_schema(), ctx.tree)
    if errors:
        raise Fault("PROVIDER_RESPONSE_INVALID", errors)
    if not ctx.is_fault and ctx.operation.find("response/responseInfo") is None:
        raise Fault("PROVIDER_RESPONSE_INVALID", "response is nil: responseInfo is required")
