"""«нәтижесін көру» / «view result»: the clinic's answer as received, its EDS verified (the signature, the
certificate now, the clinic's BIN), as a file and as the printable coupon. A mixin of `Portal`."""
from __future__ import annotations

from dataclasses import dataclass

from endpoints.portal import attachment
from endpoints.portal.model import PortalError
from endpoints.portal.signer import describe
from gateway import contract as c
from gateway.security import xmldsig
from gateway.security.algorithms import SignatureError
from gateway.security.identity import subject_bin


@dataclass(frozen=True)
class Document:
    """A file the citizen downloads: the signed result, its PDF."""
    body: bytes
    content_type: str
    filename: str


class ResultCases:
    """Over `self.engine`, `self.policy`, `self.validator`, `self._own` and `self._view` of `Portal`."""

    def result(self, iin: str, number: str) -> dict:
        with self.engine.begin() as conn:
            row = self._own(conn, iin, number)
        if row.result_type is None:
            raise PortalError(409, "RESULT_NOT_READY", "Результат ещё не получен: обновите статус",
                              request=self._view(row))
        root = c.PARSER.parse(row.result_document).getroot()
        answer = {"request": self._view(row), "type": row.result_type,
                  "signature": self._verify_result(row.result_document, row.form["clinic_bin"])}
        if row.result_type == "COUPON":
            coupon = attachment.read_coupon(root)
            answer["coupon"] = coupon
            answer["matches_request"] = (coupon.get("requestNumber") == row.number
                                         and coupon["person"].get("iin") == row.applicant_iin)
        else:
            refusal = attachment.read_refusal(root)
            answer["refusal"] = refusal
            answer["matches_request"] = refusal.get("requestNumber") == row.number
        return answer

    def result_document(self, iin: str, number: str) -> "Document":
        """The signed result as received (the coupon or the refusal), to keep and verify elsewhere."""
        with self.engine.begin() as conn:
            row = self._own(conn, iin, number)
        if row.result_type is None:
            raise PortalError(409, "RESULT_NOT_READY", "Результат ещё не получен: обновите статус",
                              request=self._view(row))
        kind = "coupon" if row.result_type == "COUPON" else "refusal"
        return Document(row.result_document, "application/xml", f"{number}-{kind}.xml")

    def result_pdf(self, iin: str, number: str) -> "Document":
        """The coupon as a printable PDF (the clinic's paper form), signed by whom the signature names."""
        from endpoints.provider.payload import read_coupon
        from endpoints.provider.pdf import coupon_pdf

        with self.engine.begin() as conn:
            row = self._own(conn, iin, number)
        if row.result_type != "COUPON":
            raise PortalError(409, "NO_COUPON", f"По заявке {number} нет талона ({row.status})",
                              request=self._view(row))
        signature = self._verify_result(row.result_document, row.form["clinic_bin"])
        signer = (signature.get("signer") or {}).get("common_name") or ""
        coupon = read_coupon(c.PARSER.parse(row.result_document).getroot())
        return Document(coupon_pdf(coupon, signer=signer), "application/pdf", f"{number}-coupon.pdf")

    def _verify_result(self, document: bytes, clinic_bin: str) -> dict:
        """The EDS of the clinic's authorised person: the signature, the certificate now, and whose BIN it is."""
        try:
            verified = xmldsig.verify_document(document, policy=self.policy)
        except SignatureError as error:
            return {"valid": False, "error": error.name, "detail": error.detail}
        signer = describe(verified.certificate)
        try:
            validated = self.validator.validate(verified.certificate, at=self.clock(), what="result signature")
        except SignatureError as error:
            return {"valid": False, "error": error.name, "detail": error.detail, "signer": signer}
        if subject_bin(verified.certificate) != clinic_bin:
            return {"valid": False, "error": "SIGNER_NOT_CLINIC", "signer": signer,
                    "detail": f"signed for BIN {signer['bin'] or 'none'}, the request names clinic {clinic_bin}"}
        return {"valid": True, "signer": signer, "revocation": validated.revocation,
                "signature_method": verified.signature_method}
