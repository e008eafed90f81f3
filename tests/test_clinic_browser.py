"""Diagram 2 in a real browser: headless Chromium on the workstation pages of `shep serve` (the shipped
configuration: the clinics' АЖО asking the ЖТ ММБ simulator through the gateway). Every button is clicked by
its name, «ашу» (§9) among them; the downloaded coupon's signature is verified by our verifier and by
libxmlsec1 (tests/xmlsec_oracle.py), the paper coupon read back."""
from __future__ import annotations

import base64
import re

import pytest
from cryptography import x509
from lxml import etree

from gateway.security import xmldsig
from gateway.security.algorithms import AlgorithmPolicy
from tests import xmlsec_oracle
from tests.clinic_browser import walk_diagram_2
from tests.pdf_text import pdf_text
from tests.test_portal_browser import driver, server  # noqa: F401 (the fixtures: a browser, a shep serve)

DS = "{http://www.w3.org/2000/09/xmldsig#}"


@pytest.mark.parametrize("lang", ["kk", "ru"])
def test_diagram_2_in_chromium(driver, server, lang):  # noqa: F811 (no browser: skipped before the server starts)
    walk = walk_diagram_2(driver, server, driver.downloads, lang=lang)
    texts = {"kk": ("Авторизациядан бас тартылды", "ЖТ ММБ-да жоқ", "Орындалды"),
             "ru": ("Отказ в авторизации", "отсутствует в ГБД ФЛ", "Исполнен")}[lang]
    assert texts[0] in walk.refused_login and texts[1] in walk.not_found and walk.status == texts[2]
    assert re.fullmatch(r"R-\d{8}-\d{6}", walk.number)
    assert walk.lists == {"incoming": [walk.number], "answered": [walk.number]}
    assert walk.opened == walk.coupon_number  # «ашу» shows the result
    assert walk.coupon_number in walk.attached

    # The downloaded coupon: the clinic's authorised person's EDS, verified twice; a changed copy fails.
    document = walk.coupon_xml.read_bytes()
    verified = xmldsig.verify_document(document, policy=AlgorithmPolicy())
    assert verified.root.findtext("couponNumber") == walk.coupon_number
    signer = x509.load_der_x509_certificate(base64.b64decode(etree.fromstring(document).findtext(
        f".//{DS}X509Certificate")))
    assert xmlsec_oracle.verify(document, cert=signer).ok
    assert not xmlsec_oracle.verify(document.replace(walk.coupon_number.encode(), b"AKT-P2-0"), cert=signer).ok
    pdf = walk.coupon_pdf.read_bytes()
    assert pdf.startswith(b"%PDF-") and walk.coupon_number in pdf_text(pdf)
