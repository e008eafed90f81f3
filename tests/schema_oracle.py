"""Two validators for one contract: lxml and the xmllint command (libxml2-utils), on the same documents."""
from __future__ import annotations

import shutil
import subprocess
from functools import cached_property
from pathlib import Path

import pytest
from lxml import etree

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


def xmllint() -> str:
    exe = shutil.which("xmllint")
    if exe is None:
        pytest.fail("xmllint not found: install libxml2-utils (apt-get install libxml2-utils)")
    return exe


def write(tmp_path: Path, doc: etree._ElementTree | etree._Element, name: str = "msg.xml") -> Path:
    path = tmp_path / name
    tree = doc if isinstance(doc, etree._ElementTree) else etree.ElementTree(doc)
    tree.write(str(path), xml_declaration=True, encoding="UTF-8")
    return path


class SchemaOracle:
    """lxml and xmllint against one driver schema (xsd/shep-sync.xsd, xsd/shep-async.xsd)."""

    def __init__(self, driver: Path):
        self.driver = driver

    @cached_property
    def schema(self) -> etree.XMLSchema:
        return etree.XMLSchema(etree.parse(str(self.driver), PARSER))

    def lxml_errors(self, doc: etree._ElementTree | etree._Element) -> list[str]:
        return [] if self.schema.validate(doc) else [str(e) for e in self.schema.error_log]

    def run_xmllint(self, path: Path) -> subprocess.CompletedProcess:
        return subprocess.run([xmllint(), "--noout", "--nonet", "--schema", str(self.driver), str(path)],
                              check=False, capture_output=True, text=True, timeout=60)

    def assert_valid_both(self, doc, tmp_path: Path) -> None:
        errors = self.lxml_errors(doc)
        assert not errors, errors
        res = self.run_xmllint(write(tmp_path, doc))
        assert res.returncode == 0, res.stderr

    def assert_invalid_both(self, doc, tmp_path: Path, expect: str | None = None) -> None:
        errors = self.lxml_errors(doc)
        assert errors, "lxml accepted an invalid message"
        if expect:
            assert any(expect in e for e in errors), errors
        res = self.run_xmllint(write(tmp_path, doc))
        assert res.returncode != 0, "xmllint accepted an invalid message"
        if expect:
            assert expect in res.stderr, res.stderr
