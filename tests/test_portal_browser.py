"""Diagram 1 in a real browser: headless Chromium on the pages of `shep serve` (the shipped configuration:
the portal, the clinics' АЖО answering through the gateway, the ЖТ ММБ simulator). Every button the
regulation names is clicked; the downloaded coupon's signature is verified by our verifier
and by libxmlsec1 (tests/xmlsec_oracle.py)."""
from __future__ import annotations

import base64
import re

import pytest
from cryptography import x509
from lxml import etree

from gateway.security import xmldsig
from gateway.security.algorithms import AlgorithmPolicy
from tests import browser
from tests.serve_process import ServeProcess
from tests import xmlsec_oracle

START_TIMEOUT = 60


@pytest.fixture
def server(tmp_path, tested_store):
    serve = ServeProcess("--port", "0", "--state-dir", str(tmp_path / "var"), *tested_store.store_option,
                         cwd=tmp_path, log=tmp_path / "serve.log")
    try:
        yield serve.wait_listening(START_TIMEOUT)
    finally:
        serve.terminate()
        serve.close()


@pytest.fixture
def driver(tmp_path):
    if not browser.available():
        pytest.skip(browser.SKIP_REASON)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    chromium = browser.chromium(downloads)
    chromium.downloads = downloads
    yield chromium
    chromium.quit()


@pytest.mark.parametrize("lang", ["kk", "ru"])
def test_diagram_1_in_chromium(driver, server, tmp_path, lang):  # no browser: skipped before the server starts
    walk = browser.walk_diagram_1(driver, server, driver.downloads, lang=lang)
    refused = {"kk": "Авторизациядан бас тартылды", "ru": "Отказ в авторизации"}[lang]
    assert refused in walk.refused_login
    labels = {"kk": ("Өтінім жіберілді", "Орындалды"), "ru": ("Заявка отправлена", "Исполнена")}[lang]
    assert walk.statuses[0] == labels[0] and walk.statuses[-1] == labels[1], walk.statuses
    assert re.fullmatch(r"EGOV-\d{6}", walk.number)

    # The downloaded coupon: the clinic's authorised person's EDS, verified twice, and it names this request.
    document = walk.coupon_xml.read_bytes()
    verified = xmldsig.verify_document(document, policy=AlgorithmPolicy())
    assert verified.root.findtext("requestNumber") == walk.number
    certificate = etree.fromstring(document).findtext(".//{http://www.w3.org/2000/09/xmldsig#}X509Certificate")
    signer = x509.load_der_x509_certificate(base64.b64decode(certificate))
    assert xmlsec_oracle.verify(document, cert=signer).ok
    tampered = document.replace(walk.number.encode(), b"EGOV-999999")
    assert not xmlsec_oracle.verify(tampered, cert=signer).ok
    assert base64.b64decode(certificate)  # the signer's certificate travels with the coupon
    assert walk.coupon_pdf.read_bytes().startswith(b"%PDF-")
