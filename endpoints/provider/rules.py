"""The grounds for the service (основания для оказания услуги): condition 3 of diagram 1 and condition 2
of diagram 2. Each ground is a small function of the `Application` returning None (met) or the `Reason`
it fails, with a stable code and ru/kk texts (docs/attachment-rules.md). Every ground is evaluated, so a
refusal lists all of them; grounds that need what is missing (the person, the clinic) stay silent.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from endpoints.provider.payload import PROVIDER, Address, AttachmentRequest, Reason
from endpoints.provider.registry import Person

if TYPE_CHECKING:  # config validates names against this module's catalogue
    from endpoints.provider.config import Clinic, District, Rules

# code -> (ground, ru, kk). Codes are stable: portals and reports key on them.
CATALOGUE: dict[str, tuple[str, str, str]] = {
    "ATT-101": ("signature_valid",
                "ЭЦП заявления не подтверждена: подпись недействительна либо сертификат просрочен, отозван "
                "или выдан не НУЦ РК",
                "Өтініштің ЭЦҚ расталмады: қолтаңба жарамсыз не тіркеу куәлігінің мерзімі өткен, кері "
                "қайтарылған немесе оны ҰКО бермеген"),
    "ATT-102": ("signer_matches",
                "ИИН в сертификате ЭЦП не совпадает с ИИН заявителя (законного представителя, сотрудника)",
                "ЭЦҚ тіркеу куәлігіндегі ЖСН өтініш берушінің (заңды өкілдің, қызметкердің) ЖСН-імен "
                "сәйкес келмейді"),
    "ATT-103": ("clinic_served",
                "Организация ПМСП с указанным БИН не обслуживается этой системой",
                "Көрсетілген БСН бар МСАК ұйымы бұл жүйеде қызмет көрсетілмейді"),
    "ATT-201": ("person_found",
                "Данные получателя не найдены в ЖТ ММБ (ГБД ФЛ)",
                "Алушының деректері ЖТ ММБ-да табылмады"),
    "ATT-202": ("person_alive",
                "По данным ЖТ ММБ (ГБД ФЛ) получатель умер",
                "ЖТ ММБ деректері бойынша алушы қайтыс болған"),
    "ATT-203": ("representative_required",
                "Несовершеннолетний прикрепляется через родителя или законного представителя, "
                "совершеннолетний подаёт заявление сам",
                "Кәмелетке толмаған адам ата-анасы немесе заңды өкілі арқылы тіркеледі, кәмелетке толған "
                "адам өтінішті өзі береді"),
    "ATT-204": ("representative_is_parent",
                "По данным ЖТ ММБ (ГБД ФЛ) заявитель не является родителем несовершеннолетнего",
                "ЖТ ММБ деректері бойынша өтініш беруші кәмелетке толмаған адамның ата-анасы емес"),
    "ATT-301": ("in_service_zone",
                "Адрес проживания вне территории обслуживания организации ПМСП",
                "Тұратын мекенжайы МСАК ұйымының қызмет көрсету аумағынан тыс"),
    "ATT-302": ("campaign_open",
                "Кампания по прикреплению в эти даты не проводится",
                "Бұл күндері тіркеу науқаны өткізілмейді"),
    "ATT-303": ("free_change_limit",
                "Свободная смена организации ПМСП вне кампании в этом году уже использована",
                "Осы жылы науқаннан тыс МСАК ұйымын еркін ауыстыру мүмкіндігі пайдаланылды"),
    "ATT-304": ("not_already_attached",
                "Получатель уже прикреплён к этой организации ПМСП",
                "Алушы осы МСАК ұйымына тіркелген"),
    "ATT-305": ("district_suitable",
                "Участок не найден в организации или не обслуживает получателя по возрасту",
                "Учаске ұйымда табылмады немесе алушыға жасы бойынша қызмет көрсетпейді"),
    "ATT-306": ("district_has_room",
                "На участке нет свободных мест: достигнута предельная численность прикреплённого населения",
                "Учаскеде бос орын жоқ: тіркелген халықтың шекті саны толды"),
    "ATT-307": ("residence_changed",
                "Смена места жительства не подтверждена: по данным ЖТ ММБ (ГБД ФЛ) адрес проживания тот же, "
                "что при прикреплении",
                "Тұрғылықты жерінің ауысқаны расталмады: ЖТ ММБ деректері бойынша тұратын мекенжайы тіркелген "
                "кездегідей"),
}
_CODES = {ground: code for code, (ground, _, _) in CATALOGUE.items()}


@dataclass(frozen=True)
class CurrentAttachment:
    """The person's active record in the register of attached population (РПН)."""
    clinic_bin: str
    district_number: str
    attach_date: date
    address: str | None = None  # the residence the coupon showed (`Address.line()`), None if none was known


