"""Diagram 2 in a real browser: the clinic employee at the workstation pages (`/clinic/`), clicking what
the pages show, as tests/browser.py does for the citizen's diagram 1. Used by tests/test_clinic_browser.py
and by `make screens` (the PNGs prefixed `clinic-`)."""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from endpoints.provider import load as load_clinics
from gateway.security.identity import generate_iin
from simulators.gbdfl.population import build_population
from tests import browser

EMPLOYEE_PASSWORD = "clinic-pass"  # of the shipped clinics' employees (endpoints/provider/defaults)

# The pages' buttons per language; «ашу» is the regulation's own (§9).
WORDS = {
    "kk": {"login": "Кіру", "new": "Жаңа сұрау", "lookup": "ЖТ ММБ-дан іздеу", "create": "Сұрауды қалыптастыру",
           "sign": "қол қою", "open": "ашу", "incoming": "Кіріс сұраулар", "answered": "Жауап берілген сұраулар"},
    "ru": {"login": "Войти", "new": "Новый запрос", "lookup": "Найти в ГБД ФЛ", "create": "Сформировать запрос",
           "sign": "Подписать", "open": "Открыть", "incoming": "Входящие запросы",
           "answered": "Исполненные запросы"},
}


@dataclass
class ClinicWalk(browser.Walk):
    not_found: str = ""  # process 4's message
    status: str = ""  # the result page's status
    opened: str = ""  # the coupon number on the page «ашу» opened
    attached: str = ""  # the text of the coupon's district on the attached-population page
    coupon_number: str = ""
    lists: dict[str, list[str]] = field(default_factory=dict)


def nobody() -> str:
    """A valid IIN the ЖТ ММБ (the server's own seed population) does not hold."""
    known = {person.iin for person in build_population()}
    rng = random.Random(2)
    while (iin := generate_iin(date(1990, 5, 5), "F", rng)) in known:
        pass
    return iin


class Workstation(browser.Browser):
    """The employee of the clinic AKTAU_P2 at its workstation."""

    mount = "clinic/"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.walk = ClinicWalk()

    def login(self, employee_iin: str, words: dict) -> None:
        self.open("login")
        self.fill(iin=employee_iin, password="not-the-password")
        self.press(words["login"])
        self.walk.refused_login = self.text("refusal")
        self.shot("clinic-1-login-refused")
        self.fill(password=EMPLOYEE_PASSWORD)
        self.press(words["login"])
        self.shot("clinic-2-home")

    def look_up(self, person, words: dict) -> None:
        """Process 2, then process 3 twice: nobody (process 4), then the recipient (condition 1 holds)."""
        self.press(words["new"])
        self.fill(iin=nobody())
        self.press(words["lookup"])
        self.walk.not_found = self.text("refusal")
        self.shot("clinic-3-not-in-registry")
        self.fill(iin=person.iin)
        self.press(words["lookup"])
        self.shot("clinic-4-form")

    def sign(self, words: dict) -> None:
        """Process 5: the form completed, «қол қою»: registered and decided (processes 6–8)."""
        self.press(words["create"])
        self.shot("clinic-5-sign")
        self.press(words["sign"])
        self.walk.number = self.driver.current_url.rsplit("/", 1)[-1]
        self.walk.status = self.text("status")
        self.walk.coupon_number = self.text("coupon-number")
        self.district = self.text("coupon-district").split(",")[0]
        self.shot("clinic-6-result")
        self.by_id("coupon-xml").click()
        self.walk.coupon_xml = self.downloaded(".xml")
        self.by_id("coupon-pdf").click()
        self.walk.coupon_pdf = self.downloaded(".pdf")

    def lists(self, words: dict) -> None:
        """§9: the lists; «ашу» opens the request and shows its result."""
        from selenium.webdriver.common.by import By

        self.open("requests")
        for name in ("incoming", "answered"):
            if name != "incoming":
                self.driver.find_element(By.LINK_TEXT, words[name]).click()
            self.walk.lists[name] = [cell.text for cell in self.driver.find_elements(By.CSS_SELECTOR, "td.number")]
        self.shot("clinic-7-requests")
        self.press(words["open"])
        self.walk.opened = self.text("coupon-number")

    def attachments(self) -> None:
        self.open("attachments")
        self.walk.attached = self.text(f"district-{self.district}")
        self.shot("clinic-8-attachments")


def walk_diagram_2(driver, base_url: str, downloads: Path, *, lang: str = "kk", person=None,
                   shots: Path | None = None) -> ClinicWalk:
    """Diagram 2 through the pages, in `lang`: a refused and a good login, the look-up of nobody (process 4)
    and of the recipient, the form, «қол қою», both downloads, the lists and «ашу», the attached population."""
    words = WORDS[lang]
    desk = Workstation(driver, base_url, downloads, shots)
    desk.open(f"login?lang={lang}")
    desk.login(load_clinics().clinic(browser.AKTAU_P2).employees[0].iin, words)
    person = person or browser.citizen()
    desk.look_up(person, words)
    desk.sign(words)
    desk.lists(words)
    desk.attachments()
    return desk.walk
