"""The web foundation (gateway/web/pages) without a server: catalogues, forms, CSRF tokens, the secret file."""
from __future__ import annotations

import pytest

from gateway.web.pages import forms, i18n, security
from gateway.web.pages.resource import MESSAGES
from endpoints.portal.pages import HERE as PORTAL
from tests import html_oracle, system_tools


def test_the_shipped_catalogues_agree_key_for_key():
    catalogue = i18n.Catalogue([MESSAGES, PORTAL / "messages"])
    assert set(catalogue.messages["kk"]) == set(catalogue.messages["ru"])
    assert catalogue.text("kk", "portal.sign.submit") == "қол қою"
    assert catalogue.text("ru", "portal.status.refresh") == "Обновить статус"


def test_a_catalogue_missing_a_key_is_refused(tmp_path):
    (tmp_path / "kk.toml").write_text('[a]\nb = "бір"\nc = "екі"\n', encoding="utf-8")
    (tmp_path / "ru.toml").write_text('[a]\nb = "один"\n', encoding="utf-8")
    with pytest.raises(ValueError, match="the ru catalogue lacks a.c"):
        i18n.Catalogue([tmp_path])


def test_the_language_is_asked_then_remembered_then_the_first_of_the_pages_languages():
    catalogue = i18n.Catalogue([MESSAGES])
    assert catalogue.choose("ru", "kk") == "ru"
    assert catalogue.choose(None, "ru") == "ru"
    assert catalogue.choose("en", None) == catalogue.choose(None, "xx") == "kk"
    english = i18n.Catalogue([MESSAGES], ("en",))  # the gateway's console
    assert english.choose("kk", "ru") == "en" and english.text("en", "web.error.title") == "Error"
    assert set(english.messages) == {"en"}
    with pytest.raises(ValueError, match="languages must be"):
        i18n.Catalogue([MESSAGES], ("de",))
    assert i18n.moment("2026-12-04T10:00:00+05:00") == "2026-12-04 10:00 (UTC+05:00)"


def test_forms_urlencoded_and_multipart():
    form = forms.parse("iin=850412353057&name=%D0%95%D1%80%D0%BB%D0%B0%D0%BD&empty=".encode(),
                       "application/x-www-form-urlencoded", 1024)
    assert (form.get("iin"), form.get("name"), form.text("empty")) == ("850412353057", "Ерлан", None)
    body = (b"--XX\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\np\xc3\xa4ss\r\n"
            b"--XX\r\nContent-Disposition: form-data; name=\"pkcs12\"; filename=\"eds.p12\"\r\n"
            b"Content-Type: application/x-pkcs12\r\n\r\n\x00\x01\x02\r\n--XX--\r\n")
    form = forms.parse(body, "multipart/form-data; boundary=XX", 1024)
    assert form.get("password") == "päss" and form.files["pkcs12"].data == b"\x00\x01\x02"
    with pytest.raises(forms.FormError):
        forms.parse(b"--XX\r\nbroken", "multipart/form-data; boundary=XX", 1024)
    with pytest.raises(forms.FormError):
        forms.parse(b"{}", "application/json", 1024)


def test_csrf_tokens_belong_to_their_session_and_secret(tmp_path):
    secret = security.load_secret(tmp_path)
    assert security.load_secret(tmp_path) == secret  # kept: every worker process reads the same
    assert (tmp_path / security.SECRET_FILE).stat().st_mode & 0o777 == 0o600
    token = security.csrf_token(secret, "session-a")
    assert security.csrf_valid(secret, "session-a", token)
    assert not security.csrf_valid(secret, "session-b", token)
    assert not security.csrf_valid(b"another secret", "session-a", token)
    assert not security.csrf_valid(secret, "", token) and not security.csrf_valid(secret, "session-a", None)


def test_the_html_validator_refuses_what_the_standard_forbids():
    """The check every fetched page goes through (tests/html_oracle.py) does find errors: a page html5lib
    parses happily but with a duplicate id and a label for no control."""
    system_tools.require("java")
    page = (b'<!DOCTYPE html><html lang="kk"><head><meta charset="utf-8"><title>t</title></head><body>'
            b'<p id="a">1</p><p id="a">2</p><label for="nothing">x</label></body></html>')
    html_oracle.record("http://127.0.0.1/broken", page)
    errors = html_oracle.check_pending()
    assert any("Duplicate ID" in line for line in errors), errors
    assert any("nothing" in line for line in errors), errors
    html_oracle.record("http://127.0.0.1/fine", page.replace(b'id="a">2', b'id="b">2').replace(b' for="nothing"', b""))
    assert html_oracle.check_pending() == []
