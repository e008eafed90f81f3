"""The paper coupon (тіркеу талоны / талон прикрепления, free form): diagram 2, process 8. A printable A4 page
in Kazakh and Russian — every label in both, Kazakh first, as the state's forms are — in a font with the Cyrillic
and Kazakh letters (`couponfont`). The authorised person's name has a row of its own, above the signature line,
so that no name runs into it.
"""
from __future__ import annotations

import functools
import io
import threading

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

from endpoints.provider.couponfont import CouponFont, find_coupon_font
from endpoints.provider.payload import Coupon

# (Kazakh, Russian): the coupon is one form for every citizen, in the state language and in Russian.
KIND_NAMES = {"therapeutic": ("терапиялық", "терапевтический"), "paediatric": ("педиатриялық", "педиатрический"),
              "general": ("жалпы практика дәрігері", "врача общей практики")}
REASON_NAMES = {"FREE_CHOICE": ("еркін таңдау", "свободный выбор"),
                "RESIDENCE_CHANGE": ("тұрғылықты жерін ауыстыру", "смена места жительства"),
                "CAMPAIGN": ("тіркеу науқаны", "кампания по прикреплению"),
                "NEWBORN": ("жаңа туған нәресте", "новорождённый")}
_fonts_lock = threading.Lock()


@functools.cache
def default_font() -> CouponFont:
    """Looked up once per process (fontconfig is a subprocess); FontNotFound says what to install."""
    return find_coupon_font()


def _registered(font: CouponFont) -> tuple[str, str]:
    """reportlab's names of the pair, registered once (its font registry is global)."""
    names = (f"coupon:{font.regular}", f"coupon-bold:{font.bold}")
    with _fonts_lock:
        known = pdfmetrics.getRegisteredFontNames()
        for name, path in zip(names, (font.regular, font.bold), strict=True):
            if name not in known:
                pdfmetrics.registerFont(TTFont(name, str(path)))
    return names


def _both(names: dict[str, tuple[str, str]], key: str) -> str:
    kk, ru = names.get(key, (key, key))
    return f"{kk} / {ru}"


def coupon_pdf(coupon: Coupon, *, clinic_address: str = "", signer: str = "", font: CouponFont | None = None) -> bytes:
    regular, bold = _registered(font or default_font())
    out = io.BytesIO()
    page = canvas.Canvas(out, pagesize=A4, pageCompression=1)
    page.setTitle(f"Тіркеу талоны / Талон прикрепления {coupon.coupon_number}")
    page.setAuthor(coupon.clinic_name)
    width, height = A4
    left, y = 20 * mm, height - 25 * mm
    value_x = left + 45 * mm

    def wrapped(text: str, x: float, size: float, limit: float) -> None:
        """Long values (clinic names, addresses, names) wrap rather than run off the page or into the next."""
        nonlocal y
        page.setFont(bold, size)
        current = ""
        for word in text.split():
            if current and page.stringWidth(f"{current} {word}", bold, size) > limit:
                page.drawString(x, y, current)
                y -= 5 * mm
                current = word
            else:
                current = f"{current} {word}".strip()
        page.drawString(x, y, current)

    def line(kk: str, ru: str, value: str | None) -> None:
        nonlocal y
        top = y
        page.setFont(regular, 9)
        page.drawString(left, top, kk)
        page.setFont(regular, 8)
        page.drawString(left, top - 3.8 * mm, ru)
        wrapped(value or "—", value_x, 11, width - value_x - 15 * mm)
        y = min(y, top - 3.8 * mm) - 5.2 * mm

    page.setFont(bold, 15)
    page.drawCentredString(width / 2, y, "ТІРКЕУ ТАЛОНЫ / ТАЛОН ПРИКРЕПЛЕНИЯ")
    y -= 6 * mm
    page.setFont(regular, 10)
    page.drawCentredString(width / 2, y, "МСАК көрсететін медициналық ұйымға тіркеу талоны")
    y -= 5 * mm
    page.drawCentredString(width / 2, y, "к организации, оказывающей первичную медико-санитарную помощь")
    y -= 12 * mm
    person = coupon.person
    line("Талон нөмірі", "Номер талона", coupon.coupon_number)
    line("Тіркелген күні", "Дата прикрепления", coupon.attachment_date.strftime("%d.%m.%Y"))
    line("Тіркеу нөмірі", "Регистрационный номер", coupon.registration_number)
    y -= 3 * mm
    line("Тегі, аты, әкесінің аты", "Ф.И.О.", person.full_name)
    line("ЖСН", "ИИН", person.iin)
    line("Туған күні", "Дата рождения", person.birth_date.strftime("%d.%m.%Y"))
    line("Мекенжайы", "Адрес", person.address.line() if person.address else None)
    y -= 3 * mm
    line("МСАК ұйымы", "Организация ПМСП", coupon.clinic_name)
    line("БСН", "БИН", coupon.clinic_bin)
    if clinic_address:
        line("Ұйымның мекенжайы", "Адрес организации", clinic_address)
    line("Учаске", "Участок", f"№ {coupon.district.number}, {_both(KIND_NAMES, coupon.district.kind)}")
    line("Учаскелік дәрігер", "Участковый врач", coupon.district.doctor)
    line("Негіздеме", "Основание", _both(REASON_NAMES, coupon.reason))
    if coupon.previous_clinic_bin:
        line("Бұрынғы ұйымның БСН", "Откреплён от (БИН)", coupon.previous_clinic_bin)
    if coupon.home_visit_note:
        line("Белгі", "Отметка", coupon.home_visit_note)
    y -= 10 * mm
    page.setFont(regular, 10)
    page.drawString(left, y, "Уәкілетті тұлға / Уполномоченное лицо:")
    if signer:
        y -= 6 * mm
        wrapped(signer, left, 11, width - 2 * left)
    # The signature line and the stamp's place on rows of their own, below the name.
    y -= 12 * mm
    page.setFont(regular, 10)
    page.drawString(left + 110 * mm, y, "______________________")
    y -= 5 * mm
    page.setFont(regular, 8)
    page.drawString(left + 110 * mm, y, "қолы / подпись")
    page.drawString(left + 150 * mm, y, "М.О. / М.П.")
    page.drawString(left, 19 * mm, f"Берілді / Выдан {coupon.issued_at:%d.%m.%Y %H:%M}. Электрондық талонға ұйымның "
                                   "уәкілетті тұлғасы ЭЦҚ қойған.")
    page.drawString(left, 15 * mm, "Электронный талон подписан ЭЦП уполномоченного лица организации.")
    page.showPage()
    page.save()
    return out.getvalue()
