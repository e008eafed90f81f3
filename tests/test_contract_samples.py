"""Every sample message in tests/data is valid for each validator (tests/schema_oracle.py), against its channel's
driver schema."""
from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from tests.schema_oracle import DATA, PARSER, SchemaOracle, load

XSD_DIR = Path(__file__).resolve().parent.parent / "xsd"
SYNC = SchemaOracle(XSD_DIR / "shep-sync.xsd")
ASYNC = SchemaOracle(XSD_DIR / "shep-async.xsd")
SAMPLES = {
    SYNC: ["sync-request.xml", "sync-response.xml", "sync-fault.xml"],
    ASYNC: ["async-send-request.xml", "async-send-response.xml", "async-get-messages-request.xml",
            "async-get-messages-response.xml", "async-delivery-notification-request.xml",
            "async-delivery-notification-response.xml", "async-get-status-request.xml",
            "async-get-status-response.xml", "async-push-change-status-request.xml",
            "async-push-change-status-response.xml", "async-fault.xml"],
}
CASES = [pytest.param(oracle, name, id=name) for oracle, names in SAMPLES.items() for name in names]


@pytest.mark.parametrize("oracle", [SYNC, ASYNC], ids=["sync", "async"])
def test_driver_has_no_target_namespace(oracle):
    assert etree.parse(str(oracle.driver), PARSER).getroot().get("targetNamespace") is None


@pytest.mark.parametrize("oracle, name", CASES)
def test_sample_valid_lxml(oracle, name):
    errors = oracle.lxml_errors(load(name))
    assert not errors, errors


@pytest.mark.parametrize("oracle, name", CASES)
def test_sample_valid_xmlschema(oracle, name):
    errors = oracle.xmlschema_errors(load(name))
    assert not errors, errors


@pytest.mark.parametrize("oracle, name", CASES)
def test_sample_valid_xmllint(oracle, name):
    res = oracle.run_xmllint(DATA / name)
    assert res.returncode == 0, res.stderr
