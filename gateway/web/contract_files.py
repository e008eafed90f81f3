"""`?wsdl` and `?xsd=` documents, with every reference rewritten to the URL the client used."""
from __future__ import annotations

from copy import deepcopy
from functools import lru_cache
from urllib.parse import parse_qsl

from lxml import etree

from gateway import contract as c

WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
WSDL_SOAP_NS = "http://schemas.xmlsoap.org/wsdl/soap/"


def base_url(request) -> str:
    """The scheme, host and port the client used (its Host header), so URLs we hand out work for it."""
    scheme = "https" if request.isSecure() else "http"
    host = request.getHeader("host")
    if not host:
        addr = request.getHost()
        host = f"{addr.host}:{addr.port}"
    return f"{scheme}://{host}"


def serve_here(request, default_wsdl: str, what: str) -> bytes:
    """A party's own address answering GET: its contract files as served at the URL the client used, or 404
    saying what the address is for (`what`)."""
    document = serve(request, base_url(request) + request.path.decode("utf-8", "replace"), default_wsdl)
    if document is None:
        request.setResponseCode(404)
        request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
        return f"GET ?wsdl for the {what} contract; the operations are POSTed\n".encode()
    return document


def serve(request, endpoint: str, default_wsdl: str) -> bytes | None:
    """Answer `?wsdl`, `?wsdl=<file>` or `?xsd=<file>` for the address `endpoint`; None when the query asks
    for no contract file (the caller handles the GET itself)."""
    # `?wsdl` has no "=", which request.args drops: read the query string itself.
    query = dict(parse_qsl(request.uri.partition(b"?")[2].decode("utf-8", "replace"), keep_blank_values=True))
    if "wsdl" in query:
        document = render("wsdl", query["wsdl"] or default_wsdl, endpoint)
    elif "xsd" in query:
        document = render("xsd", query["xsd"], endpoint)
    else:
        return None
    if document is None:
        request.setResponseCode(404)
        request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
        return b"no such contract file\n"
    request.setHeader(b"Content-Type", b"text/xml; charset=utf-8")
    return document


@lru_cache(maxsize=64)
def _template(kind: str, name: str) -> etree._ElementTree | None:
    path = c.contract_file(kind, name)
    return c.load_document(path) if path else None


def render(kind: str, name: str, endpoint: str) -> bytes | None:
    """The contract file `name` from wsdl/ or xsd/ as served at `endpoint` (e.g. http://host:port/bip-sync/)."""
    template = _template(kind, name)
    if template is None:
        return None
    doc = deepcopy(template)
    for el in doc.iter(f"{{{c.XS_NS}}}import", f"{{{c.XS_NS}}}include"):
        location = el.get("schemaLocation")
        if location:
            el.set("schemaLocation", f"{endpoint}?xsd={location.rsplit('/', 1)[-1]}")
    for el in doc.iter(f"{{{WSDL_NS}}}import"):
        location = el.get("location")
        if location:
            el.set("location", f"{endpoint}?wsdl={location.rsplit('/', 1)[-1]}")
    for el in doc.iter(f"{{{WSDL_SOAP_NS}}}address"):
        el.set("location", endpoint)
    return etree.tostring(doc, xml_declaration=True, encoding="UTF-8")