@dataclass(frozen=True)
class Application:
    """What the grounds are checked against: the request and what the АЖО learnt about it."""
    request: AttachmentRequest
    settings: Rules
    today: date
    clinic: Clinic | None = None
    signer_iin: str | None = None
    signature_error: str | None = None  # why the EDS was not confirmed; None when it was
    person: Person | None = None  # from ЖТ ММБ
    representative: Person | None = None
    current: CurrentAttachment | None = None
    changes_this_year: int = 0  # free changes already counted this calendar year
    district: District | None = None  # requested, or chosen by `choose_district`
    district_load: int = 0  # active attachments to that district

    @property
    def minor(self) -> bool | None:
        return None if self.person is None else self.person.age_on(self.today) < self.settings.adult_age

    @property
    def in_campaign(self) -> bool:
        return self.settings.in_campaign(self.today)


def _reason(app: Application, ground: str, detail: str = "") -> Reason:
    code = _CODES[ground]
    _, ru, kk = CATALOGUE[code]
    ru, kk = app.settings.texts.get(code, (ru, kk))
    return Reason(code, ru, kk, detail)


# --- where the person lives -------------------------------------------------------------------------

def residences(app: Application) -> tuple[Address, ...]:
    """The registry's registrations (permanent, then temporary) are authoritative; the address declared
    in the request counts only for a person the registry knows no address of."""
    if app.person is not None and (app.person.address or app.person.temporary):
        return tuple(a for a in (app.person.address, *app.person.temporary) if a is not None)
    declared = app.request.applicant.address
    return (declared,) if declared is not None else ()


def zone_status(app: Application) -> str | None:
    """"zone", "border" (a border-area exception), "outside", or None without a clinic."""
    if app.clinic is None:
        return None
    places = residences(app)
    for areas, status in ((app.clinic.zone, "zone"), (app.clinic.border, "border")):
        if any(area.covers(p.district, p.city, p.street) for area in areas for p in places):
            return status
    return "outside"


def residence_used(app: Application) -> Address | None:
    """The address the coupon shows: the one in the zone (or border area), else the first known."""
    places = residences(app)
    if app.clinic is not None:
        for areas in (app.clinic.zone, app.clinic.border):
            for place in places:
                if any(area.covers(place.district, place.city, place.street) for area in areas):
                    return place
    return places[0] if places else None


def home_visit(app: Application) -> bool:
    """Attached from outside the zone: home visits are agreed in advance and written in the coupon."""
    return zone_status(app) == "outside" and app.clinic.outside_zone == "home_visit"


def counts_as_free_change(app: Application) -> bool:
    """A change of clinic outside the campaign for a reason that is not exempt uses the yearly allowance."""
    return (app.current is not None and app.clinic is not None and app.current.clinic_bin != app.clinic.bin
            and app.request.reason not in app.settings.exempt_reasons and not app.in_campaign)


def choose_district(clinic: Clinic | None, requested: str | None, minor: bool | None,
                    loads: dict[str, int]) -> District | None:
    """The requested district, or the suitable one with the most room (the least full when all are
    full, so that the capacity ground says why)."""
    if clinic is None:
        return None
    if requested:
        return clinic.district(requested)
    if minor is None:
        return None
    suitable = [d for d in clinic.districts if d.serves(minor)]
    if not suitable:
        return None
    return min(suitable, key=lambda d: (loads.get(d.number, 0) >= d.capacity, loads.get(d.number, 0) / d.capacity))


# --- the grounds --------------------------------------------------------------------------------------

def signature_valid(app: Application) -> Reason | None:
    if app.signature_error is not None:
        return _reason(app, "signature_valid", app.signature_error)
    return None


def signer_matches(app: Application) -> Reason | None:
    """Portal: the applicant signs, or the representative for a minor. Employee flow: an employee of
    the clinic signs (process 5)."""
    if app.signature_error is not None:
        return None
    request = app.request
    if request.channel == PROVIDER:
        expected = request.employee_iin
        if app.clinic is not None and (expected is None or app.clinic.employee(expected) is None):
            return _reason(app, "signer_matches", f"{expected} is not an employee of {app.clinic.bin}")
    else:
        expected = request.representative_iin or request.applicant.iin
    if app.signer_iin is None or app.signer_iin != expected:
        return _reason(app, "signer_matches", f"signed by IIN {app.signer_iin or 'none'}, {expected} expected")
    return None


def clinic_served(app: Application) -> Reason | None:
    return _reason(app, "clinic_served", app.request.clinic_bin) if app.clinic is None else None


