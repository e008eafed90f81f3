"""The clinic's workstation pages over real HTTP (docs/web.md): diagram 2 clicked through the forms in Kazakh
and Russian with a plain client (tests/web_client.py: every page parsed by html5lib in strict mode, none with
inline script or style), on the world of tests/test_provider_http.py (the gateway, the АЖО, the ЖТ ММБ
simulator behind the gateway): the login and its lockout, the look-up (process 4 when the person is not in
ЖТ ММБ), the form, «қол қою», the lists with «ашу», the coupon, the attached population, CSRF, escaping."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
import pytest_twisted

from endpoints.provider.registry import RegistryError
from gateway.web.pages import security
from tests import xmlsec_oracle
from tests.conftest import stop_harness
from tests.pdf_text import pdf_text
from tests.test_portal_pages import button_texts
from tests.test_provider import CLINIC_A, EMPLOYEE_A, EMPLOYEE_B, EMPLOYEE_PASSWORD, NOBODY, PEOPLE
from tests.test_provider_http import api, exchange, signed_request, start_world
from tests.web_client import WebClient, parse_strict

ADULT, FAR = PEOPLE["adult"]["iin"], PEOPLE["far"]["iin"]
# The buttons and screens as an employee reads them; «ашу» is the regulation's own (§9).
WORDS = {
    "kk": {"login": "Кіру", "lookup": "ЖТ ММБ-дан іздеу", "create": "Сұрауды қалыптастыру", "sign": "қол қою",
           "open": "ашу", "pdf": "Қағаз талон (PDF)", "auth": "Авторизациядан бас тартылды", "locked": "бұғатталды",
           "not_in_registry": "Алушының деректері ЖТ ММБ-да жоқ", "done": "Орындалды", "refused": "Бас тартылды",
           "refused_title": "Құжаттарда бұзушылықтардың болуына байланысты қызмет көрсетуден бас тартылды",
           "csrf": "Сеанс ескірді", "incoming": "Кіріс сұраулар"},
    "ru": {"login": "Войти", "lookup": "Найти в ГБД ФЛ", "create": "Сформировать запрос", "sign": "Подписать",
           "open": "Открыть", "pdf": "Бумажный талон (PDF)", "auth": "Отказ в авторизации", "locked": "заблокирован",
           "not_in_registry": "получатель отсутствует в ГБД ФЛ", "done": "Исполнен", "refused": "Отказано",
           "refused_title": "Отказ в оказании услуги в связи с нарушениями в документах",
           "csrf": "Сеанс устарел", "incoming": "Входящие запросы"},
}
XHTML = "{http://www.w3.org/1999/xhtml}"


@pytest_twisted.async_yield_fixture
async def world(tmp_path, pki):
    started = await start_world(tmp_path, pki)
    yield started
    await stop_harness(started.harness)


def workstation(world, lang: str | None = None) -> WebClient:
    client = WebClient(f"{world.harness.app.base_url}/clinic")
    if lang:
        client.cookies["lang"] = lang
    return client


async def logged_in(web: WebClient, lang: str = "kk"):
    page = await web.get("/login")
    page = await web.submit(page, "login", iin=EMPLOYEE_A, password=EMPLOYEE_PASSWORD)
    assert page.status == 200 and "clinic_session" in web.cookies, page.text
    return page


async def signed(web: WebClient, iin: str, **fields):
    """Diagram 2 through the pages: the IIN looked up in ЖТ ММБ, the form, the draft signed: its result page."""
    new = await web.get("/requests/new")
    form = await web.submit(new, "lookup", iin=iin)
    assert form.status == 200 and form.find("person-iin").text == iin, form.text
    sign_page = await web.submit(form, "request-form", **fields)
    assert re.search(r"/requests/E-\d{6}/sign$", sign_page.url), sign_page.url
    return await web.submit(sign_page, "sign-form")


def list_rows(page) -> dict[str, dict]:
    rows = {}
    for row in page.find("requests").iter(f"{XHTML}tr"):
        cells = list(row.iter(f"{XHTML}td"))
        if cells:
            rows[cells[0].text] = {"status": cells[3].text, "open": row.find(f".//{XHTML}a")}
    return rows


# -- diagram 2, both languages ------------------------------------------------------------------------

@pytest.mark.parametrize("lang", ["kk", "ru"])
@pytest_twisted.ensureDeferred
async def test_diagram_2_through_the_pages(world, lang):
    words = WORDS[lang]
    web = workstation(world, lang)
    # Process 1: a wrong password refused with its reason, then the login.
    login = await web.get("/")
    assert login.url.endswith("/clinic/login") and words["login"] in button_texts(login)
    refused = await web.submit(login, "login", iin=EMPLOYEE_A, password="wrong")
    assert refused.status == 401 and words["auth"] in "".join(refused.find("refusal").itertext())
    assert "clinic_session" not in web.cookies
    home = await web.submit(refused, "login", password=EMPLOYEE_PASSWORD)
    assert home.status == 200 and home.html.get("lang") == lang and "Поликлиника № 1" in home.find("employee").text
    login_cookie = next(line for line in web.set_cookie_lines if line.startswith("clinic_session="))
    assert "HttpOnly" in login_cookie and "SameSite=Strict" in login_cookie and "Path=/clinic/" in login_cookie

    # Processes 2–4: the IIN looked up in ЖТ ММБ through the gateway; process 4 for nobody.
    new = await web.get(home.find("new").get("href"))
    assert words["lookup"] in button_texts(new)
    missing = await web.submit(new, "lookup", iin=NOBODY)
    assert missing.status == 404 and words["not_in_registry"] in "".join(missing.find("refusal").itertext())
    form = await web.submit(missing, "lookup", iin=ADULT)
    assert form.status == 200 and "ТЕСТОВ АРМАН БОЛАТОВИЧ" == form.find("person-name").text
    assert words["create"] in button_texts(form)

    # Process 5: the form completed and certified with the employee's EDS; processes 6 and 8.
    sign_page = await web.submit(form, "request-form", district="1")
    assert words["sign"] in button_texts(sign_page) and sign_page.find("signed-district").text == "1"
    assert CLINIC_A in sign_page.find("signed-clinic").text
    result = await web.submit(sign_page, "sign-form")
    number = re.search(r"/requests/(R-\d{8}-\d{6})$", result.url).group(1)
    assert result.status == 200 and result.find("status").text == words["done"]
    coupon_number = result.find("coupon-number").text
    assert result.find("coupon-district").text.startswith("1, ")

    # The coupon: the signed XML verified twice, the paper coupon with the person and its number.
    xml = await web.get(result.find("coupon-xml").get("href"))
    assert xml.status == 200 and xml.header("content-type") == "application/xml"
    assert "attachment" in xml.header("content-disposition")
    verified = world.verifier.verify(xml.body)
    assert verified.root.findtext("couponNumber") == coupon_number
    assert xmlsec_oracle.verify(xml.body, cert=verified.certificate).ok
    assert not xmlsec_oracle.verify(xml.body.replace(coupon_number.encode(), b"X-0"), cert=verified.certificate).ok
    pdf = await web.get(result.find("coupon-pdf").get("href"))
    assert pdf.status == 200 and pdf.header("content-type") == "application/pdf"
    text = pdf_text(pdf.body)
    assert "ТЕСТОВ АРМАН БОЛАТОВИЧ" in text and coupon_number in text

    # Condition 2 → process 7: a person outside the zone is refused with the grounds.
    refusal = await signed(web, FAR)
    assert refusal.find("status").text == words["refused"]
    assert words["refused_title"] in "".join(refusal.find("refused").itertext())
    assert "ATT-301" in "".join(refusal.find("reasons").itertext())
    assert (await web.get(refusal.find("refusal-xml").get("href"))).status == 200
    refused_number = refusal.url.rsplit("/", 1)[1]

    # §9: the lists, each row opened with «ашу».
    incoming = await web.get("/requests")
    assert incoming.find("list-current").text == words["incoming"]
    rows = list_rows(incoming)
    assert set(rows) == {number, refused_number}
    assert all(row["open"].text == words["open"] for row in rows.values())
    opened = await web.get(rows[number]["open"].get("href"))
    assert opened.find("coupon-number").text == coupon_number
    answered = list_rows(await web.get("/requests?list=answered"))
    refused_list = list_rows(await web.get("/requests?list=refused"))
    assert (set(answered), set(refused_list)) == ({number}, {refused_number})
    assert (await web.get("/requests?list=registered")).find("empty") is not None

    # The attached population of the clinic's districts: the new coupon in district 1.
    register = await web.get("/attachments")
    district = "".join(register.find("district-1").itertext())
    assert ADULT in district and coupon_number in district
    assert ADULT not in "".join(register.find("district-2").itertext())

    # Logging out ends the login.
    out = await web.submit(register, action="/logout")
    assert out.url.endswith("/clinic/login") and "clinic_session" not in web.cookies
    assert (await web.get("/requests")).url.endswith("/login?next=requests")


@pytest_twisted.ensureDeferred
async def test_pages_and_api_tell_the_same(world):
    web = workstation(world)
    await logged_in(web)
    result = await signed(web, ADULT)
    number = result.url.rsplit("/", 1)[1]
    _, body = await api(world, "POST", "/login", {"iin": EMPLOYEE_A, "password": EMPLOYEE_PASSWORD})
    token = body["token"]
    status, shown = await api(world, "GET", f"/requests/{number}", token=token)
    assert status == 200 and shown["coupon"]["couponNumber"] == result.find("coupon-number").text
    status, listed = await api(world, "GET", "/requests?list=answered", token=token)
    assert [r["number"] for r in listed["requests"]] == [number]
    assert (await api(world, "GET", "/requests?list=nonsense", token=token))[0] == 400
    status, person = await api(world, "GET", f"/persons/{ADULT}", token=token)
    assert status == 200 and person["person"]["surname"] == "ТЕСТОВ"
    status, body = await api(world, "GET", f"/persons/{NOBODY}", token=token)
    assert (status, body["error"]["code"]) == (404, "ATT-201")
    # A portal request registered by the АЖО is in the employee's incoming list too, and opens.
    await exchange(world, signed_request(world.pki, "stranger", number="PORTAL-9"))
    rows = list_rows(await web.get("/requests"))
    [portal] = [row for key, row in rows.items() if key != number]
    opened = await web.get(portal["open"].get("href"))
    assert opened.status == 200 and opened.find("person-iin").text == PEOPLE["stranger"]["iin"]
    assert "PORTAL-9" in opened.find("request").itertext()


@pytest_twisted.ensureDeferred
async def test_another_clinics_employee_sees_nothing_of_it(world):
    web = workstation(world)
    await logged_in(web)
    number = (await signed(web, ADULT)).url.rsplit("/", 1)[1]
    other = workstation(world)
    page = await other.submit(await other.get("/login"), "login", iin=EMPLOYEE_B, password=EMPLOYEE_PASSWORD)
    assert page.status == 200 and "clinic_session" in other.cookies
    for path in (f"/requests/{number}", f"/requests/{number}/coupon.pdf", f"/requests/{number}/result.xml"):
        assert (await other.get(path)).status == 404, path
    assert (await other.get("/requests")).find("empty") is not None
    assert ADULT not in (await other.get("/attachments")).text


@pytest_twisted.ensureDeferred
async def test_the_registry_out_of_reach_is_a_502_page(world, monkeypatch):
    web = workstation(world, "ru")
    await logged_in(web)

    def down(iin):
        raise RegistryError("the gateway did not answer")
    monkeypatch.setattr(world.system.office.registry, "find", down)
    page = await web.submit(await web.get("/requests/new"), "lookup", iin=ADULT)
    assert page.status == 502 and "ГБД ФЛ сейчас не отвечает" in page.text and "REGISTRY_UNAVAILABLE" in page.text


# -- process 1: refusals, lockout -------------------------------------------------------------------------

@pytest.mark.parametrize("lang", ["kk", "ru"])
@pytest_twisted.ensureDeferred
async def test_lockout_after_wrong_passwords(world, lang):
    web = workstation(world, lang)
    page = await web.get("/login")
    for attempt in range(world.system.config.lockout_attempts):
        page = await web.submit(page, "login", iin=EMPLOYEE_A, password=f"wrong-{attempt}")
        assert page.status == 401
    page = await web.submit(page, "login", iin=EMPLOYEE_A, password=EMPLOYEE_PASSWORD)
    reason = "".join(page.find("refusal").itertext())
    assert page.status == 401 and WORDS[lang]["locked"] in reason and "clinic_session" not in web.cookies
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d \(UTC\+05:00\)", reason)
    office = world.system.office
    started = office.clock()
    office.clock = lambda: started + timedelta(minutes=world.system.config.lockout_minutes, seconds=1)
    await logged_in(web)


@pytest_twisted.ensureDeferred
async def test_bad_input_gets_a_page_with_its_reason(world):
    web = workstation(world, "ru")
    await logged_in(web)
    new = await web.get("/requests/new")
    bad = await web.submit(new, "lookup", iin="123")
    assert bad.status == 400 and "12 цифр" in bad.find("e-iin").text
    form = await web.submit(new, "lookup", iin=ADULT)
    wrong = await web.submit(form, "request-form", representative="111")
    assert wrong.status == 400 and wrong.find("e-representative") is not None
    assert (await web.get("/requests/R-20990101-999999")).status == 404
    draft = await web.submit(form, "request-form")
    pdf = await web.get(draft.url.replace("/sign", "/coupon.pdf"))
    assert pdf.status == 409 and pdf.header("content-type").startswith("text/html")
    assert (await web.get("/requests?list=nonsense")).status == 400


@pytest_twisted.ensureDeferred
async def test_hostile_input_is_escaped(world):
    web = workstation(world)
    await logged_in(web)
    hostile = '"><script>alert(1)</script><img src=x onerror=a>'
    page = await web.submit(await web.get("/requests/new"), "lookup", iin=hostile)
    assert page.status == 400 and page.find("f-iin").get("value") == hostile  # kept as the field's value...
    assert b"<script>" not in page.body and b"<img src=x" not in page.body  # ...never as markup
    assert not list(page.html.iter(f"{XHTML}script"))


@pytest_twisted.ensureDeferred
async def test_a_form_without_the_sessions_csrf_token_is_refused(world):
    web = workstation(world)
    page = await web.get("/login")
    forged = await web.submit(page, "login", iin=EMPLOYEE_A, password=EMPLOYEE_PASSWORD, csrf_token="forged")
    assert forged.status == 403 and WORDS["kk"]["csrf"] in forged.text and "clinic_session" not in web.cookies
    await logged_in(web)
    new = await web.get("/requests/new")
    other = workstation(world)
    await other.get("/login")
    web.cookies[security.SESSION_COOKIE] = other.cookies[security.SESSION_COOKIE]
    stolen = await web.submit(new, "lookup", iin=ADULT)
    assert stolen.status == 403 and world.system.store.clinic_requests(CLINIC_A) == []


@pytest_twisted.ensureDeferred
async def test_the_json_api_and_the_async_endpoint_stay_where_they_were(world):
    status, body = await api(world, "POST", "/login", {"iin": EMPLOYEE_A, "password": "wrong"})
    assert (status, body["error"]["code"]) == (401, "AUTH_FAILED")
    # The push endpoint answers SOAP, not a page (the exchange itself is tests/test_provider_http.py).
    async_page = await workstation(world).request("POST", "/async", data=b"<not-soap/>")
    assert not (async_page.header("content-type") or "").startswith("text/html")
    # `/clinic` without its slash is the pages too: the login, the employee not logged in.
    assert (await workstation(world).get("")).url.endswith("/clinic/login")


@pytest.mark.parametrize("lang", ["kk", "ru"])
@pytest_twisted.ensureDeferred
async def test_every_page_is_valid_html_in_both_languages(world, lang):
    web = workstation(world)
    first = await web.get(f"/login?lang={lang}")
    assert web.cookies["lang"] == lang and first.html.get("lang") == lang
    await logged_in(web)
    done = await signed(web, ADULT)
    refused = await signed(web, FAR)
    form = await web.submit(await web.get("/requests/new"), "lookup", iin=ADULT)
    draft = await web.submit(form, "request-form")
    pages = ["/", "/login", "/requests/new", "/attachments", done.url, refused.url, draft.url,
             draft.url.replace("/sign", ""), "/missing"] + [f"/requests?list={name}" for name in
                                                             ("incoming", "registered", "refused", "answered")]
    for path in pages:
        page = await web.get(path)
        assert page.header("content-type") == "text/html; charset=utf-8"
        document = parse_strict(page.body)  # raises on any parse error
        assert document.get("lang") == lang, path
        assert not re.search(rb"(clinic|web)\.[a-z_]+\.[a-zA-Z_]", page.body), f"{path}: a catalogue key shown"
        assert page.header("content-security-policy") == security.CSP
