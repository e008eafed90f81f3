"""The registry's people: a deterministic synthetic population of Mangystau region, or people from a file.

Everyone is synthetic: names are drawn from lists of common names, IINs (ИИН / ЖСН) are generated for
the birth date and sex, addresses are real districts and towns with made-up houses. The same seed,
size and reference date always give the same people, so IINs can be written into tests and demos.

Households come first as deliberate showcases (a family with minor children, a single mother, a
deceased person, a person without a registered address, one with an unfit document), then at random.
Edge cases are derived from the data (`Person.edges`), so loaded people are marked the same way.
"""
from __future__ import annotations

import csv
import json
import random
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path

from gateway.security.identity import generate_iin, iin_birth_date_and_sex, is_valid_iin
from simulators.gbdfl import dictionaries as d
from simulators.gbdfl import names as n

DEFAULT_SEED = 47  # Mangystau's KATO prefix
DEFAULT_SIZE = 10_000
# Ages and document dates are computed as of this day, so a seed names the same people every year.
REFERENCE_DATE = date(2026, 1, 1)
ADULT_AGE = 18
ID_CARD_AGE = 16  # the identity card (удостоверение) is issued from 16
DOCUMENT_YEARS = 10

EDGE_DECEASED = "deceased"
EDGE_NO_ADDRESS = "no_address"
EDGE_INVALID_DOCUMENT = "invalid_document"
EDGE_CASES = (EDGE_DECEASED, EDGE_NO_ADDRESS, EDGE_INVALID_DOCUMENT)


# --- the model --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Address:
    """A registered (прописка / тіркеу) or temporary address in Mangystau region."""

    district: d.District
    town: str
    street: str
    building: str
    flat: str | None
    begin_date: date
    ar_code: str  # code of the building in the address register (АР)
    end_date: date | None = None


@dataclass(frozen=True, slots=True)
class BirthPlace:
    country: d.Value
    oblast: d.Value | None = None  # `district` on the wire
    region: d.Value | None = None  # rayon or city; `region` on the wire
    foreign_region: str | None = None  # ForeignData/regionName, for people born abroad
    city: str | None = None


@dataclass(frozen=True, slots=True)
class Certificate:
    """A birth or death certificate (свидетельство о рождении / о смерти)."""

    number: str
    begin_date: date
    issue_organisation: str


@dataclass(frozen=True, slots=True)
class Document:
    """An identity document (удостоверение личности, паспорт); the holder's names are the person's."""

    type: d.Value
    number: str
    begin_date: date
    end_date: date
    status: d.Value = d.VALID
    invalidity_date: date | None = None
    issuer: d.Value = d.MVD


@dataclass(frozen=True, slots=True)
class Person:
    """A person of the registry (ГБД ФЛ); `father_iin`/`mother_iin` are family links the wire never shows."""

    iin: str
    surname: str | None
    name: str | None
    patronymic: str | None
    birth_date: date
    sex: str  # "M" / "F"
    nationality: d.Value
    birth_place: BirthPlace
    reg_address: Address | None
    documents: tuple[Document, ...] = ()
    addresses: tuple[Address, ...] = ()  # other (temporary) registrations
    birth_certificate: Certificate | None = None
    death_date: date | None = None
    death_certificate: Certificate | None = None
    eng_first_name: str | None = None
    eng_surname: str | None = None
    citizenship: d.Value = d.KAZAKHSTAN
    father_iin: str | None = None
    mother_iin: str | None = None

    @property
    def gender(self) -> d.Value:
        return d.GENDERS[self.sex]

    @property
    def life_status(self) -> d.Value:
        return d.ALIVE if self.death_date is None else d.DECEASED

    @property
    def parents(self) -> tuple[str, ...]:
        return tuple(iin for iin in (self.father_iin, self.mother_iin) if iin)

    @property
    def edges(self) -> frozenset[str]:
        """Which deliberate edge cases this record is (EDGE_CASES); minors depend on a date: `is_minor`."""
        marks = set()
        if self.death_date is not None:
            marks.add(EDGE_DECEASED)
        if self.reg_address is None:
            marks.add(EDGE_NO_ADDRESS)
        if any(document.status == d.UNFIT for document in self.documents):
            marks.add(EDGE_INVALID_DOCUMENT)
        return frozenset(marks)

    def age(self, on: date) -> int:
        return _years_between(self.birth_date, on)

    def is_minor(self, on: date) -> bool:
        return self.death_date is None and self.age(on) < ADULT_AGE


