"""The business payload (`data`, xs:anyType) against the service's own schema, in all three styles.

Styles (contract §6): an escaped XML document as text (`xsi:type="xs:string"` or no type),
typed inline (`xsi:type="ns:Type"`, unqualified children) and untyped inline (one child element).
"""
from __future__ import annotations

import threading
from copy import deepcopy
from pathlib import Path

from lxml import etree

from gateway import contract as c
from gateway.checks.schema import schema_errors
from gateway.context import MessageContext
from gateway.faults import Fault


class PayloadSchema:
    """A service's payload schema: as loaded (for documents) and behind a `data` driver (for xsi:type)."""

    def __init__(self, path: Path):
        self.path = path
        self.documents = c.load_schema(path)
        namespace = etree.parse(str(path)).getroot().get("targetNamespace") or ""
        ns_attr = f' namespace="{namespace}"' if namespace else ""
        # `data` is xs:anyType: with xsi:type set, libxml2 validates it against that type.
        driver = (f'<xs:schema xmlns:xs="{c.XS_NS}">'
                  f'<xs:import{ns_attr} schemaLocation="{path.resolve().as_uri()}"/>'
                  f'<xs:element name="data" type="xs:anyType"/></xs:schema>')
        self.typed = etree.XMLSchema(etree.fromstring(
            driver, etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)))

    def errors(self, data: etree._Element) -> str | None:
        xsi_type = data.get(c.XSI_TYPE)
        children = [el for el in data if isinstance(el.tag, str)]
        if xsi_type is not None and _resolves_to_string(data, xsi_type) or (xsi_type is None and not children):
            return self._escaped_errors(data.text or "")
        if xsi_type is not None:
            return schema_errors(self.typed, _standalone_data(data))
        if len(children) != 1:
            return f"data holds {len(children)} elements; one document element is expected"
        return self._document_errors(children[0])

    def _escaped_errors(self, text: str) -> str | None:
        if not text.strip():
            return "data is empty"
        try:
            tree = c.PARSER.parse(text.strip().encode("utf-8"))
        except (ValueError, etree.XMLSyntaxError) as exc:
            return f"escaped data is not an XML document: {exc}"
        return schema_errors(self.documents, tree)

    def _document_errors(self, element: etree._Element) -> str | None:
        return schema_errors(self.documents, etree.ElementTree(_copy_in_scope(element)))


def _resolves_to_string(el: etree._Element, qname: str) -> bool:
    prefix, _, local = qname.rpartition(":")
    return local == "string" and el.nsmap.get(prefix or None) == c.XS_NS


def _copy_in_scope(element: etree._Element, tag=None) -> etree._Element:
    """Copy an element keeping every namespace in scope (xsi:type values are QNames that need them)."""
    copy = etree.Element(tag or element.tag, attrib=dict(element.attrib), nsmap=element.nsmap)
    copy.text = element.text
    for child in element:
        copy.append(deepcopy(child))
    return copy


def _standalone_data(data: etree._Element) -> etree._ElementTree:
    return etree.ElementTree(_copy_in_scope(data, tag="data"))


class PayloadSchemas:
    """Loaded payload schemas, by path; shared by the worker threads."""

    def __init__(self) -> None:
        self._loaded: dict[Path, PayloadSchema] = {}
        self._lock = threading.Lock()

    def get(self, path: Path) -> PayloadSchema:
        with self._lock:
            schema = self._loaded.get(path)
            if schema is None:
                schema = self._loaded[path] = PayloadSchema(path)
            return schema


def validate_request_payload(ctx: MessageContext) -> None:
    if ctx.service.payload_schema is None:
        ctx.note("the service declares no payload schema")
        return
    data = ctx.operation.find(ctx.shape.data)
    if data is None:
        raise Fault("PAYLOAD_MISSING", f"{ctx.service.id!r} declares {ctx.service.payload_schema.name}")
    errors = ctx.env.payload_schemas.get(ctx.service.payload_schema).errors(data)
    if errors:
        raise Fault("PAYLOAD_INVALID", errors)


def validate_response_payload(ctx: MessageContext) -> None:
    if ctx.is_fault or ctx.service.payload_schema is None or ctx.shape.answer_data is None:
        return
    data = ctx.operation.find(ctx.shape.answer_data)
    if data is None:
        ctx.note("the response carries no data")
        return
    errors = ctx.env.payload_schemas.get(ctx.service.payload_schema).errors(data)
    if errors:
        raise Fault("PROVIDER_PAYLOAD_INVALID", errors)
