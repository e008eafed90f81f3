"""The paper coupon (талон прикрепления, free form): diagram 2, process 8. A printable A4 page in
Russian with the Kazakh title, in a font with the Cyrillic and Kazakh letters (`couponfont`).
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

KIND_NAMES = {"therapeutic": "терапевтический", "paediatric": "педиатрический", "general": "врача общей практики"}
REASON_NAMES = {"FREE_CHOICE": "свободный выбор", "RESIDENCE_CHANGE": "смена места жительства",
           "CAMPAIGN": "кампания по прикреплению", "NEWBORN": "новорождённый"}
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


def coupon_pdf(coupon: Coupon, *, clinic_address: str = "", signer: str = "", font: CouponFont | None = None) -> bytes:
    regular, bold = _registered(font or default_font())
    out = io.BytesIO()
    page = canvas.Canvas(out, pagesize=A4, pageCompression=1)
    page.setTitle(f"Талон прикрепления {coupon.coupon_number}")
    page.setAuthor(coupon.clinic_name)
    width, height = A4
    left, y = 20 * mm, height - 25 * mm

    def line(label: str, value: str | None, gap: float = 7 * mm) -> None:
        nonlocal y
        page.setFont(regular, 10)
        page.drawString(left, y, label)
        page.setFont(bold, 11)
        # Long values (clinic names, addresses) wrap rather than run off the page.
        words, current = (value or "—").split(), ""
        for word in words:
            if page.stringWidth(f"{current} {word}".strip(), bold, 11) > width - left - 75 * mm:
                page.drawString(left + 55 * mm, y, current)
                y -= 5 * mm
                current = word
            else:
                current = f"{current} {word}".strip()
        page.drawString(left + 55 * mm, y, current)
        y -= gap

    page.setFont(bold, 15)
    page.drawCentredString(width / 2, y, "ТАЛОН ПРИКРЕПЛЕНИЯ")
    y -= 6 * mm
    page.setFont(regular, 10)
    page.drawCentredString(width / 2, y, "к организации, оказывающей первичную медико-санитарную помощь")
    y -= 5 * mm
    page.drawCentredString(width / 2, y, "МСАК көрсететін медициналық ұйымға тіркеу талоны")
    y -= 12 * mm
    person = coupon.person
    line("Номер талона", coupon.coupon_number)
    line("Дата прикрепления", coupon.attachment_date.strftime("%d.%m.%Y"))
    line("Регистрационный номер", coupon.registration_number)
    y -= 3 * mm
    line("Ф.И.О.", person.full_name)
    line("ИИН", person.iin)
    line("Дата рождения", person.birth_date.strftime("%d.%m.%Y"))
    line("Адрес", person.address.line() if person.address else None)
    y -= 3 * mm
    line("Организация ПМСП", coupon.clinic_name)
    line("БИН", coupon.clinic_bin)
    if clinic_address:
        line("Адрес организации", clinic_address)
    line("Участок", f"№ {coupon.district.number}, {KIND_NAMES.get(coupon.district.kind, coupon.district.kind)}")
    line("Участковый врач", coupon.district.doctor)
    line("Основание", REASON_NAMES.get(coupon.reason, coupon.reason))
    if coupon.previous_clinic_bin:
        line("Откреплён от (БИН)", coupon.previous_clinic_bin)
    if coupon.home_visit_note:
        line("Отметка", coupon.home_visit_note)
    y -= 12 * mm
    page.setFont(regular, 10)
    page.drawString(left, y, f"Уполномоченное лицо: {signer}" if signer else "Уполномоченное лицо:")
    page.drawString(left + 120 * mm, y, "_______________")
    y -= 6 * mm
    page.drawString(left + 120 * mm, y, "подпись        М.П.")
    page.setFont(regular, 8)
    page.drawString(left, 15 * mm, f"Выдан {coupon.issued_at:%d.%m.%Y %H:%M}. Электронный талон подписан ЭЦП "
                                   "уполномоченного лица организации.")
    page.showPage()
    page.save()
    return out.getvalue()
