"""Validation against the ShEP contract schemas (xsd/shep-sync.xsd, xsd/shep-async.xsd), and reading the ids."""
from __future__ import annotations

from contextlib import contextmanager

from lxml import etree

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
def _payload_set_aside(ctx: MessageContext, path: str | None):
    """The payload is the service's business (validate_*_payload): the ShEP schema sees an empty `data`,
    so an xsi:type from the service's namespace is not an error of the envelope."""
    data = ctx.operation.find(path) if path else None
    if data is None:
        yield
        return
    parent, placeholder = data.getparent(), etree.Element(data.tag)
    parent.replace(data, placeholder)
    try:
        yield
    finally:
        parent.replace(placeholder, data)


def _nil(element: etree._Element | None) -> bool:
    return element is None or not any(isinstance(child.tag, str) for child in element)


def validate_request_schema(ctx: MessageContext) -> None:
    with _payload_set_aside(ctx, ctx.shape.data):
        errors = schema_errors(ctx.shape.schema(), ctx.tree)
    if errors:
        raise Fault("SCHEMA_INVALID", errors)
    # `request` is nillable in the contract, but a nil request cannot be routed.
    if _nil(ctx.operation.find("request")):
        raise Fault("SCHEMA_INVALID", f"the request of {ctx.shape.name} is nil or empty")


_INFO_FIELDS = ("message_id", "correlation_id", "service_id", "message_date", "route_id", "sender_id", "password",
                "message_type")


def _text(parent: etree._Element, path: str) -> str | None:
    el = parent.find(path)
    return el.text if el is not None else None


def read_request_info(ctx: MessageContext) -> None:
    paths = ctx.shape.fields
    ctx.info = MessageInfo(**{name: _text(ctx.operation, path) for name, path in paths.items()},
                           **{name: None for name in _INFO_FIELDS if name not in paths})
    ctx.note(f"{ctx.shape.name}: {ctx.info.sender_id} → {ctx.info.service_id or '-'}, "
             f"messageId {ctx.info.message_id or '-'}")


def validate_response_schema(ctx: MessageContext) -> None:
    with _payload_set_aside(ctx, ctx.shape.answer_data):
        errors = schema_errors(ctx.shape.schema(), ctx.tree)
    if errors:
        raise Fault("PROVIDER_RESPONSE_INVALID", errors)
    if not ctx.is_fault and _nil(ctx.operation.find("response")):
        raise Fault("PROVIDER_RESPONSE_INVALID", "the response is nil or empty")
