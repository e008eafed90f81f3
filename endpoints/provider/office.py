"""The АЖО's work on one request, whichever way it came: registration (process 6), the grounds
(condition 3 / condition 2), and the result: a reasoned refusal (process 7) or the coupon signed by the
clinic's authorised person with the register of attached population updated (process 8).

Blocking (store, ЖТ ММБ through the gateway, signatures): call it from a thread.
"""
from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timezone
from typing import Callable

from lxml import etree

from gateway import contract as c
from gateway.security.algorithms import SignatureError
from endpoints.provider import payload as p
from endpoints.provider import rules
from endpoints.provider.config import Clinic, Officer, ProviderConfig
from endpoints.provider.registry import Person, PersonRegistry
from endpoints.provider.signing import Credentials, Verifier, sign
from endpoints.provider.store import COMPLETED, DRAFT, REFUSED, Facts, Outcome, ProviderStore

log = logging.getLogger("shep.provider")


class PersonNotFound(LookupError):
    """Diagram 2, process 4: the recipient is not in ЖТ ММБ."""


class NotADraft(ValueError):
    """Signing a request that is not an employee's unsigned draft."""


def _xml(element: etree._Element) -> bytes:
    return etree.tostring(element, xml_declaration=True, encoding="UTF-8")


def parse(raw: bytes) -> etree._Element:
    return c.PARSER.parse(raw).getroot()


