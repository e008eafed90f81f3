"""The gateway console in a real browser: headless Chromium (tests/browser.py) on `shep serve` with the shipped
configuration and one operator, who signs in, finds a DEMO_Echo exchange in the journal by its messageId and
opens it: its hops are shown, in order, the EDS-signed payload marked."""
from __future__ import annotations

import uuid

import pytest

from tests import browser
from tests.serve_process import ServeProcess

START_TIMEOUT = 60


@pytest.fixture
def server(tmp_path):
    if not browser.available():
        pytest.skip(browser.SKIP_REASON)
    config = browser.console_config(tmp_path)
    serve = ServeProcess("--config", str(config), "--port", "0", "--state-dir", str(tmp_path / "var"), cwd=tmp_path,
                         log=tmp_path / "serve.log")
    try:
        yield serve.wait_listening(START_TIMEOUT)
    finally:
        serve.terminate()
        serve.close()


def test_an_exchange_opened_in_the_console_shows_its_hops(server, tmp_path):
    message_id = str(uuid.uuid4())
    browser.send_demo_echo(server, message_id, tmp_path / "var")
    driver = browser.chromium(tmp_path)
    try:
        hops, timeline = browser.walk_console(driver, server, message_id)
    finally:
        driver.quit()
    assert hops == ["request-in", "request-out", "response-in", "response-out"]
    assert message_id in timeline and "authenticate" in timeline and "DEMO_Echo" in timeline
    assert timeline.endswith("[2 marked]")  # the signed payload, in the request-in and request-out hops
