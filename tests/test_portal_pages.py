"""The portal's HTML pages over real HTTP (docs/web.md): diagram 1 clicked through the forms in Kazakh and
Russian with a plain client (tests/web_client.py: every page parsed by html5lib in strict mode, none with
inline script or style), the clinic played by the test over the gateway as in tests/test_portal_http.py;
the regulation's button names, the refusals with their reasons, CSRF, the security headers, escaping."""
from __future__ import annotations

import re

import pytest
import pytest_twisted
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12

from endpoints.portal import PortalResource, portal_pages
from gateway.web.pages import security
from gateway.security import xmldsig
from gateway.security.algorithms import AlgorithmPolicy
from tests.conftest import stop_harness
from tests.test_portal import CITIZEN_IIN, CLINIC_BIN, OTHER_IIN
from tests.test_provider import NOBODY, PEOPLE
from tests.test_portal_http import Stand, coupon, start_stand, pulled_request, refusal, registration
from tests import xmlsec_oracle
from tests.web_client import WebClient, parse_strict

CITIZEN_PASSWORD = "citizen-secret"
# The regulation's buttons (§8) and screens, as a citizen reads them, and the refusals' reasons.
WORDS = {
    "kk": {"order": "«online» қызметіне тапсырыс беру", "send": "Сұрауды жіберу", "sign": "қол қою",
           "refresh": "мәртебені жаңарту", "view": "нәтижесін көру",
           "fields": ["ЖСН", "Сұрау нөмірі", "Қызмет түрі", "Сұратудың мәртебесі", "Қызмет көрсету мерзімі"],
           "sent": "Өтінім жіберілді", "done": "Орындалды", "auth": "Авторизациядан бас тартылды",
           "locked": "бұғатталды", "eds": "ЭЦҚ расталмауына байланысты қызмет көрсетуден бас тартылды",
           "iin_mismatch": "сұраудағы ЖСН куәліктегі ЖСН-ға сәйкес келмейді", "refused": "Бас тартылды",
           "ground": "Мекенжай қызмет көрсету аймағынан тыс", "csrf": "Сеанс ескірді", "not_found": "Мұндай бет жоқ"},
    "ru": {"order": "Заказать услугу online", "send": "Отправить запрос", "sign": "Подписать",
           "refresh": "Обновить статус", "view": "Просмотреть результат",
           "fields": ["ИИН", "Номер запроса", "Вид услуги", "Статус запроса", "Срок оказания услуги"],
           "sent": "Заявка отправлена", "done": "Исполнена", "auth": "Отказ в авторизации",
           "locked": "заблокирован", "eds": "Отказ в оказании услуги в связи с неподтверждением ЭЦП",
           "iin_mismatch": "ИИН в заявке не совпадает с ИИН в сертификате", "refused": "Отказано",
           "ground": "Адрес вне зоны обслуживания", "csrf": "Сеанс устарел", "not_found": "Такой страницы нет"},
}


@pytest_twisted.async_yield_fixture
async def site(tmp_path, pki):
    stand = await start_stand(tmp_path, pki, lambda portal: portal_pages(
        portal, secret=security.load_secret(tmp_path), api=PortalResource(portal)))
    yield stand
    await stop_harness(stand.harness)


def browser(site: Stand, lang: str | None = None) -> WebClient:
    client = WebClient(f"{site.harness.app.base_url}/portal")
    if lang:
        client.cookies["lang"] = lang
    return client


def button_texts(page) -> list[str]:
    html = page.html
    found = ["".join(b.itertext()).strip() for b in html.iter("{http://www.w3.org/1999/xhtml}button")]
    found += ["".join(a.itertext()).strip() for a in html.iter("{http://www.w3.org/1999/xhtml}a")
              if "button" in (a.get("class") or "").split()]
    return found


async def registered(web: WebClient, iin: str = CITIZEN_IIN, surname: str = "Ахметов") -> None:
    page = await web.get("/register")
    page = await web.submit(page, "register", iin=iin, surname=surname, name="Ерлан", password=CITIZEN_PASSWORD)
    assert page.status == 200 and page.find("registered") is not None, page.text


async def logged_in(web: WebClient, iin: str = CITIZEN_IIN, **kwargs) -> None:
    await registered(web, iin, **kwargs)
    page = await web.get("/login")
    page = await web.submit(page, "login", iin=iin, password=CITIZEN_PASSWORD)
    assert page.status == 200 and "portal_session" in web.cookies, page.text


