"""The state person registry (ЖТ ММБ — «Жеке тұлғалар» мемлекеттік мәліметтер базасы / ГБД ФЛ) as the
АЖО sees it: `PersonRegistry.find(iin)`, asked through the gateway's SyncChannel (contract §10).
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Callable, Protocol

from lxml import etree

from gateway import client
from gateway import contract as c
from gateway.security import xmldsig
from gateway.security.algorithms import SignatureError
from endpoints.provider.payload import Address

MESSAGE_NS = "http://message.persistence.interactive.nat"
REQUEST = c.q(MESSAGE_NS, "Request")
FOUND = "00000"  # the registry's own success code (contract §10.3)
ALIVE = "0"  # lifeStatus «Нормальный»


@dataclass(frozen=True)
class Person:
    """A person as the registry knows them. `address` is the permanent registration, `temporary` the
    temporary ones; `parents` are the parents' IINs, None when the registry gives no family data
    (its wire `Person` has no such field)."""
    iin: str
    surname: str
    name: str
    patronymic: str | None
    birth_date: date
    alive: bool
    death_date: date | None = None
    address: Address | None = None
    temporary: tuple[Address, ...] = ()
    parents: frozenset[str] | None = None

    def age_on(self, day: date) -> int:
        return day.year - self.birth_date.year - ((day.month, day.day) < (self.birth_date.month, self.birth_date.day))


class RegistryError(Exception):
    """The registry could not answer (unreachable, a fault, an unexpected result): not a "not found"."""


class PersonRegistry(Protocol):
    def find(self, iin: str) -> Person | None:
        """The person with this IIN, None when the registry has nobody; RegistryError when it cannot say."""


def _date(element: etree._Element, tag: str) -> date | None:
    text = element.findtext(tag)
    return date.fromisoformat(text.strip()[:10]) if text and text.strip() else None


def _optional(element: etree._Element, tag: str) -> str | None:
    text = element.findtext(tag)
    return text.strip() if text and text.strip() else None


def _address(element: etree._Element | None) -> Address | None:
    """The registry puts the oblast in `district` and the rayon or city in `region` (docs/gbdfl.md)."""
    if element is None or not _optional(element, "city"):
        return None
    return Address(region=_optional(element, "district/nameRu") or "", district=_optional(element, "region/nameRu"),
                   city=_optional(element, "city"), street=_optional(element, "street"),
                   building=_optional(element, "building"), flat=_optional(element, "flat"))


def read_person(element: etree._Element) -> Person:
    """A `person` of the registry's Response."""
    death = _date(element, "deathDate")
    return Person(iin=element.findtext("iin").strip(), surname=_optional(element, "surname") or "",
                  name=_optional(element, "name") or "", patronymic=_optional(element, "patronymic"),
                  birth_date=_date(element, "birthDate"),
                  alive=death is None and (_optional(element, "lifeStatus/code") or ALIVE) == ALIVE,
                  death_date=death, address=_address(element.find("regAddress")),
                  temporary=tuple(a for a in map(_address, element.iterfind("addresses/address")) if a))


class GatewayPersonRegistry:
    """Asks `GBDFL_UniversalServiceSync` by IIN through the gateway's SyncChannel (blocking: call it
    from a thread). `verify` takes the signed Response document and returns its verified root; the
    registry signs every Response (contract §9)."""

    def __init__(self, gateway_url: str, sender_id: str, password: str, *, service_id: str, sender_code: str,
                 verify: Callable[[bytes], etree._Element] | None = None, not_found_codes=("GBDFL-404",),
                 sign: tuple | None = None, timeout: float = 20):
        base = gateway_url.rstrip("/")
        self.url = base + "/" if base.endswith("/bip-sync") else base + "/bip-sync/"
        self.sender_id, self.password = sender_id, password
        self.service_id, self.sender_code = service_id, sender_code
        self.verify = verify
        self.not_found_codes = frozenset(not_found_codes)
        self.sign = sign
        self.timeout = timeout

    def request(self, iin: str) -> etree._Element:
        request = etree.Element(REQUEST, nsmap={"ns2": MESSAGE_NS})
        for tag, value in (("messageId", str(uuid.uuid4())), ("messageDate", client.now_iso()),
                           ("senderCode", self.sender_code), ("iin", iin)):
            etree.SubElement(request, tag).text = value
        return request

    def find(self, iin: str) -> Person | None:
        body = client.build_send_message(service_id=self.service_id, sender_id=self.sender_id,
                                         password=self.password, payload=self.request(iin), style="typed",
                                         xsi_type=REQUEST)
        if self.sign is not None:
            body = client.sign_request(body, *self.sign)
        try:
            status, raw = client.post(self.url, body, timeout=self.timeout)
            reply = client.read_reply(status, raw)
        except (OSError, ValueError) as exc:
            raise RegistryError(f"the gateway did not answer: {exc}") from None
        if not reply.ok:
            raise RegistryError(f"{reply.fault.get('errorCode')}: {reply.fault.get('errorMessage')} "
                                f"({reply.fault.get('errorData') or '-'})")
        if reply.data is None:
            raise RegistryError("the answer carries no data")
        document = xmldsig.document_in_data(reply.data)
        try:
            root = self.verify(document) if self.verify else c.PARSER.parse(document).getroot()
        except (ValueError, etree.XMLSyntaxError) as exc:
            raise RegistryError(f"the Response is unreadable: {exc}") from None
        except SignatureError as exc:  # an unproven Response decides nothing
            raise RegistryError(f"the Response's signature does not verify: {exc}") from None
        return self._person(root, iin)

    def _person(self, root: etree._Element, iin: str) -> Person | None:
        code = root.findtext("messageResult/code")
        for element in root.iterfind("persons/person"):
            if element.findtext("iin", "").strip() == iin:
                return read_person(element)
        if code in self.not_found_codes or code == FOUND:
            return None
        raise RegistryError(f"{code}: {root.findtext('messageResult/nameRu')}")