def person_found(app: Application) -> Reason | None:
    return _reason(app, "person_found", app.request.applicant.iin) if app.person is None else None


def person_alive(app: Application) -> Reason | None:
    if app.person is not None and not app.person.alive:
        return _reason(app, "person_alive", f"died {app.person.death_date or '(date unknown)'}")
    return None


def representative_required(app: Application) -> Reason | None:
    representative_iin = app.request.representative_iin
    if app.minor is None:
        return None
    if not app.minor:
        return _reason(app, "representative_required", "an adult with a representative") \
            if representative_iin else None
    if not representative_iin:
        return _reason(app, "representative_required", "a minor without a representative")
    who = app.representative
    if who is None or not who.alive or who.age_on(app.today) < app.settings.adult_age:
        return _reason(app, "representative_required",
                       f"representative {representative_iin} is not a living adult in ЖТ ММБ")
    return None


def representative_is_parent(app: Application) -> Reason | None:
    """Skipped when the registry gives no family data, unless `require_family_data`."""
    if not app.minor or not app.request.representative_iin:
        return None
    parents = app.person.parents
    if parents is None:
        return _reason(app, "representative_is_parent", "ЖТ ММБ gives no family data") \
            if app.settings.require_family_data else None
    if app.request.representative_iin not in parents:
        return _reason(app, "representative_is_parent", f"parents in ЖТ ММБ: {', '.join(sorted(parents))}")
    return None


def in_service_zone(app: Application) -> Reason | None:
    """Silent for a person ЖТ ММБ does not know: the declared address of nobody decides nothing (ATT-201 says
    why the request fails)."""
    if app.person is None:
        return None
    if zone_status(app) == "outside" and app.clinic.outside_zone == "refuse":
        places = "; ".join(p.line() for p in residences(app)) or "no address known"
        return _reason(app, "in_service_zone", places)
    return None


def _same_place(line: str) -> str:
    return " ".join(line.upper().split())


def residence_changed(app: Application) -> Reason | None:
    """A change of residence exempts from the yearly limit only when ЖТ ММБ shows one: some registered
    address (permanent or temporary) differs from the one the current attachment was made at. Without a
    current attachment nothing is exempted, so nothing is checked; the declared address proves nothing."""
    if app.request.reason != "RESIDENCE_CHANGE" or app.current is None or app.person is None:
        return None
    registered = [_same_place(a.line()) for a in (app.person.address, *app.person.temporary) if a is not None]
    before = _same_place(app.current.address) if app.current.address else None
    if any(place != before for place in registered):
        return None
    return _reason(app, "residence_changed", f"attached {app.current.attach_date} at "
                                             f"{app.current.address or '(no address)'}; ЖТ ММБ: "
                                             f"{'; '.join(registered) or 'no address'}")


def campaign_open(app: Application) -> Reason | None:
    if app.request.reason == "CAMPAIGN" and not app.in_campaign:
        return _reason(app, "campaign_open", app.today.isoformat())
    return None


def free_change_limit(app: Application) -> Reason | None:
    if counts_as_free_change(app) and app.changes_this_year >= app.settings.free_changes_per_year:
        return _reason(app, "free_change_limit", f"{app.changes_this_year} change(s) in {app.today.year}")
    return None


def not_already_attached(app: Application) -> Reason | None:
    if app.current is not None and app.clinic is not None and app.current.clinic_bin == app.clinic.bin:
        return _reason(app, "not_already_attached", f"since {app.current.attach_date}, "
                                                    f"district {app.current.district_number}")
    return None


def district_suitable(app: Application) -> Reason | None:
    if app.clinic is None or app.minor is None:
        return None
    if app.district is None:
        return _reason(app, "district_suitable", f"district {app.request.district_number or '(any)'}")
    if not app.district.serves(app.minor):
        return _reason(app, "district_suitable", f"district {app.district.number} is {app.district.kind}")
    return None


def district_has_room(app: Application) -> Reason | None:
    if app.district is not None and app.district_load >= app.district.capacity:
        return _reason(app, "district_has_room", f"district {app.district.number}: "
                                                 f"{app.district_load} of {app.district.capacity}")
    return None


GROUNDS = (signature_valid, signer_matches, clinic_served, person_found, person_alive, representative_required,
           representative_is_parent, in_service_zone, campaign_open, free_change_limit, not_already_attached,
           district_suitable, district_has_room, residence_changed)


def evaluate(app: Application) -> list[Reason]:
    """Every ground the application fails, in catalogue order; empty: the service is provided."""
    return [reason for ground in GROUNDS if ground.__name__ not in app.settings.disabled
            for reason in [ground(app)] if reason is not None]