async def drafted(web: WebClient):
    """Process 3 through the pages: the service card's order button, the form, «Сұрауды жіберу»: the signing page."""
    home = await web.get("/")
    order = home.find("order")
    form = await web.get(order.get("href"))
    return await web.submit(form, "request-form", clinic_bin=CLINIC_BIN, district="7")


# -- diagram 1, both languages ------------------------------------------------------------------------

@pytest.mark.parametrize("lang", ["kk", "ru"])
@pytest_twisted.ensureDeferred
async def test_diagram_1_through_the_pages(site, tmp_path, lang):
    words = WORDS[lang]
    web = browser(site, lang)
    home = await web.get("/")
    assert home.status == 200 and home.html.get("lang") == lang
    assert words["order"] in button_texts(home) and "1414" in home.find("callcentre").text
    await registered(web)

    # Process 2: a wrong password is refused with the reason, in the page's language.
    login = await web.get("/login")
    refused = await web.submit(login, "login", iin=CITIZEN_IIN, password="wrong-password")
    assert refused.status == 401 and words["auth"] in refused.find("refusal").findtext(".//*[@class='reason']")
    assert "portal_session" not in web.cookies
    page = await web.submit(refused, "login", password=CITIZEN_PASSWORD)
    assert page.status == 200 and CITIZEN_IIN in page.text

    sign_page = await drafted(web)
    number = re.search(r"/requests/([^/]+)/sign$", sign_page.url).group(1)
    # What is signed: the IIN, the clinic, the reason; the certificate issued at registration, chosen.
    assert (sign_page.find("signed-iin").text, sign_page.find("signed-clinic").text) == (CITIZEN_IIN, CLINIC_BIN)
    assert sign_page.find("signed-reason").text
    assert words["sign"] in button_texts(sign_page)
    assert len([i for i in sign_page.html.iter("{http://www.w3.org/1999/xhtml}input")
                if i.get("name") == "certificate" and i.get("checked") is not None]) == 1

    status = await web.submit(sign_page, "sign-form")
    assert status.status == 200 and status.url.endswith(f"/requests/{number}")
    assert [th.text for th in status.find("status").iter("{http://www.w3.org/1999/xhtml}th")] == words["fields"]
    cells = {td.get("class").split()[0]: "".join(td.itertext()).strip()
             for td in status.find("status").iter("{http://www.w3.org/1999/xhtml}td")}
    assert (cells["iin"], cells["number"], cells["status"]) == (CITIZEN_IIN, number, words["sent"])
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d \(UTC\+05:00\)", cells["deadline"])
    assert words["refresh"] in button_texts(status) and words["view"] not in button_texts(status)

    # The clinic registers and answers with its signed coupon, through the gateway.
    message, request = await pulled_request(site, CITIZEN_IIN)
    await site.answer("UPDATE", registration(number), message.correlation_id)
    await site.answer("RESPONSE", coupon(number, request), message.correlation_id)
    status = await web.submit(status, action=f"/requests/{number}/refresh")
    assert words["done"] in status.find("status").findtext(".//*[@class='status status-completed']")
    assert words["view"] in button_texts(status)

    result = await web.get(status.find("view-result").get("href"))
    assert result.status == 200 and "T-0001" in "".join(result.find("coupon").itertext())
    assert "ok" in result.find("signature").get("class")
    xml = await web.get(result.find("coupon-xml").get("href"))
    assert xml.status == 200 and xml.header("content-type") == "application/xml"
    assert "attachment" in xml.header("content-disposition")
    verified = xmldsig.verify_document(xml.body, policy=AlgorithmPolicy())
    assert verified.root.findtext("requestNumber") == number
    assert xmlsec_oracle.verify(xml.body, cert=site.clinic_cert.cert).ok
    pdf = await web.get(result.find("coupon-pdf").get("href"))
    assert pdf.status == 200 and pdf.header("content-type") == "application/pdf" and pdf.body.startswith(b"%PDF-")

    listing = await web.get("/requests")
    assert [th.text for th in listing.find("requests").iter("{http://www.w3.org/1999/xhtml}th")] == words["fields"]
    # Logging out ends the login: the pages send the citizen to the login form again.
    out = await web.submit(listing, action="/logout")
    assert out.status == 200 and "portal_session" not in web.cookies
    again = await web.get("/requests")
    assert again.url.endswith("/login?next=requests")