# --- search -------------------------------------------------------------------------------------

# Why a query cannot be served: (Russian, Kazakh) texts for the reply's messageResult.
QUERY_ERRORS = {
    "no_criteria": ("не заданы критерии поиска", "іздеу критерийлері берілмеген"),
    "iin_invalid": ("ИИН не соответствует формату или контрольному разряду",
                    "ЖСН пішімге немесе бақылау разрядына сәйкес емес"),
    "name_incomplete": ("для поиска по ФИО укажите фамилию и имя или дату рождения",
                        "аты-жөні бойынша іздеу үшін тегін және атын немесе туған күнін көрсетіңіз"),
    "date_range": ("начало периода даты рождения позже его окончания",
                   "туған күн кезеңінің басы соңынан кейін"),
}


class QueryError(ValueError):
    def __init__(self, reason: str):
        self.reason = reason
        self.ru, self.kz = QUERY_ERRORS[reason]
        super().__init__(self.ru)


def _key(text: str) -> str:
    return text.strip().casefold()


@dataclass(frozen=True)
class Query:
    """The Request's search criteria (contract §10.1); every given criterion must match."""

    iin: str | None = None
    surname: str | None = None
    name: str | None = None
    patronymic: str | None = None
    birth_date: date | None = None
    birth_date_from: date | None = None
    birth_date_to: date | None = None
    document_number: str | None = None

    def check(self) -> None:
        """Raise QueryError when the criteria cannot be served (a bad request, not "not found")."""
        if not any(value is not None for value in vars(self).values()):
            raise QueryError("no_criteria")
        if self.iin is not None and not is_valid_iin(self.iin.strip()):
            raise QueryError("iin_invalid")
        if self.birth_date_from and self.birth_date_to and self.birth_date_from > self.birth_date_to:
            raise QueryError("date_range")
        # A name search needs enough to narrow it: a surname and a name or a birth date.
        if self.iin is None and self.document_number is None and not (
                self.surname and (self.name or self.birth_date or self.birth_date_from or self.birth_date_to)):
            raise QueryError("name_incomplete")

    def matches(self, person: Person) -> bool:
        for wanted, actual in ((self.iin, person.iin), (self.surname, person.surname), (self.name, person.name),
                               (self.patronymic, person.patronymic)):
            if wanted is not None and (actual is None or _key(wanted) != _key(actual)):
                return False
        if self.document_number is not None and not any(
                document.number == self.document_number.strip() for document in person.documents):
            return False
        born = person.birth_date
        return ((self.birth_date is None or born == self.birth_date)
                and (self.birth_date_from is None or born >= self.birth_date_from)
                and (self.birth_date_to is None or born <= self.birth_date_to))


