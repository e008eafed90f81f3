"""The ShEP wire contract in code: namespaces, the contract files, the hardened parser.

Element names come from `xsd/` and `wsdl/`; tests keep this module and the files in step.
"""
from __future__ import annotations

import re
import threading
from functools import lru_cache
from pathlib import Path

from lxml import etree

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_NS = "http://www.w3.org/2003/05/soap-envelope"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
XS_NS = "http://www.w3.org/2001/XMLSchema"
SYNC_NS = "http://bip.bee.kz/SyncChannel/v10/Types"
SYNC_REQ_NS = "http://bip.bee.kz/SyncChannel/v10/Types/Request"
SYNC_RESP_NS = "http://bip.bee.kz/SyncChannel/v10/Types/Response"
SYNC_IFACE_NS = "http://bip.bee.kz/SyncChannel/v10/Interfaces"
COMMON_NS = "http://bip.bee.kz/common/v10/Types"
ASYNC_NS = "http://bip.bee.kz/AsyncChannel/v10/Types"
ASYNC_TYPES_NS = "http://bip.bee.kz/AsyncChannel/v10/ITypes"
ASYNC_CLIENT_NS = "http://bip.bee.kz/AsyncChannel/v10/Types/Client"
WSSE_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"


def q(ns: str, local: str) -> str:
    return f"{{{ns}}}{local}"


ENVELOPE = q(SOAP_NS, "Envelope")
HEADER = q(SOAP_NS, "Header")
BODY = q(SOAP_NS, "Body")
FAULT = q(SOAP_NS, "Fault")
SEND_MESSAGE = q(SYNC_NS, "SendMessage")
SEND_MESSAGE_RESPONSE = q(SYNC_NS, "SendMessageResponse")
SYNC_FAULT = q(SYNC_NS, "SendMessageFault1_SendMessageFault")
MUST_UNDERSTAND = q(SOAP_NS, "mustUnderstand")
XSI_TYPE = q(XSI_NS, "type")

SUCCESS_STATUS = "SCSS001"

# Header namespaces the sync route processes itself (WS-Security arrives with the PKI work).
UNDERSTOOD_HEADERS = frozenset({WSSE_NS, WSU_NS})

_ROOT = Path(__file__).resolve().parent.parent
# Installed from the wheel, `wsdl/` and `xsd/` sit next to the `gateway` package in site-packages;
# in a checkout they sit next to it in the repository: the same relative path in both cases.
WSDL_DIR = _ROOT / "wsdl"
XSD_DIR = _ROOT / "xsd"
SYNC_WSDL = "SyncChannel-v10.wsdl"
SYNC_DRIVER_XSD = "shep-sync.xsd"
ASYNC_WSDL = "AsyncChannel-v10.wsdl"
ASYNC_DRIVER_XSD = "shep-async.xsd"


_DOCTYPE_PROLOG = re.compile(rb"\A(?:\xef\xbb\xbf)?\s*(?:<\?xml[^>]*\?>)?(?:\s*<!--.*?-->)*\s*<!DOCTYPE", re.S)


class XMLParser:
    """One hardened parser configuration: no DTDs, no entities, no network, libxml2's own limits."""

    def __init__(self) -> None:
        # lxml parsers must not be shared between threads: one per thread.
        self._local = threading.local()

    def _parser(self) -> etree.XMLParser:
        parser = getattr(self._local, "parser", None)
        if parser is None:
            parser = self._local.parser = etree.XMLParser(
                resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                huge_tree=False, remove_blank_text=False)
        return parser

    def parse(self, raw: bytes) -> etree._ElementTree:
        """Parse bytes; ValueError for any DOCTYPE or entity, etree.XMLSyntaxError when not well-formed."""
        try:
            tree = etree.ElementTree(etree.fromstring(raw, self._parser()))
        except etree.XMLSyntaxError:
            # libxml2 stops entity bombs itself (amplification limit): still a DOCTYPE refusal.
            if _DOCTYPE_PROLOG.match(raw):
                raise ValueError("a DOCTYPE declaration is present") from None
            raise
        info = tree.docinfo
        if info.doctype or info.internalDTD is not None or info.externalDTD is not None:
            raise ValueError("a DOCTYPE declaration is present")
        if any(True for _ in tree.getroot().iter(etree.Entity)):
            raise ValueError("an entity reference is present")
        return tree


PARSER = XMLParser()


def max_depth(root: etree._Element) -> int:
    depth = deepest = 0
    for event, _ in etree.iterwalk(root, events=("start", "end")):
        if event == "start":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def load_document(path: Path) -> etree._ElementTree:
    """A trusted local file (schema, WSDL, config-declared XSD), parsed without DTDs or network."""
    return etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False))


def load_schema(path: Path) -> etree.XMLSchema:
    """Load an XML Schema; its imports resolve from local files only."""
    return etree.XMLSchema(load_document(path))


@lru_cache(maxsize=1)
def sync_schema() -> etree.XMLSchema:
    """The envelope + SyncChannel + WS-Security schemas, as one set (xsd/shep-sync.xsd)."""
    return load_schema(XSD_DIR / SYNC_DRIVER_XSD)


@lru_cache(maxsize=1)
def async_schema() -> etree.XMLSchema:
    """The envelope + AsyncChannel (gateway and push client) + WS-Security schemas (xsd/shep-async.xsd)."""
    return load_schema(XSD_DIR / ASYNC_DRIVER_XSD)


def contract_file(kind: str, name: str) -> Path | None:
    """A file from wsdl/ or xsd/ by bare file name; None for anything else (no path traversal)."""
    base = {"wsdl": WSDL_DIR, "xsd": XSD_DIR}[kind]
    if "/" in name or "\\" in name or name.startswith("."):
        return None
    path = base / name
    return path if path.is_file() else None
