"""Dictionary values (справочники) of the person registry and the geography of Mangystau region.

Every dictionary value on the wire is `code`, `nameRu`, `nameKz` (contract §10.3). The codes the
contract publishes are used as published (gender, lifeStatus `0`, citizenship `398`, document types
and statuses, messageResult `00000`); the registry's other codes are not public, so the ones below
are the emulator's own (region codes follow the KATO prefix of the oblast, the rest are synthetic).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Value:
    """One dictionary value: its code and its Russian and Kazakh names."""

    code: str
    ru: str
    kz: str


MALE = Value("1", "Мужской", "Ер")
FEMALE = Value("2", "Женский", "Әйел")
GENDERS = {"M": MALE, "F": FEMALE}

ALIVE = Value("0", "Нормальный", "Қалыпты")
DECEASED = Value("1", "Умерший", "Қайтыс болған")  # not published: the emulator's own

KAZAKHSTAN = Value("398", "КАЗАХСТАН", "ҚАЗАҚСТАН")
TURKMENISTAN = Value("795", "ТУРКМЕНИСТАН", "ТҮРІКМЕНСТАН")
UZBEKISTAN = Value("860", "УЗБЕКИСТАН", "ӨЗБЕКСТАН")
RUSSIA = Value("643", "РОССИЯ", "РЕСЕЙ")

KAZAKH = Value("005", "КАЗАХ", "ҚАЗАҚ")
RUSSIAN = Value("001", "РУССКИЙ", "ОРЫС")
NATIONALITIES = {value.code: value for value in (KAZAKH, RUSSIAN)}

PASSPORT = Value("001", "ПАСПОРТ РК", "ҚР ПАСПОРТЫ")
ID_CARD = Value("002", "УДОСТОВЕРЕНИЕ РК", "ҚР ЖЕКЕ КУӘЛІГІ")
DOCUMENT_TYPES = {value.code: value for value in (PASSPORT, ID_CARD)}

VALID = Value("00", "ДОКУМЕНТ ДЕЙСТВИТЕЛЕН", "ҚҰЖАТ ЖАРАМДЫ")
UNFIT = Value("07", "НЕПРИГОДЕН К ИСПОЛЬЗОВАНИЮ", "ПАЙДАЛАНУҒА ЖАРАМСЫЗ")
REISSUED = Value("17", "ВЫДАН НОВЫЙ ДОКУМЕНТ", "ЖАҢА ҚҰЖАТ БЕРІЛДІ")
DEATH_RECORD = Value("18", "ИЗМЕНЕНИЕ ПО АКТОВОЙ ЗАПИСИ О СМЕРТИ", "ҚАЙТЫС БОЛУ ТУРАЛЫ АКТ ЖАЗБАСЫ БОЙЫНША ӨЗГЕРІС")
DOCUMENT_STATUSES = {value.code: value for value in (VALID, UNFIT, REISSUED, DEATH_RECORD)}

MVD = Value("002", "МВД РК", "ҚР ІІМ")

REGISTERED = Value("1", "Зарегистрирован", "Тіркелген")
TEMPORARY = Value("2", "ВРЕМЕННАЯ РЕГИСТРАЦИЯ", "УАҚЫТША ТІРКЕУ")


@dataclass(frozen=True)
class District:
    """A district (аудан) or city of regional significance of Mangystau region, where people live.

    On the wire the registry puts the oblast in `district` and the rayon or city in `region`."""

    key: str  # the name used in population files
    region: Value
    towns: tuple[str, ...]  # the first is the district centre
    # Streets of the centre; empty: the centre is built in numbered microdistricts (Актау).
    centre_streets: tuple[str, ...]
    weight: int  # share of the region's population, roughly


MANGYSTAU = Value("47", "МАНГИСТАУСКАЯ ОБЛАСТЬ", "МАҢҒЫСТАУ ОБЛЫСЫ")
OTHER_OBLASTS = (
    Value("23", "АТЫРАУСКАЯ ОБЛАСТЬ", "АТЫРАУ ОБЛЫСЫ"),
    Value("15", "АКТЮБИНСКАЯ ОБЛАСТЬ", "АҚТӨБЕ ОБЛЫСЫ"),
    Value("27", "ЗАПАДНО-КАЗАХСТАНСКАЯ ОБЛАСТЬ", "БАТЫС ҚАЗАҚСТАН ОБЛЫСЫ"),
    Value("43", "КЫЗЫЛОРДИНСКАЯ ОБЛАСТЬ", "ҚЫЗЫЛОРДА ОБЛЫСЫ"),
    Value("75", "Г.АЛМАТЫ", "АЛМАТЫ Қ."),
)
OTHER_OBLAST_CITIES = {"23": "АТЫРАУ", "15": "АКТОБЕ", "27": "УРАЛЬСК", "43": "КЫЗЫЛОРДА", "75": "АЛМАТЫ"}
# Repatriates (қандастар) to Mangystau come mostly from Turkmenistan and Karakalpakstan.
FOREIGN_BIRTHPLACES = (
    (TURKMENISTAN, "БАЛКАНСКИЙ ВЕЛАЯТ", "ТУРКМЕНБАШИ"),
    (TURKMENISTAN, "БАЛКАНСКИЙ ВЕЛАЯТ", "БАЛКАНАБАТ"),
    (UZBEKISTAN, "РЕСПУБЛИКА КАРАКАЛПАКСТАН", "НУКУС"),
    (RUSSIA, "АСТРАХАНСКАЯ ОБЛАСТЬ", "АСТРАХАНЬ"),
)

_STREETS = ("АБАЯ", "НАУРЫЗ", "ДОСТЫК", "ТАУЕЛСИЗДИК", "БЕЙБИТШИЛИК", "АЛТЫНСАРИНА", "ЖАМБЫЛА", "САТПАЕВА",
            "МАХАМБЕТА", "ЕСЕНОВА", "АБЫЛАЙ ХАНА", "ЖАСТАР", "ОРТАЛЫК", "КАСПИЙ", "МУНАЙШЫ")
STREETS = tuple(f"УЛИЦА {name}" for name in _STREETS)

DISTRICTS = (
    District("aktau", Value("4710", "Г.АКТАУ", "АҚТАУ Қ."), ("АКТАУ",), (), 30),
    District("zhanaozen", Value("4718", "Г.ЖАНАОЗЕН", "ЖАҢАӨЗЕН Қ."), ("ЖАНАОЗЕН", "ТЕНГЕ", "КЫЗЫЛСАЙ"),
             tuple(f"МИКРОРАЙОН {name}" for name in ("САМАЛ", "ШАНЫРАК", "АРАЙ", "КОКТЕМ", "ОРКЕН", "РАХАТ")), 20),
    District("munaily", Value("4740", "МУНАЙЛИНСКИЙ РАЙОН", "МҰНАЙЛЫ АУДАНЫ"),
             ("МАНГИСТАУ", "БАСКУДУК", "КЫЗЫЛТОБЕ", "АТАМЕКЕН", "ДАУЛЕТ"), STREETS, 20),
    District("beineu", Value("4720", "БЕЙНЕУСКИЙ РАЙОН", "БЕЙНЕУ АУДАНЫ"),
             ("БЕЙНЕУ", "БОРАНКУЛ", "АКЖИГИТ", "ТОЛЕП"), STREETS, 10),
    District("karakiya", Value("4730", "КАРАКИЯНСКИЙ РАЙОН", "ҚАРАҚИЯ АУДАНЫ"),
             ("КУРЫК", "ЖЕТЫБАЙ", "МУНАЙШЫ", "БОЛАШАК"), STREETS, 7),
    District("mangistau", Value("4750", "МАНГИСТАУСКИЙ РАЙОН", "МАҢҒЫСТАУ АУДАНЫ"),
             ("ШЕТПЕ", "ЖЫНГЫЛДЫ", "КЫЗАН", "ШАЙЫР"), STREETS, 7),
    District("tupkaragan", Value("4760", "ТУПКАРАГАНСКИЙ РАЙОН", "ТҮПҚАРАҒАН АУДАНЫ"),
             ("ФОРТ-ШЕВЧЕНКО", "БАУТИНО", "АКШУКУР", "ТАУШЫК"), STREETS, 6),
)
DISTRICTS_BY_KEY = {district.key: district for district in DISTRICTS}
# Актау is built in numbered microdistricts, not streets.
AKTAU_MICRODISTRICTS = 35


def registry_office(district: District) -> str:
    """The civil registry office (ЗАГС / ТАЖ) that registers births and deaths in a district."""
    return f"ОТДЕЛ РЕГИСТРАЦИИ АКТОВ ГРАЖДАНСКОГО СОСТОЯНИЯ {district.region.ru}"
