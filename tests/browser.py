"""A real browser on the portal's pages: headless Chromium (Debian's `chromium`) driven by Selenium through
Debian's matching `chromium-driver`, never a downloaded browser or driver. Used by the browser tests
(tests/test_portal_browser.py, tests/test_clinic_browser.py) and by `make screens` (tests/screens.py), which
walk diagram 1 (here) and diagram 2 (tests/clinic_browser.py) the same way.

Selenium rather than Playwright: Debian ships the driver built for its very Chromium, so the two always
match; Playwright talks to the browsers it downloads itself and only tolerates a system one.
"""
from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from endpoints.provider import load as load_clinics
from simulators.gbdfl.population import build_population

CHROMIUM = "/usr/bin/chromium"
DRIVER = "/usr/bin/chromedriver"
SKIP_REASON = "needs chromium (Debian package chromium)"
WAIT = 30.0  # seconds for any page or answer: the loop that waits for the clinic is bounded by it
PASSWORD = "browser-pass-2026"
WIDTH, HEIGHT = 1100, 900
AKTAU_P2 = "050640382083"  # «Поликлиника № 2 г. Актау» of the shipped clinics (endpoints/provider/defaults)


def available() -> bool:
    return all(shutil.which(path) for path in (CHROMIUM, DRIVER))


def chromium(downloads: Path):
    """Headless Chromium whose downloads land in `downloads`, without asking."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     f"--window-size={WIDTH},{HEIGHT}", "--lang=kk", "--no-first-run", "--disable-extensions"):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False,
                                              "safebrowsing.enabled": False})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
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
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.support.wait import WebDriverWait

        element = self.button(text)
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
