"""A real browser on the portal's pages: headless Chromium (Debian's `chromium`) driven by Selenium through
Debian's matching `chromium-driver`, never a downloaded browser or driver. Used by the browser tests
(tests/test_portal_browser.py, tests/test_clinic_browser.py) and by `make screens` (tests/screens.py), which
walk diagram 1 (here) and diagram 2 (tests/clinic_browser.py) the same way.

Selenium rather than Playwright: Debian ships the driver built for its very Chromium, so the two always
match; Playwright talks to the browsers it downloads itself and only tolerates a system one.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from endpoints.provider import load as load_clinics
from simulators.gbdfl.population import build_population
from tests import system_tools

SKIP_REASON = system_tools.reason("chromium")
WAIT = 30.0  # seconds for any page or answer: the loop that waits for the clinic is bounded by it
PASSWORD = "browser-pass-2026"
WIDTH, HEIGHT = 1100, 900
AKTAU_P2 = "050640382083"  # «Поликлиника № 2 г. Актау» of the shipped clinics (endpoints/provider/defaults)


def available() -> bool:
    """Chromium and its driver on PATH, as tests/system-packages names them (so the bare CI run hides them)."""
    return system_tools.present("chromium") and system_tools.present("chromedriver")


def chromium(downloads: Path):
    """Headless Chromium whose downloads land in `downloads`, without asking."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = system_tools.tools()["chromium"].path()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     f"--window-size={WIDTH},{HEIGHT}", "--lang=kk", "--no-first-run", "--disable-extensions"):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False,
                                              "safebrowsing.enabled": False})
    driver = webdriver.Chrome(service=Service(system_tools.tools()["chromedriver"].path()), options=options)
    driver.set_page_load_timeout(WAIT)
    return driver


def citizen(skip: int = 0):
    """A living adult of the ЖТ ММБ (the server's own seed) registered at one address, in the service zone of
    the clinic AKTAU_P2 as the shipped clinics file draws it: the clinic attaches them. `skip`: the next ones."""
    zone = load_clinics().clinic(AKTAU_P2).zone
    for person in build_population():
        address = person.reg_address
        if (address is not None and person.death_date is None and not person.addresses and person.surname
                and person.birth_date.year <= date.today().year - 20
                and any(area.covers(address.district.region.ru, address.town, address.street) for area in zone)):
            if skip == 0:
                return person
            skip -= 1
    raise LookupError(f"nobody in the population lives in the zone of {AKTAU_P2}")


@dataclass
class Walk:
    """What the walk saw: the request number, the statuses shown, the files downloaded, the refusal texts."""
    number: str = ""
    statuses: list[str] = field(default_factory=list)
    locked_reason: str = ""
    refused_login: str = ""
    coupon_xml: Path | None = None
    coupon_pdf: Path | None = None
    screens: list[Path] = field(default_factory=list)


