"""The portal's registration check against the state person registry (ЖТ ММБ — «Жеке тұлғалар» мемлекеттік
мәліметтер базасы / ГБД ФЛ): a SIGN certificate is issued only for an adult the registry knows.

The portal asks the registry through the gateway's SyncChannel; the composition root gives it the client
(`PersonRegistry`), so this package imports no other party.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Callable, Protocol

from lxml import etree

from endpoints.portal.model import PortalError
from gateway.security import xmldsig
from gateway.security.algorithms import AlgorithmPolicy
from gateway.security.certs import CertificateValidator


class RegisteredPerson(Protocol):
    birth_date: date


class RegistryUnavailable(Exception):
    """ЖТ ММБ could not answer (unreachable, a fault, an unproven answer): not a "not found"."""


class PersonRegistry(Protocol):
    def find(self, iin: str) -> RegisteredPerson | None:
        """The person, None when the registry has nobody with this IIN; RegistryUnavailable when it cannot say."""


def answer_verifier(validator: CertificateValidator, policy: AlgorithmPolicy,
                    clock: Callable[[], datetime]) -> Callable[[bytes], etree._Element]:
    """The registry signs every Response: its EDS and a valid certificate of the national CA, or SignatureError."""
    def verified_root(document: bytes) -> etree._Element:
        verified = xmldsig.verify_document(document, policy=policy)
        validator.validate(verified.certificate, at=clock(), what="ЖТ ММБ answer")
        return verified.root
    return verified_root


def age(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def check_person(registry: PersonRegistry, iin: str, today: date, adult_age: int) -> RegisteredPerson:
    """The registry's person for a portal account: refused when unknown or a minor (the age from the registry's
    birth date, which outweighs the IIN's digits)."""
    try:
        person = registry.find(iin)
    except RegistryUnavailable as exc:
        raise PortalError(502, "REGISTRY_UNAVAILABLE", "ЖТ ММБ (ГБД ФЛ) не ответила: повторите позже",
                          message_kk="ЖТ ММБ жауап бермеді: кейінірек қайталаңыз", detail=str(exc)) from None
    if person is None:
        raise PortalError(422, "PERSON_NOT_FOUND", "Данные ИИН не найдены в ЖТ ММБ (ГБД ФЛ)",
                          message_kk="ЖСН деректері ЖТ ММБ-да табылмады")
    if age(person.birth_date, today) < adult_age:
        raise PortalError(422, "UNDERAGE", f"Регистрация на портале — с {adult_age} лет; несовершеннолетнего "
                                           "прикрепляет родитель или законный представитель из своего кабинета",
                          message_kk=f"Порталда {adult_age} жастан бастап тіркеледі; кәмелетке толмаған адамды "
                                     "ата-анасы немесе заңды өкілі өз кабинетінен тіркейді")
    return person