@pytest.mark.parametrize("lang", ["kk", "ru"])
@pytest_twisted.ensureDeferred
async def test_the_clinic_refusal_shows_its_grounds(site, lang):
    web = browser(site, lang)
    await logged_in(web)
    sign_page = await drafted(web)
    number = re.search(r"/requests/([^/]+)/sign$", sign_page.url).group(1)
    status = await web.submit(sign_page, "sign-form")
    message, _ = await pulled_request(site, CITIZEN_IIN)
    await site.answer("RESPONSE", refusal(number), message.correlation_id)
    status = await web.submit(status, action=f"/requests/{number}/refresh")
    assert WORDS[lang]["refused"] in status.text
    result = await web.get(status.find("view-result").get("href"))
    reasons = ["".join(li.itertext()) for li in result.find("reasons")]
    assert WORDS[lang]["ground"] in reasons[0] and "OUTSIDE_ZONE" in reasons[0] and len(reasons) == 2
    document = await web.get(result.find("refusal-xml").get("href"))
    assert xmldsig.verify_document(document.body, policy=AlgorithmPolicy()).root.findtext("requestNumber") == number
    pdf = await web.get(f"/requests/{number}/coupon.pdf")
    assert pdf.status == 409 and pdf.header("content-type").startswith("text/html")


# -- the certificates: several, a .p12 upload, condition 2 --------------------------------------------------

def p12(issued, password: bytes = b"p12-secret") -> bytes:
    return pkcs12.serialize_key_and_certificates(b"eds", issued.key, issued.cert, None,
                                                 BestAvailableEncryption(password))


@pytest.mark.parametrize("lang", ["kk", "ru"])
@pytest_twisted.ensureDeferred
async def test_another_persons_p12_is_chosen_and_condition_2_refuses_it(site, pki, lang):
    web = browser(site, lang)
    await logged_in(web)
    other = pki.cert("pages-other-iin", kind="person", iin=OTHER_IIN)
    page = await web.get("/certificates")
    wrong = await web.submit(page, "upload", password="not-it", files={"pkcs12": ("eds.p12", p12(other))})
    assert wrong.status == 400 and "PKCS#12" in wrong.find("e-pkcs12").text
    uploaded = await web.submit(page, "upload", password="p12-secret", files={"pkcs12": ("eds.p12", p12(other))})
    assert uploaded.status == 200 and uploaded.find("uploaded") is not None
    assert len(list(uploaded.find("certificates"))) == 2

    sign_page = await drafted(web)
    choices = {i.get("value"): i.get("checked") is not None for i in sign_page.html.iter(
        "{http://www.w3.org/1999/xhtml}input") if i.get("name") == "certificate"}
    assert len(choices) == 2 and sum(choices.values()) == 1  # the uploaded one, chosen
    refused = await web.submit(sign_page, "sign-form")
    assert refused.status == 422
    assert WORDS[lang]["eds"] in refused.find("refusal").findtext(".//*[@class='reason']")
    assert WORDS[lang]["iin_mismatch"] in "".join(refused.find("reasons").itertext())
    # Nothing reached the gateway.
    assert site.harness.app.journal.query(sender="portal") == []


@pytest_twisted.ensureDeferred
async def test_the_citizen_chooses_among_certificates_when_signing(site, pki):
    web = browser(site)
    await logged_in(web)
    other = pki.cert("pages-other-iin", kind="person", iin=OTHER_IIN)
    page = await web.get("/certificates")
    await web.submit(page, "upload", password="p12-secret", files={"pkcs12": ("eds.p12", p12(other))})
    sign_page = await drafted(web)
    own = next(c["id"] for c in site.portal.list_certificates(CITIZEN_IIN) if c["iin"] == CITIZEN_IIN)
    sent = await web.submit(sign_page, "sign-form", certificate=own)
    assert sent.status == 200 and WORDS["kk"]["sent"] in sent.text
    assert site.portal.certificate(CITIZEN_IIN)["iin"] == CITIZEN_IIN  # the choice is remembered


# -- accounts ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("lang", ["kk", "ru"])
@pytest_twisted.ensureDeferred
async def test_lockout_message_after_wrong_passwords(site, lang):
    web = browser(site, lang)
    await registered(web)
    page = await web.get("/login")
    for _ in range(2):  # lockout_attempts = 2
        page = await web.submit(page, "login", iin=CITIZEN_IIN, password="wrong-password")
    page = await web.submit(page, "login", iin=CITIZEN_IIN, password=CITIZEN_PASSWORD)
    reason = page.find("refusal").findtext(".//*[@class='reason']")
    assert page.status == 401 and WORDS[lang]["auth"] in reason and WORDS[lang]["locked"] in reason
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", reason) and "2" in reason