class Browser:
    """Someone at the browser on the pages mounted at `mount`: every step is a click on what the page shows."""

    mount = "portal/"

    def __init__(self, driver, base_url: str, downloads: Path, shots: Path | None = None):
        self.driver = driver
        self.base = base_url.rstrip("/") + "/" + self.mount
        self.downloads = downloads
        self.shots = shots
        self.walk = Walk()

    # -- small verbs -----------------------------------------------------------------------------------

    def by_id(self, element_id: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.ID, element_id)

    def button(self, text: str):
        """The button or button-styled link whose text is exactly `text` (the regulation's names)."""
        from selenium.webdriver.common.by import By

        for element in self.driver.find_elements(By.CSS_SELECTOR, "button, a.button"):
            if element.text.strip() == text:
                return element
        raise AssertionError(f"no button «{text}» on {self.driver.current_url}: "
                             f"{[e.text for e in self.driver.find_elements(By.CSS_SELECTOR, 'button, a.button')]}")

    def press(self, text: str) -> None:
        """Click the button `text` and wait for the page it leads to (the old one gone)."""
        self.leave(self.button(text))

    def leave(self, element) -> None:
        """Click `element` (a button, a link) and wait until its page is gone."""
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.support.wait import WebDriverWait

        element.click()

        def gone(_) -> bool:
            try:
                element.is_enabled()
            except WebDriverException:  # stale, or (while the page changes) "does not belong to the document"
                return True
            return False
        WebDriverWait(self.driver, WAIT).until(gone)

    def fill(self, **fields) -> None:
        from selenium.webdriver.common.by import By

        for name, value in fields.items():
            element = self.driver.find_element(By.NAME, name.replace("__", "."))
            element.clear()
            element.send_keys(value)

    def shot(self, name: str) -> None:
        if self.shots is not None:
            path = self.shots / f"{name}.png"
            self.driver.save_screenshot(str(path))
            self.walk.screens.append(path)

    def open(self, path: str = "") -> None:
        self.driver.get(self.base + path)

    def text(self, element_id: str) -> str:
        return self.by_id(element_id).text

    def wait_for(self, check: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + WAIT
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {WAIT} s on {self.driver.current_url}")
            time.sleep(0.2)

    def downloaded(self, suffix: str) -> Path:
        found: list[Path] = []
        self.wait_for(lambda: bool(found.extend(p for p in self.downloads.glob(f"*{suffix}")) or found),
                      f"the {suffix} download")
        return found[0]



class Portal(Browser):
    """The citizen at the portal's pages."""

    # -- diagram 1 ---------------------------------------------------------------------------------------

    def register_and_login(self, person, words: dict) -> None:
        self.open("")
        self.shot("1-service")
        self.by_id("order")  # «"online" қызметіне тапсырыс беру» is on the service card
        self.open("register")
        self.fill(iin=person.iin, surname=person.surname, name=person.name or "ТЕСТ", password=PASSWORD)
        if person.patronymic:
            self.fill(patronymic=person.patronymic)
        self.shot("2-register")
        self.press(words["register"])
        assert self.by_id("registered").is_displayed()
        self.fill(iin=person.iin, password="not-the-password")
        self.press(words["login"])
        self.walk.refused_login = self.text("refusal")
        self.shot("3-login-refused")
        self.fill(password=PASSWORD)
        self.press(words["login"])

    def order(self, words: dict) -> None:
        self.open("")
        self.press(words["order"])
        self.fill(clinic_bin=AKTAU_P2)
        self.shot("4-form")
        self.press(words["send"])

    def sign(self, words: dict) -> None:
        assert self.driver.current_url.endswith("/sign"), self.driver.current_url
        self.walk.number = self.driver.current_url.rsplit("/", 2)[-2]
        self.shot("5-sign")
        self.press(words["sign"])
        self.walk.statuses.append(self.status())
        self.shot("6-status-sent")

    def status(self) -> str:
        from selenium.webdriver.common.by import By

        return self.by_id("status").find_element(By.CSS_SELECTOR, "td.status").text

    def refresh_until_done(self, words: dict) -> None:
        """«мәртебені жаңарту» until «нәтижесін көру» appears (the clinic answers through the gateway)."""
        def done() -> bool:
            self.press(words["refresh"])
            shown = self.status()
            if shown not in self.walk.statuses:
                self.walk.statuses.append(shown)
            return any(b.text.strip() == words["view"] for b in self.driver.find_elements("css selector", "a.button"))
        self.wait_for(done, "the clinic's answer")
        self.shot("7-status-done")

    def result(self, words: dict) -> None:
        self.press(words["view"])
        self.shot("8-result")
        self.by_id("coupon-xml").click()
        self.walk.coupon_xml = self.downloaded(".xml")
        self.by_id("coupon-pdf").click()
        self.walk.coupon_pdf = self.downloaded(".pdf")

    def certificates(self) -> None:
        self.open("certificates")
        self.shot("9-certificates")


# The names the regulation gives the buttons (§8), and the pages' own, per language.
WORDS = {
    "kk": {"order": "«online» қызметіне тапсырыс беру", "send": "Сұрауды жіберу", "sign": "қол қою",
           "refresh": "мәртебені жаңарту", "view": "нәтижесін көру", "register": "Тіркелу", "login": "Кіру"},
    "ru": {"order": "Заказать услугу online", "send": "Отправить запрос", "sign": "Подписать",
           "refresh": "Обновить статус", "view": "Просмотреть результат", "register": "Зарегистрироваться",
           "login": "Войти"},
}


def walk_diagram_1(driver, base_url: str, downloads: Path, *, lang: str = "kk", person=None,
                   shots: Path | None = None) -> Walk:
    """Diagram 1 through the pages, in `lang`: register, a refused and a good login, the form, the certificate
    and «қол қою», «мәртебені жаңарту» until the coupon is there, «нәтижесін көру», both downloads."""
    words = WORDS[lang]
    portal = Portal(driver, base_url, downloads, shots)
    portal.open(f"?lang={lang}")
    portal.register_and_login(person or citizen(), words)
    portal.order(words)
    portal.sign(words)
    portal.refresh_until_done(words)
    portal.result(words)
    portal.certificates()
    return portal.walk


# -- the gateway console (/console/) --------------------------------------------------------------------

CONSOLE_OPERATOR, CONSOLE_PASSWORD = "ops", "console-pass-2026"


def console_config(folder: Path) -> Path:
    """The shipped configuration with one operator (so the console asks to sign in), written into `folder`."""
    from gateway.config import default_config_path
    from gateway.passwords import hash_password

    path = folder / "shep.toml"
    path.write_text(default_config_path().read_text("utf-8") + f'\n[operators.{CONSOLE_OPERATOR}]\nrole = "operator"\n'
                    f'password_hash = "{hash_password(CONSOLE_PASSWORD, iterations=1000)}"\n', "utf-8")
    return path


def send_demo_echo(base_url: str, message_id: str, state_dir: Path) -> None:
    """One DEMO_Echo exchange from demo-consumer (the shipped configuration's), its payload under an EDS of a
    certificate the server's test PKI (in `state_dir`) issues for the consumer's BIN: the console marks it."""
    import urllib.request

    from lxml import etree

    from gateway import client
    from simulators.pki.ca import TestPKI

    payload = etree.Element("{urn:shep-emulator:demo:echo}EchoRequest", nsmap={"echo": "urn:shep-emulator:demo:echo"})
    etree.SubElement(payload, "text").text = "console"
    issued = TestPKI(state_dir).issue("organization", bin="230540004989")
    payload = client.sign_payload(payload, issued.key, issued.cert)
    body = client.build_send_message(service_id="DEMO_Echo", sender_id="demo-consumer", password="demo-consumer-pass",
                                     payload=payload, message_id=message_id)
    request = urllib.request.Request(base_url.rstrip("/") + "/bip-sync/", data=body, method="POST",
                                     headers={"Content-Type": "text/xml; charset=utf-8"})
    with urllib.request.urlopen(request, timeout=WAIT) as answer:
        assert answer.status == 200


def walk_console(driver, base_url: str, message_id: str, shots: Path | None = None) -> tuple[list[str], str]:
    """Sign in, the overview, the journal filtered by `message_id`, its exchange (the hops it shows and its
    timeline's text, ending with how many parts are marked signed, are returned), the queue, the PKI, the
    metrics and the faults, each from the menu."""
    from selenium.webdriver.common.by import By

    console = Portal(driver, base_url, Path(), shots)
    console.base = base_url.rstrip("/") + "/console/"
    console.open()
    console.by_id("f-name").send_keys(CONSOLE_OPERATOR)
    console.by_id("f-password").send_keys(CONSOLE_PASSWORD)
    console.shot("console-1-sign-in")
    console.press("Sign in")
    console.by_id("figures")
    console.shot("console-2-overview")
    console.leave(driver.find_element(By.LINK_TEXT, "Journal"))
    console.by_id("f-messageId").send_keys(message_id)
    console.press("Filter")
    console.shot("console-3-journal")
    console.leave(driver.find_element(By.CSS_SELECTOR, "#records a.exchange"))
    hops = [element.get_attribute("data-hop") for element in driver.find_elements(By.CSS_SELECTOR, "#timeline > li")]
    timeline = console.text("timeline")
    marked = driver.find_elements(By.CSS_SELECTOR, "#timeline mark.covered")
    timeline += f"\n[{len(marked)} marked]"
    console.shot("console-4-exchange")
    if marked:  # the stored bytes, the signed payload marked
        driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", marked[0])
        console.shot("console-4-exchange-signed")
    for link, element_id, name in (("Queue", "state-filter", "console-5-queue"),
                                   ("PKI", "certificates", "console-6-pki"),
                                   ("Metrics", "family-shep_faults", "console-7-metrics"),
                                   ("Faults", "catalogue", "console-8-faults")):
        console.leave(driver.find_element(By.LINK_TEXT, link))
        console.by_id(element_id)
        console.shot(name)
    return hops, timeline