class Population:
    """People in memory, indexed by IIN, document number and names; a later person replaces an earlier
    one with the same IIN (so a file can pin people over a generated population)."""

    def __init__(self, people: Iterable[Person], reference_date: date = REFERENCE_DATE):
        self.reference_date = reference_date
        self._by_iin: dict[str, Person] = {}
        for person in people:
            self._by_iin[person.iin] = person
        self._by_document: dict[str, list[Person]] = {}
        self._by_surname: dict[str, list[Person]] = {}
        self._by_name: dict[tuple[str, str], list[Person]] = {}
        self._by_name_birth: dict[tuple[str, str, date], list[Person]] = {}
        self._children: dict[str, list[Person]] = {}
        for person in self._by_iin.values():
            for document in person.documents:
                self._by_document.setdefault(document.number, []).append(person)
            surname, name = _key(person.surname or ""), _key(person.name or "")
            self._by_surname.setdefault(surname, []).append(person)
            self._by_name.setdefault((surname, name), []).append(person)
            self._by_name_birth.setdefault((surname, name, person.birth_date), []).append(person)
            for parent in person.parents:
                self._children.setdefault(parent, []).append(person)

    def __len__(self) -> int:
        return len(self._by_iin)

    def __iter__(self):
        return iter(self._by_iin.values())

    def __contains__(self, iin: str) -> bool:
        return iin in self._by_iin

    def get(self, iin: str) -> Person | None:
        return self._by_iin.get(iin)

    def children_of(self, iin: str) -> list[Person]:
        return list(self._children.get(iin, ()))

    def edge_cases(self, kind: str) -> list[Person]:
        if kind not in EDGE_CASES:
            raise ValueError(f"edge case must be one of {', '.join(EDGE_CASES)}, got {kind!r}")
        return [person for person in self if kind in person.edges]

    def minors(self, on: date | None = None) -> list[Person]:
        return [person for person in self if person.is_minor(on or self.reference_date)]

    def search(self, query: Query, limit: int = 100) -> list[Person]:
        """The people matching `query`, by birth date then IIN, at most `limit`; QueryError for a bad query."""
        query.check()
        if query.iin is not None:
            found = self._by_iin.get(query.iin.strip())
            candidates = [found] if found else []
        elif query.document_number is not None:
            candidates = self._by_document.get(query.document_number.strip(), [])
        elif query.name and query.birth_date:
            candidates = self._by_name_birth.get((_key(query.surname), _key(query.name), query.birth_date), [])
        elif query.name:
            candidates = self._by_name.get((_key(query.surname), _key(query.name)), [])
        else:
            candidates = self._by_surname.get(_key(query.surname), [])
        matching = sorted((p for p in candidates if query.matches(p)), key=lambda p: (p.birth_date, p.iin))
        return matching[:limit]


# --- generation --------------------------------------------------------------------------------

def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a common year
        return day.replace(year=day.year + years, day=28)


