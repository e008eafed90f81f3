"""A hop's stored bytes as the console shows them: pretty-printed XML, every element a signature covers
wrapped in `<mark>`.

What a `ds:Reference` covers: `URI="#x"` the element whose `Id`, `ID`, `id` or `wsu:Id` is x (a
WS-Security signature's Body and Timestamp); `URI=""` with the enveloped transform the element holding
the signature (an EDS / ЭЦП over the business document). Bytes that are not well-formed XML are shown as
text, unmarked. The HTML is built here, every piece of the message escaped, because the marks open and
close around elements the template cannot see.
"""
from __future__ import annotations

from dataclasses import dataclass

from lxml import etree
from markupsafe import Markup, escape

from gateway.contract import PARSER

DS = "http://www.w3.org/2000/09/xmldsig#"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
_ID_ATTRIBUTES = ("Id", "ID", "id", f"{{{WSU}}}Id")
INDENT = "  "


@dataclass(frozen=True)
class Shown:
    html: Markup
    xml: bool  # False: not well-formed, shown as text
    covered: list[str]  # what each reference covers, "#Id → soap:Body" (for the list under the view)


def covered_elements(root: etree._Element) -> dict[etree._Element, list[str]]:
    """Each covered element and the references that cover it (their URI, "" for the enveloping one)."""
    by_id = {}
    for element in root.iter(etree.Element):
        for name in _ID_ATTRIBUTES:
            value = element.get(name)
            if value:
                by_id.setdefault(value, element)
    covered: dict[etree._Element, list[str]] = {}
    for reference in root.iter(f"{{{DS}}}Reference"):
        uri = reference.get("URI")
        signature = next((a for a in reference.iterancestors(f"{{{DS}}}Signature")), None)
        if uri == "" and signature is not None and signature.getparent() is not None:
            target = signature.getparent()
        elif uri and uri.startswith("#"):
            target = by_id.get(uri[1:])
        else:
            target = None  # an external or unresolvable reference: nothing in these bytes to mark
        if target is not None:
            covered.setdefault(target, []).append(uri)
    return covered


def show(body: bytes) -> Shown:
    try:
        root = PARSER.parse(body).getroot()
    except (etree.XMLSyntaxError, ValueError):
        return Shown(Markup(escape(body.decode("utf-8", "replace"))), False, [])
    covered = covered_elements(root)
    lines: list[str] = []
    _element(root, 0, {}, covered, lines)
    listed = [f"{uri or '(enveloped)'} → {_name(element)}" for element, uris in covered.items() for uri in uris]
    return Shown(Markup("\n".join(lines)), True, listed)


def _name(element: etree._Element) -> str:
    qname = etree.QName(element)
    return f"{element.prefix}:{qname.localname}" if element.prefix else qname.localname


def _attribute_name(name: str, element: etree._Element) -> str:
    if not name.startswith("{"):
        return name
    qname = etree.QName(name)
    prefix = next((p for p, uri in element.nsmap.items() if uri == qname.namespace and p), None)
    return f"{prefix}:{qname.localname}" if prefix else qname.localname


def _e(text: str) -> str:
    return str(escape(text))


def _element(element, depth: int, parent_ns: dict, covered: dict, lines: list[str]) -> None:
    pad = INDENT * depth
    if not isinstance(element.tag, str):  # a comment or processing instruction
        lines.append(pad + _e(etree.tostring(element, encoding="unicode", with_tail=False)))
        return
    declared = {p: uri for p, uri in element.nsmap.items() if parent_ns.get(p) != uri}
    attributes = [f'xmlns{":" + p if p else ""}="{uri}"' for p, uri in declared.items()]
    attributes += [f'{_attribute_name(k, element)}="{v}"' for k, v in element.attrib.items()]
    name = _name(element)
    opening = "<" + " ".join([name, *attributes])
    mark = covered.get(element)
    shown = ", ".join(uri or "(enveloped)" for uri in mark or [])
    start = f'<mark class="covered" title="{_e("covered by the signature reference " + shown)}">' if mark else ""
    end = "</mark>" if mark else ""
    children = list(element)
    text = (element.text or "").strip()
    if not children:
        body = _e(opening + (f">{text}</{name}>" if text else "/>"))
        lines.append(pad + start + body + end)
        return
    lines.append(pad + start + _e(opening + ">"))
    if text:
        lines.append(pad + INDENT + _e(text))
    for child in children:
        _element(child, depth + 1, element.nsmap, covered, lines)
        tail = (child.tail or "").strip()
        if tail:
            lines.append(pad + INDENT + _e(tail))
    lines.append(pad + _e(f"</{name}>") + end)