@pytest_twisted.ensureDeferred
async def test_registration_refusals_name_the_fields(site):
    web = browser(site, "ru")
    page = await web.get("/register")
    page = await web.submit(page, "register", iin="123", surname="", name="Ерлан", password="short")
    assert page.status == 400
    errors = {p.get("id"): p.text for p in page.html.iter("{http://www.w3.org/1999/xhtml}p")
              if p.get("class") == "error"}
    assert set(errors) == {"e-iin", "e-surname", "e-password"} and "12 цифр" in errors["e-iin"]
    await registered(web)
    page = await web.get("/register")
    page = await web.submit(page, "register", iin=CITIZEN_IIN, surname="Ахметов", name="Ерлан",
                            password=CITIZEN_PASSWORD)
    assert page.status == 409 and "уже зарегистрирован" in page.text
    # A name longer than a certificate holds is a refusal of the field, not an error.
    page = await web.submit(page, "register", iin=OTHER_IIN, surname="Ә" * 60, name="Ерлан",
                            password=CITIZEN_PASSWORD)
    assert page.status == 400 and page.find("e-surname") is not None


@pytest_twisted.ensureDeferred
async def test_registration_is_refused_for_whom_the_registry_does_not_show_as_an_adult(tmp_path, pki):
    """(pre) through the pages: the form again with the reason, in both languages, and no certificate."""
    stand = await start_stand(tmp_path, pki, lambda portal: portal_pages(
        portal, secret=security.load_secret(tmp_path), api=PortalResource(portal)),
        people={key: PEOPLE[key] for key in ("adult", "child")})
    try:
        expected = {"kk": {NOBODY: "ЖСН деректері ЖТ ММБ-да табылмады",
                           PEOPLE["child"]["iin"]: "Порталда тек кәмелетке толғандар тіркеледі"},
                    "ru": {NOBODY: "Данные ИИН не найдены в ЖТ ММБ",
                           PEOPLE["child"]["iin"]: "Регистрация на портале — только для совершеннолетних"}}
        for lang, refusals in expected.items():
            web = browser(stand, lang)
            for iin, reason in refusals.items():
                page = await web.get("/register")
                page = await web.submit(page, "register", iin=iin, surname="Ахметов", name="Ерлан",
                                        password=CITIZEN_PASSWORD)
                assert page.status == 422 and reason in "".join(page.find("refusal").itertext()), page.text
                assert page.find("register") is not None  # the form to correct the IIN
                assert stand.portal.certificates.ids(iin) == []
        await registered(browser(stand, "ru"), PEOPLE["adult"]["iin"])
    finally:
        await stop_harness(stand.harness)


@pytest_twisted.ensureDeferred
async def test_hostile_input_is_escaped(site):
    web = browser(site)
    hostile = '<script>alert(1)</script>"><img src=x onerror=a>'
    await logged_in(web, surname=hostile)
    page = await web.get("/")
    assert hostile in page.text  # shown as text...
    assert b"<script>" not in page.body and b"<img src=x" not in page.body  # ...never as markup
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in page.body
    assert not list(page.html.iter("{http://www.w3.org/1999/xhtml}script"))


# -- CSRF, headers, cookies, errors -----------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_a_form_without_the_sessions_csrf_token_is_refused(site):
    web = browser(site)
    await registered(web)
    page = await web.get("/login")
    forged = await web.submit(page, "login", iin=CITIZEN_IIN, password=CITIZEN_PASSWORD, csrf_token="forged")
    assert forged.status == 403 and WORDS["kk"]["csrf"] in forged.text and "portal_session" not in web.cookies
    # The token of another browser session does not do either.
    other = browser(site)
    await other.get("/login")
    web.cookies[security.SESSION_COOKIE] = other.cookies[security.SESSION_COOKIE]
    stolen = await web.submit(page, "login", iin=CITIZEN_IIN, password=CITIZEN_PASSWORD)
    assert stolen.status == 403 and "portal_session" not in web.cookies
    # No session cookie at all: refused as well.
    bare = WebClient(web.base)
    answer = await bare.request("POST", "/login", data={"iin": CITIZEN_IIN, "password": CITIZEN_PASSWORD,
                                                        security.CSRF_FIELD: "x"}, follow=False)
    assert answer.status == 403