def _years_between(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


@dataclass
class _Adult:
    """What a household needs to know about an adult to make children: names to pass on."""

    person: Person
    surname_stem: str  # the surname's male form
    name: str
    patronymic_stem: str


@dataclass
class _Generator:
    rng: random.Random
    today: date
    iins: set[str] = field(default_factory=set)
    numbers: set[str] = field(default_factory=set)

    # -- small draws

    def day_between(self, first: date, last: date) -> date:
        return first + timedelta(days=self.rng.randrange((last - first).days + 1))

    def born_aged(self, youngest: int, oldest: int) -> date:
        """A birth date giving an age between youngest and oldest (inclusive) on the reference date."""
        return self.day_between(_add_years(self.today, -oldest - 1) + timedelta(days=1),
                                _add_years(self.today, -youngest))

    def iin(self, born: date, sex: str) -> str:
        while True:  # the serial is four random digits: redraw the rare collision
            iin = generate_iin(born, sex, self.rng)
            if iin not in self.iins:
                self.iins.add(iin)
                return iin

    def number(self, prefix: str, digits: int) -> str:
        while True:
            number = f"{prefix}{self.rng.randrange(10 ** digits):0{digits}d}"
            if number not in self.numbers:
                self.numbers.add(number)
                return number

    def district(self) -> d.District:
        return self.rng.choices(d.DISTRICTS, weights=[district.weight for district in d.DISTRICTS])[0]

    def address(self, district: d.District, since: date) -> Address:
        rng = self.rng
        town = district.towns[0] if rng.random() < 0.7 else rng.choice(district.towns)
        flat = None
        if town == district.towns[0] and not district.centre_streets:
            street = f"МИКРОРАЙОН {rng.randint(1, d.AKTAU_MICRODISTRICTS)}"
            building, flat = str(rng.randint(1, 60)), str(rng.randint(1, 90))
        else:
            streets = district.centre_streets if town == district.towns[0] else d.STREETS
            street, building = rng.choice(streets), str(rng.randint(1, 150))
            if streets is not d.STREETS:  # microdistricts of Жанаозен: blocks of flats
                flat = str(rng.randint(1, 60))
        return Address(district, town, street, building, flat, self.day_between(since, self.today),
                       f"{rng.randrange(10 ** 15, 10 ** 16)}")

    # -- names

    def names(self, sex: str, kazakh: bool) -> tuple[str, str]:
        """(first name, patronymic stem it gives children) for a man, (first name, "") for a woman."""
        if sex == "F":
            return self.rng.choice(n.KAZAKH_FEMALE if kazakh else n.RUSSIAN_FEMALE), ""
        if kazakh:
            name = self.rng.choice(n.KAZAKH_MALE)
            return name, n.kazakh_patronymic_stem(name)
        return self.rng.choice(n.RUSSIAN_MALE)

    def patronymic(self, father_name: str, father_stem: str, sex: str, kazakh: bool, born: date) -> str:
        if kazakh and born.year >= 1995 and self.rng.random() < 0.15:
            return n.kazakh_patronymic(father_name, sex)
        return n.patronymic(father_stem, sex)

    # -- people

    def birth_place(self, kazakh: bool, home: d.District, is_child: bool) -> BirthPlace:
        roll = 0.0 if is_child else self.rng.random()
        local = 0.8 if kazakh else 0.6
        if roll < local:
            district = home if is_child or self.rng.random() < 0.6 else self.district()
            return BirthPlace(d.KAZAKHSTAN, d.MANGYSTAU, district.region, city=district.towns[0])
        if roll < local + 0.1:
            oblast = self.rng.choice(d.OTHER_OBLASTS)
            return BirthPlace(d.KAZAKHSTAN, oblast, city=d.OTHER_OBLAST_CITIES[oblast.code])
        country, region, city = self.rng.choice(d.FOREIGN_BIRTHPLACES[:3] if kazakh else d.FOREIGN_BIRTHPLACES[3:])
        return BirthPlace(country, foreign_region=region, city=city)

    def documents(self, born: date) -> tuple[Document, ...]:
        if _years_between(born, self.today) < ID_CARD_AGE:
            return ()
        first = max(_add_years(born, ID_CARD_AGE), _add_years(self.today, -DOCUMENT_YEARS) + timedelta(days=1))
        documents = []
        for kind, prefix, digits in ((d.ID_CARD, "0", 8), (d.PASSPORT, "N", 8)):
            if kind is d.PASSPORT and self.rng.random() >= 0.25:
                break
            begin = self.day_between(first, self.today)
            documents.append(Document(kind, self.number(prefix, digits), begin,
                                      _add_years(begin, DOCUMENT_YEARS) - timedelta(days=1)))
        return tuple(documents)

    def person(self, *, sex: str, born: date, surname: str, name: str, patronymic: str | None, kazakh: bool,
               home: Address, is_child: bool = False, father: _Adult | None = None,
               mother: _Adult | None = None) -> Person:
        documents = self.documents(born)
        place = self.birth_place(kazakh, home.district, is_child)
        certificate = None
        if _years_between(born, self.today) < ADULT_AGE:
            office = (d.registry_office(home.district) if place.oblast is d.MANGYSTAU
                      else "ОТДЕЛ РЕГИСТРАЦИИ АКТОВ ГРАЖДАНСКОГО СОСТОЯНИЯ")
            certificate = Certificate(self.number("", 10), min(born + timedelta(days=self.rng.randint(3, 30)),
                                                               self.today), office)
        return Person(
            iin=self.iin(born, sex), surname=surname, name=name, patronymic=patronymic, birth_date=born, sex=sex,
            nationality=d.KAZAKH if kazakh else d.RUSSIAN, birth_place=place,
            reg_address=replace(home, begin_date=max(home.begin_date, born)), documents=documents,
            birth_certificate=certificate,
            eng_first_name=n.latin(name) if documents else None, eng_surname=n.latin(surname) if documents else None,
            father_iin=father.person.iin if father else None, mother_iin=mother.person.iin if mother else None)

    def adult(self, sex: str, born: date, kazakh: bool, home: Address, surname_stem: str | None = None) -> _Adult:
        name, stem = self.names(sex, kazakh)
        father_name, father_stem = self.names("M", kazakh)
        surname_stem = surname_stem or self.rng.choice(n.KAZAKH_SURNAMES if kazakh else n.RUSSIAN_SURNAMES)
        person = self.person(sex=sex, born=born, surname=n.surname_for(surname_stem, sex), name=name,
                             patronymic=self.patronymic(father_name, father_stem, sex, kazakh, born),
                             kazakh=kazakh, home=home)
        return _Adult(person, surname_stem, name, stem)

    def child(self, born: date, kazakh: bool, home: Address, father: _Adult | None, mother: _Adult) -> Person:
        sex = self.rng.choice("MF")
        name, _ = self.names(sex, kazakh)
        if father is not None:
            father_name, father_stem, stem = father.name, father.patronymic_stem, father.surname_stem
        else:  # the father is not in the registry: only the patronymic carries his name
            (father_name, father_stem), stem = self.names("M", kazakh), mother.surname_stem
        return self.person(sex=sex, born=born, surname=n.surname_for(stem, sex), name=name,
                           patronymic=self.patronymic(father_name, father_stem, sex, kazakh, born), kazakh=kazakh,
                           home=home, is_child=True, father=father, mother=mother)

    # -- households

    def couple(self, kazakh: bool, home: Address, mother_born: date) -> tuple[_Adult, _Adult]:
        father_born = self.day_between(_add_years(mother_born, -7), mother_born)
        father = self.adult("M", father_born, kazakh, home)
        # Most wives take the husband's surname.
        mother = self.adult("F", mother_born, kazakh, home, father.surname_stem if self.rng.random() < 0.7 else None)
        return father, mother

    def children(self, kazakh: bool, home: Address, father: _Adult | None, mother: _Adult,
                 ages: Iterable[int] | None = None) -> list[Person]:
        mother_born = mother.person.birth_date
        if ages is not None:
            births = [self.born_aged(age, age) for age in ages]
        else:
            births, born = [], self.day_between(_add_years(mother_born, 19), _add_years(mother_born, 30))
            for _ in range(self.rng.randint(1, 4)):
                if born > self.today:
                    break
                if _years_between(born, self.today) <= 25:  # older children have left home
                    births.append(born)
                born = self.day_between(_add_years(born, 1), _add_years(born, 5))
        return [self.child(born, kazakh, home, father, mother) for born in births]

    def household(self) -> list[Person]:
        rng = self.rng
        kazakh = rng.random() < 0.9
        kind = rng.choices(("family", "couple", "single", "single_parent"), weights=(50, 20, 20, 10))[0]
        # The mother's birth date, or the single adult's.
        born = self.born_aged(22, 50) if kind in ("family", "single_parent") else self.born_aged(20, 85)
        home = self.address(self.district(), max(_add_years(born, ADULT_AGE), _add_years(self.today, -30)))
        if kind == "single":
            return [self.edged(self.adult(rng.choice("MF"), born, kazakh, home).person)]
        if kind == "single_parent":
            mother = self.adult("F", born, kazakh, home)
            return [self.edged(mother.person), *self.children(kazakh, home, None, mother)]
        father, mother = self.couple(kazakh, home, born)
        kids = self.children(kazakh, home, father, mother) if kind == "family" else []
        return [self.edged(father.person), self.edged(mother.person), *kids]

    def edged(self, person: Person) -> Person:
        """Now and then an adult becomes an edge case, as in any real registry."""
        roll = self.rng.random()
        if roll < 0.01:
            return self.deceased(person)
        if roll < 0.015:
            return replace(person, reg_address=None)
        if roll < 0.02 and person.documents:
            return self.unfit(person)
        if roll < 0.05 and person.reg_address is not None:
            stay = self.address(self.district(), person.reg_address.begin_date)
            return replace(person, addresses=(replace(stay, end_date=_add_years(stay.begin_date, 1)),))
        return person

    def deceased(self, person: Person) -> Person:
        died = self.day_between(max(person.birth_date, _add_years(self.today, -5)), self.today - timedelta(days=30))
        office = d.registry_office(person.reg_address.district if person.reg_address else d.DISTRICTS[0])
        return replace(
            person, death_date=died,
            death_certificate=Certificate(self.number("", 10), died + timedelta(days=self.rng.randint(1, 5)), office),
            documents=tuple(replace(document, status=d.DEATH_RECORD, invalidity_date=died)
                            for document in person.documents),
            reg_address=replace(person.reg_address, end_date=died) if person.reg_address else None)

    def unfit(self, person: Person) -> Person:
        first, *rest = person.documents
        spoiled = self.day_between(first.begin_date, self.today)
        return replace(person, documents=(replace(first, status=d.UNFIT, invalidity_date=spoiled), *rest))

    def showcase(self) -> list[Person]:
        """The first households: every edge case exists in any population of a dozen people or more."""
        aktau = d.DISTRICTS_BY_KEY["aktau"]
        home = self.address(aktau, _add_years(self.today, -10))
        father, mother = self.couple(True, home, self.born_aged(36, 36))
        family = [father.person, mother.person, *self.children(True, home, father, mother, ages=(12, 6, 1))]
        home = self.address(d.DISTRICTS_BY_KEY["zhanaozen"], _add_years(self.today, -5))
        single = self.adult("F", self.born_aged(29, 29), True, home)
        family += [single.person, *self.children(True, home, None, single, ages=(4,))]
        beineu = self.address(d.DISTRICTS_BY_KEY["beineu"], _add_years(self.today, -40))
        family.append(self.deceased(self.adult("M", self.born_aged(78, 78), True, beineu).person))
        home = self.address(d.DISTRICTS_BY_KEY["munaily"], _add_years(self.today, -3))
        family.append(replace(self.adult("F", self.born_aged(33, 33), False, home).person, reg_address=None))
        home = self.address(d.DISTRICTS_BY_KEY["tupkaragan"], _add_years(self.today, -8))
        family.append(self.unfit(self.adult("M", self.born_aged(45, 45), True, home).person))
        return family


def generate(seed: int = DEFAULT_SEED, size: int = DEFAULT_SIZE, *,
             reference_date: date = REFERENCE_DATE) -> list[Person]:
    """`size` synthetic people; the same arguments always give the same people, in the same order."""
    if size < 0:
        raise ValueError(f"size must not be negative, got {size}")
    generator = _Generator(random.Random(seed), reference_date)
    people = generator.showcase()
    while len(people) < size:
        people.extend(generator.household())
    # Parents come before their children, so trimming never leaves a child's link dangling.
    return people[:size]


# --- files ------------------------------------------------------------------------------------

FILE_FIELDS = (
    "iin", "surname", "name", "patronymic", "birth_date", "sex", "nationality", "death_date",
    "district", "town", "street", "building", "flat", "registered_since",
    "document_type", "document_number", "document_begin", "document_end", "document_status",
    "father_iin", "mother_iin",
)


def _date(record: Mapping[str, str | None], key: str) -> date | None:
    value = record.get(key)
    return date.fromisoformat(value) if value else None


def person_from_record(record: Mapping[str, str | None]) -> Person:
    """One person from a flat record (FILE_FIELDS; empty or missing = absent); ValueError when inconsistent."""
    record = {key: None if value is None else str(value).strip() or None for key, value in record.items()}
    unknown = set(record) - set(FILE_FIELDS)
    if unknown:  # a CSV row longer than its header has the key None
        raise ValueError(f"unknown fields {', '.join(sorted(map(str, unknown)))}")
    iin = record.get("iin")
    if not is_valid_iin(iin):
        raise ValueError(f"iin {iin!r} is not 12 digits with a valid check digit")
    encoded = iin_birth_date_and_sex(iin)
    born, sex = _date(record, "birth_date"), record.get("sex")
    if encoded is not None:
        if born not in (None, encoded[0]) or sex not in (None, encoded[1]):
            raise ValueError(f"iin {iin} encodes {encoded[0]} and sex {encoded[1]}, the record says {born} {sex}")
        born, sex = encoded
    if born is None or sex not in ("M", "F"):
        raise ValueError(f"iin {iin} encodes no birth date and sex: give birth_date and sex (M/F)")
    nationality = d.NATIONALITIES.get(record.get("nationality") or d.KAZAKH.code)
    if nationality is None:
        raise ValueError(f"nationality must be one of {', '.join(d.NATIONALITIES)}")
    died = _date(record, "death_date")
    address = None
    if record.get("district"):
        district = d.DISTRICTS_BY_KEY.get(record["district"])
        if district is None:
            raise ValueError(f"district must be one of {', '.join(d.DISTRICTS_BY_KEY)}")
        town, street, building = record.get("town") or district.towns[0], record.get("street"), record.get("building")
        # One code per building, so a family sharing an address shares it too.
        ar_code = f"{zlib.crc32(f'{district.key}|{town}|{street}|{building}'.encode()):016d}"
        address = Address(district, town, street or "", building or "", record.get("flat"),
                          _date(record, "registered_since") or born, ar_code, died)
    documents = ()
    if record.get("document_number"):
        kind = d.DOCUMENT_TYPES.get(record.get("document_type") or d.ID_CARD.code)
        status = d.DOCUMENT_STATUSES.get(record.get("document_status") or d.VALID.code)
        if kind is None or status is None:
            raise ValueError(f"document_type must be one of {', '.join(d.DOCUMENT_TYPES)}, "
                             f"document_status one of {', '.join(d.DOCUMENT_STATUSES)}")
        begin = _date(record, "document_begin") or _add_years(born, ID_CARD_AGE)
        end = _date(record, "document_end") or _add_years(begin, DOCUMENT_YEARS) - timedelta(days=1)
        documents = (Document(kind, record["document_number"], begin, end, status,
                              None if status == d.VALID else (died or begin)),)
    for parent in ("father_iin", "mother_iin"):
        if record.get(parent) and not is_valid_iin(record[parent]):
            raise ValueError(f"{parent} {record[parent]!r} is not a valid IIN")
    surname, name = record.get("surname"), record.get("name")
    region = address.district if address else None
    return Person(
        iin=iin, surname=surname, name=name, patronymic=record.get("patronymic"), birth_date=born, sex=sex,
        nationality=nationality,
        birth_place=BirthPlace(d.KAZAKHSTAN, d.MANGYSTAU if region else None, region.region if region else None),
        reg_address=address, documents=documents, death_date=died,
        eng_first_name=n.latin(name) if name and documents else None,
        eng_surname=n.latin(surname) if surname and documents else None,
        father_iin=record.get("father_iin"), mother_iin=record.get("mother_iin"))


def load_people(path: Path) -> list[Person]:
    """People from a `.json` file (a list of records) or a `.csv` file (a header row of FILE_FIELDS)."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        records = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(records, list) or not all(isinstance(record, dict) for record in records):
            raise ValueError(f"{path}: expected a JSON list of objects")
        numbered = enumerate(records, start=1)
        where = "record"
    elif path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as stream:
            numbered = list(enumerate(csv.DictReader(stream), start=2))
        where = "line"
    else:
        raise ValueError(f"{path}: people files are .json or .csv")
    people = []
    for number, record in numbered:
        try:
            people.append(person_from_record(record))
        except ValueError as exc:
            raise ValueError(f"{path}: {where} {number}: {exc}") from None
    return people


def build_population(seed: int = DEFAULT_SEED, size: int = DEFAULT_SIZE, files: Iterable[Path] = (), *,
                     reference_date: date = REFERENCE_DATE) -> Population:
    """`size` generated people (0 for none), then the files' people, which replace any with the same IIN."""
    people = generate(seed, size, reference_date=reference_date)
    for path in files:
        people.extend(load_people(path))
    return Population(people, reference_date)
