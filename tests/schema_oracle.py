"""Independent validators for one contract, on the same documents:

- lxml (the libxml2 it bundles), what the gateway itself validates with;
- xmlschema (pure Python, a test dependency): an XSD 1.0 implementation that shares no code with libxml2;
- the `xmllint` command (Debian's libxml2, package libxml2-utils) where it is installed, as CI has it.

A document is valid only if every validator present says so, and a broken one must be refused by each; the
closing summary of `make test` names the validators that ran.
"""
from __future__ import annotations

import shutil
import subprocess
from functools import cached_property
from pathlib import Path

import xmlschema
from lxml import etree

from tests import system_tools

PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
DATA = Path(__file__).resolve().parent / "data"


def load(name: str) -> etree._ElementTree:
    """A sample message from tests/data."""
    return etree.parse(str(DATA / name), PARSER)


def unq(parent: etree._Element, path: str) -> etree._Element:
    """Find an unqualified descendant by a slash-separated path of local names."""
    node = parent.find(".//" + path)
    assert node is not None, path
    return node


def write(tmp_path: Path, doc: etree._ElementTree | etree._Element, name: str = "msg.xml") -> Path:
    path = tmp_path / name
    tree = doc if isinstance(doc, etree._ElementTree) else etree.ElementTree(doc)
    tree.write(str(path), xml_declaration=True, encoding="UTF-8")
    return path


def xmllint(schema: Path, document: Path) -> subprocess.CompletedProcess:
    """`xmllint --schema`; the test skips, naming libxml2-utils, where it is not installed."""
    exe = system_tools.require("xmllint")
    system_tools.used("XML schemas", "xmllint command")
    return subprocess.run([exe, "--noout", "--nonet", "--schema", str(schema), str(document)],
                          check=False, capture_output=True, text=True, timeout=60)


def xmlschema_compiles(schema: Path) -> xmlschema.XMLSchema10:
    """The schema (and what it imports) built by xmlschema: it raises on a schema it finds invalid."""
    return xmlschema.XMLSchema10(str(schema), allow="local", defuse="always")


class SchemaOracle:
    """lxml, xmlschema and (where installed) xmllint against one driver schema (xsd/shep-sync.xsd,
    xsd/shep-async.xsd)."""

    def __init__(self, driver: Path):
        self.driver = driver

    @cached_property
    def schema(self) -> etree.XMLSchema:
        return etree.XMLSchema(etree.parse(str(self.driver), PARSER))

    @cached_property
    def pure_schema(self) -> xmlschema.XMLSchema10:
        return xmlschema_compiles(self.driver)

    def lxml_errors(self, doc: etree._ElementTree | etree._Element) -> list[str]:
        system_tools.used("XML schemas", "lxml")
        return [] if self.schema.validate(doc) else [str(e) for e in self.schema.error_log]

    def xmlschema_errors(self, doc: etree._ElementTree | etree._Element) -> list[str]:
        system_tools.used("XML schemas", f"xmlschema {xmlschema.__version__}")
        root = doc.getroot() if isinstance(doc, etree._ElementTree) else doc
        return [str(error) for error in self.pure_schema.iter_errors(root)]

    def run_xmllint(self, path: Path) -> subprocess.CompletedProcess:
        return xmllint(self.driver, path)

    def errors(self, doc, tmp_path: Path) -> dict[str, list[str]]:
        """Each validator present and its errors (none: valid)."""
        found = {"lxml": self.lxml_errors(doc), "xmlschema": self.xmlschema_errors(doc)}
        if shutil.which("xmllint"):
            res = self.run_xmllint(write(tmp_path, doc))
            found["xmllint"] = [] if res.returncode == 0 else [res.stderr]
        return found

    def assert_valid(self, doc, tmp_path: Path) -> None:
        refused = {name: errors for name, errors in self.errors(doc, tmp_path).items() if errors}
        assert not refused, refused

    def assert_invalid(self, doc, tmp_path: Path, expect: str | None = None) -> None:
        """Every validator refuses the document; with `expect`, each names it in an error."""
        for name, errors in self.errors(doc, tmp_path).items():
            assert errors, f"{name} accepted an invalid message"
            if expect:
                assert any(expect in e for e in errors), (name, errors)