class AttachmentOffice:
    def __init__(self, config: ProviderConfig, store: ProviderStore, registry: PersonRegistry,
                 verifier: Verifier | None, credentials: Credentials,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self.config = config
        self.store = store
        self.registry = registry
        self.verifier = verifier
        self.credentials = credentials
        self.clock = clock

    def now(self) -> datetime:
        """Local time of the region: registration times and attachment dates."""
        return self.clock().astimezone(self.config.utc_offset).replace(microsecond=0)

    # --- who signs ----------------------------------------------------------------------------------

    def operator(self) -> tuple:
        """The system operator's credentials: unknown clinics' results and the transport signature."""
        operator = self.config.operator
        return self.credentials.get(operator.authorised, kind="organization", bin=operator.bin, org=operator.name)

    def authorised(self, clinic_bin: str) -> tuple:
        """The clinic's authorised person signs its results; the operator those of unknown clinics."""
        clinic = self.config.clinic(clinic_bin)
        if clinic is None:
            return self.operator()
        return self.credentials.get(clinic.authorised, kind="organization", bin=clinic.bin, org=clinic.name)

    def employee_credentials(self, clinic: Clinic, employee: Officer) -> tuple:
        return self.credentials.get(employee, kind="employee", bin=clinic.bin, org=clinic.name)

    def ensure_credentials(self) -> None:
        """Issue every certificate the configuration needs now, not during a citizen's request."""
        self.operator()
        for clinic in self.config.clinics.values():
            self.authorised(clinic.bin)
            for employee in clinic.employees:
                self.employee_credentials(clinic, employee)

    # --- process 6 ----------------------------------------------------------------------------------

    def _registration(self, request: p.AttachmentRequest, registered_at: datetime) -> Callable[[str], bytes]:
        def document(number: str) -> bytes:
            return _xml(sign(p.registration_document(
                request_number=request.request_number, registration_number=number, registered_at=registered_at,
                clinic_bin=request.clinic_bin), self.authorised(request.clinic_bin)))
        return document

    def register_portal(self, document: bytes, *, message_id: str, correlation_id: str) -> dict:
        """A portal request registered in the АЖО; ValueError when it is no AttachmentRequest."""
        try:
            request = p.read_request(parse(document))
        except etree.XMLSyntaxError as exc:
            raise ValueError(f"not XML: {exc}") from None
        now = self.now()
        row = self.store.register(
            registered_at=now, registration=self._registration(request, now), request_number=request.request_number,
            channel=p.PORTAL, message_id=message_id, correlation_id=correlation_id, clinic_bin=request.clinic_bin,
            applicant_iin=request.applicant.iin, employee_iin=request.employee_iin, request_xml=document)
        log.info("registered %s (portal request %s, %s → %s)", row["registration_number"], request.request_number,
                 request.applicant.iin, request.clinic_bin)
        return row

    # --- diagram 2, processes 2–5 ------------------------------------------------------------------

    def draft(self, clinic: Clinic, employee: Officer, *, iin: str, reason: str, district_number: str | None = None,
              representative_iin: str | None = None) -> tuple[dict, Person]:
        """The form completed from ЖТ ММБ (process 3, condition 1); PersonNotFound is process 4."""
        person = self.registry.find(iin)
        if person is None:
            raise PersonNotFound(iin)
        request = p.AttachmentRequest(
            request_number="", submitted_at=self.now(), channel=p.PROVIDER,
            applicant=p.PersonData(person.iin, person.surname, person.name, person.patronymic, person.birth_date,
                                   person.address),
            clinic_bin=clinic.bin, reason=reason, representative_iin=representative_iin,
            district_number=district_number, employee_iin=employee.iin)

        def document(number: str) -> bytes:
            element = p.request_document(dataclasses.replace(request, request_number=number))
            p.validate(element)
            return _xml(element)

        row = self.store.create_draft(clinic_bin=clinic.bin, applicant_iin=iin, employee_iin=employee.iin,
                                      created_at=request.submitted_at, document=document)
        return row, person

    def sign_draft(self, number: str, clinic: Clinic, employee: Officer) -> dict:
        """Process 5 (the employee's EDS: the server signs with the employee's key, standing in for the
        signing application), then process 6 and the decision."""
        row = self.store.by_number(number)
        if row is None or row["status"] != DRAFT or row["clinic_bin"] != clinic.bin:
            raise NotADraft(number)
        signed = _xml(sign(parse(row["request_xml"]), self.employee_credentials(clinic, employee)))
        request = p.read_request(parse(signed))
        now = self.now()
        row = self.store.register(row_id=row["id"], registered_at=now, registration=self._registration(request, now),
                                  request_xml=signed, employee_iin=employee.iin)
        return self.decide(row)

    # --- condition 3, processes 7–8 ----------------------------------------------------------------

    def decide(self, row: dict) -> dict:
        """The grounds and the result; RegistryError (ЖТ ММБ cannot answer now) leaves it REGISTERED."""
        if row["status"] in (COMPLETED, REFUSED):
            return row
        document = row["request_xml"]
        try:
            verified = self.verifier.verify(document)
            # What is processed is what was signed: the verified tree, its unsigned comments stripped.
            root, signer_iin, signature_error = verified.root, verified.signer_iin, None
        except SignatureError as error:
            root, signer_iin, signature_error = parse(document), None, f"{error.name}: {error.detail}"
        request = p.read_request(root)
        person = self.registry.find(request.applicant.iin)
        representative = self.registry.find(request.representative_iin) if request.representative_iin else None
        now = self.now()
        base = rules.Application(request=request, settings=self.config.rules, today=now.date(),
                                 clinic=self.config.clinic(request.clinic_bin), signer_iin=signer_iin,
                                 signature_error=signature_error, person=person, representative=representative)

        def judge(facts: Facts) -> Outcome:
            district = rules.choose_district(base.clinic, request.district_number, base.minor, facts.loads)
            app = dataclasses.replace(base, current=facts.current, changes_this_year=facts.changes_this_year,
                                      district=district,
                                      district_load=facts.loads.get(district.number, 0) if district else 0)
            reasons = rules.evaluate(app)
            if reasons:
                log.info("refused %s: %s", row["registration_number"],
                         "; ".join(f"{r.code} {r.detail}" for r in reasons))
                refusal = p.refusal_document(request_number=request.request_number,
                                             registration_number=row["registration_number"], refused_at=now,
                                             reasons=reasons)
                return Outcome(REFUSED, _xml(sign(refusal, self.authorised(request.clinic_bin))))
            return self._coupon(row, app, now)

        return self.store.decide(row["id"], clinic_bin=request.clinic_bin, iin=request.applicant.iin,
                                 year=now.year, decided_at=now, judge=judge)

    def _coupon(self, row: dict, app: rules.Application, now: datetime) -> Outcome:
        clinic, person, district = app.clinic, app.person, app.district
        residence = rules.residence_used(app)
        note = self.config.rules.home_visit_note if rules.home_visit(app) else None
        number = f"{clinic.code}-{now:%Y}-{row['id']:06d}"
        coupon = p.Coupon(
            coupon_number=number, request_number=app.request.request_number,
            registration_number=row["registration_number"], issued_at=now,
            person=p.PersonData(person.iin, person.surname, person.name, person.patronymic, person.birth_date,
                                residence),
            clinic_bin=clinic.bin, clinic_name=clinic.name,
            district=p.DistrictData(district.number, district.kind, district.doctor), attachment_date=now.date(),
            reason=app.request.reason, home_visit_note=note,
            previous_clinic_bin=app.current.clinic_bin if app.current else None)
        log.info("coupon %s: %s attached to %s, district %s", number, person.iin, clinic.bin, district.number)
        record = dict(iin=person.iin, surname=person.surname, name=person.name, patronymic=person.patronymic,
                      birth_date=person.birth_date, address=residence.line() if residence else None,
                      clinic_bin=clinic.bin, clinic_name=clinic.name, district_number=district.number,
                      district_kind=district.kind, doctor=district.doctor, attach_date=now.date(),
                      reason=app.request.reason, channel=app.request.channel,
                      request_id=row["registration_number"], coupon_number=number, home_visit=note is not None,
                      counted_change=rules.counts_as_free_change(app))
        signed = sign(p.coupon_document(coupon), self.authorised(clinic.bin))
        return Outcome(COMPLETED, _xml(signed), coupon_number=number, attachment=record)
