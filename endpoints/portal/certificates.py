"""Process 3's choice of the EDS certificate: the citizen's certificates (a citizen may hold several), an
upload (PEM or a PKCS#12 container with its password), the one chosen for signing. A mixin of `Portal`."""
from __future__ import annotations

import base64

from endpoints.portal.model import Invalid, PortalError
from endpoints.portal.signer import describe, parse_credentials, parse_pkcs12


class CertificateCases:
    """Over `self.certificates` (a `signer.CertificateStore`)."""

    def certificate(self, iin: str) -> dict:
        """The certificate chosen for signing."""
        credentials = self.certificates.load(iin)
        if credentials is None:
            raise PortalError(404, "NO_CERTIFICATE", "Сертификат ЭЦП не загружен")
        return describe(credentials.certificate)

    def list_certificates(self, iin: str) -> list[dict]:
        """Process 3: the certificates the citizen may choose from (a citizen may hold several)."""
        chosen = self.certificates.chosen(iin)
        return [{**describe(credentials.certificate), "chosen": entry == chosen}
                for entry, credentials in self.certificates.all(iin)]

    def add_certificate(self, iin: str, body: dict, *, choose: bool = True) -> dict:
        """Upload a SIGN certificate and its key: PEM (`certificate`, `key`, `password`) or a PKCS#12
        container (`pkcs12`: bytes or base64, `password`); checked only at signing (condition 2)."""
        password = body.get("password")
        if password is not None and not isinstance(password, str):
            raise Invalid({"password": "строка"})
        container = body.get("pkcs12")
        try:
            if container is not None:
                if isinstance(container, str):
                    try:
                        container = base64.b64decode(container, validate=True)
                    except ValueError:
                        raise Invalid({"pkcs12": "PKCS#12 в base64"}) from None
                if not isinstance(container, bytes) or not container:
                    raise Invalid({"pkcs12": "PKCS#12 в base64"})
                credentials = parse_pkcs12(container, password)
            else:
                certificate, key = body.get("certificate"), body.get("key")
                if not isinstance(certificate, str) or not isinstance(key, str):
                    raise Invalid({"certificate": "PEM сертификата", "key": "PEM закрытого ключа"})
                credentials = parse_credentials(certificate, key, password)
        except ValueError as exc:
            raise Invalid({str(exc).split(":", 1)[0]: str(exc)}) from None
        entry = self.certificates.save(iin, credentials, choose=choose)
        return {**describe(credentials.certificate), "chosen": self.certificates.chosen(iin) == entry}

    def replace_certificate(self, iin: str, body: dict) -> dict:
        """`PUT /certificate`: upload one and choose it for signing."""
        return self.add_certificate(iin, body, choose=True)

    def choose_certificate(self, iin: str, entry: str) -> dict:
        try:
            self.certificates.choose(iin, entry)
        except KeyError:
            raise PortalError(404, "NO_CERTIFICATE", f"Сертификат ЭЦП {entry} не найден") from None
        return {**self.certificate(iin), "chosen": True}