@pytest_twisted.ensureDeferred
async def test_every_answer_carries_the_security_headers(site):
    web = browser(site)
    answers = [await web.get("/"), await web.get("/static/web.css"), await web.get("/no-such-page"),
               await web.get("/login")]
    for answer in answers:
        assert answer.header("content-security-policy") == security.CSP
        assert "frame-ancestors 'none'" in security.CSP and "default-src 'self'" in security.CSP
        assert "unsafe-inline" not in security.CSP
        assert answer.header("x-content-type-options") == "nosniff"
    assert answers[1].header("content-type") == "text/css; charset=utf-8"
    assert (answers[2].status, WORDS["kk"]["not_found"] in answers[2].text) == (404, True)
    session = next(line for line in web.set_cookie_lines if line.startswith(security.SESSION_COOKIE + "="))
    assert "HttpOnly" in session and "SameSite=Strict" in session and "Secure" not in session  # plain HTTP here


def test_cookies_are_secure_over_tls():
    assert security.cookie("a", "b", path="/portal/", secure=True).split("; ")[1:] == [
        "Path=/portal/", "HttpOnly", "SameSite=Strict", "Secure"]


@pytest_twisted.ensureDeferred
async def test_login_cookie_is_httponly_strict_and_pages_need_it(site):
    web = browser(site)
    page = await web.get("/requests/new")
    assert page.url.endswith("/login?next=requests/new")
    # The language switch keeps where the login leads.
    switch = {a.get("hreflang"): a.get("href") for a in page.html.iter("{http://www.w3.org/1999/xhtml}a")
              if a.get("hreflang")}
    assert switch == {"ru": "/portal/login?lang=ru&next=requests/new"}
    await logged_in(web)
    login = next(line for line in web.set_cookie_lines if line.startswith("portal_session="))
    assert "HttpOnly" in login and "SameSite=Strict" in login and "Path=/portal/" in login
    form = await web.get("/requests/new")
    assert form.status == 200 and form.find("applicant-iin").text == CITIZEN_IIN
    # Another citizen's request is not found (as in the JSON API).
    missing = await web.get("/requests/EGOV-999999")
    assert missing.status == 404


@pytest.mark.parametrize("lang", ["kk", "ru"])
@pytest_twisted.ensureDeferred
async def test_every_page_is_valid_html_in_both_languages(site, lang):
    web = browser(site)
    first = await web.get(f"/?lang={lang}")  # the switch: remembered in a cookie from here on
    assert web.cookies["lang"] == lang and first.html.get("lang") == lang
    await logged_in(web)
    sign_page = await drafted(web)
    number = re.search(r"/requests/([^/]+)/sign$", sign_page.url).group(1)
    pages = ["/", "/login", "/register", "/requests", "/requests/new", "/certificates", f"/requests/{number}",
             f"/requests/{number}/sign", f"/requests/{number}/result", "/missing"]
    for path in pages:
        page = await web.get(path)
        assert page.header("content-type") == "text/html; charset=utf-8"
        document = parse_strict(page.body)  # raises on any parse error
        assert document.get("lang") == lang, path
        assert not re.search(rb"portal\.[a-z_]+\.[a-z_]", page.body), f"{path}: a catalogue key shown as text"


@pytest_twisted.ensureDeferred
async def test_failures_are_pages_with_their_reason_never_a_traceback(site, monkeypatch):
    web = browser(site, "ru")
    login = await web.get("/login")
    too_big = await web.submit(login, "login", iin="1" * (300 * 1024), password="x")
    assert too_big.status == 413 and "Слишком большие данные" in too_big.text
    wrong_method = await web.request("DELETE", "/login")
    assert wrong_method.status == 405 and wrong_method.header("allow") == "GET, POST"

    def broken():
        raise RuntimeError("a secret detail of the failure")
    monkeypatch.setattr(site.portal, "services", broken)
    failed = await web.get("/")
    assert failed.status == 500 and "Внутренняя ошибка" in failed.text
    assert b"secret detail" not in failed.body and b"Traceback" not in failed.body


@pytest_twisted.ensureDeferred
async def test_a_parent_fills_the_form_for_a_child(site):
    from tests.test_portal import CHILD_IIN

    web = browser(site, "ru")
    await logged_in(web)
    form = await web.get("/requests/new")
    refused = await web.submit(form, "request-form", clinic_bin=CLINIC_BIN, child__iin=CHILD_IIN, child__name="Алия",
                               address__city="Актау")
    errors = {p.get("id") for p in refused.html.iter("{http://www.w3.org/1999/xhtml}p") if p.get("class") == "error"}
    assert refused.status == 400 and errors == {"e-child.surname", "e-address.region"}
    sign_page = await web.submit(refused, "request-form", child__surname="Ахметова",
                                 address__region="Мангистауская область")
    facts = "".join(sign_page.find("signed-data").itertext())
    assert sign_page.find("signed-iin").text == CHILD_IIN and CITIZEN_IIN in facts  # the representative signs
