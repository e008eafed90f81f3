"""Two GOST implementations that share no code with gateway.security.gost, for the tests to hold it to.

- the OpenSSL GOST engine (Debian libengine-gost-openssl), driven through the `openssl` command: it knows
  keys under their Russian OIDs (RFC 4491 / 9215), so keys cross over re-labelled, same curve and numbers;
- gostcrypto (pure Python, GOST R 34.10-2012 / 34.11-2012 only), which writes keys big-endian, reads the
  digest as a big-endian number and takes r‖s where the national CA's convention is s‖r.
"""
from __future__ import annotations

import base64
import subprocess
import textwrap
from pathlib import Path

import pytest
from asn1crypto import core

from gateway.security.gost import digests
from gateway.security.gost.keys import GostPrivateKey, GostPublicKey, Profile
from tests import system_tools

# profile -> (Russian key algorithm OID, digest parameter OID or None, openssl digest name)
_RUSSIAN = {"gost2004": ("1.2.643.2.2.19", "1.2.643.2.2.30.1", "md_gost94"),
            "gost2015": ("1.2.643.7.1.1.1.2", None, "md_gost12_512"),
            "gost2015-256": ("1.2.643.7.1.1.1.1", "1.2.643.7.1.1.2.2", "md_gost12_256")}


def _openssl_gost_missing() -> str | None:
    """Why the engine cannot be the oracle here (a skip reason), or None. It takes both the command and the
    provider our hashes load (one Debian package; SHEP_GOST_PROVIDER=off hides it)."""
    if not system_tools.present("openssl"):
        return system_tools.reason("openssl")
    if digests.backend()[0] != "openssl-gost":
        return system_tools.reason("gost-engine")
    probe = subprocess.run(["openssl", "dgst", "-engine", "gost", "-md_gost12_512"], input=b"", capture_output=True)
    return None if probe.returncode == 0 else system_tools.reason("gost-engine")


_MISSING = _openssl_gost_missing()
OPENSSL_GOST = _MISSING is None
needs_openssl_gost = pytest.mark.skipif(not OPENSSL_GOST, reason=_MISSING or "")
# ГОСТ 34.311-95 (the GOST 2004 generation's hash) has no pure-Python path here.
needs_gost34311 = pytest.mark.skipif(not digests.available(digests.GOST34311),
                                     reason=system_tools.reason("gost-engine"))
# The three profiles as test parameters, GOST 2004 only where its hash is available.
PROFILE_PARAMS = [pytest.param(name, marks=needs_gost34311) if name == "gost2004" else name
                  for name in ("gost2004", "gost2015", "gost2015-256")]


def _pem(label: str, der: bytes) -> bytes:
    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode(), 64))
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n".encode()


def _russian_algorithm(profile: Profile) -> core.Sequence:
    key_oid, digest_oid, _ = _RUSSIAN[profile.name]
    parameters = [core.ObjectIdentifier(profile.curve.ru_oid)]
    if digest_oid:
        parameters.append(core.ObjectIdentifier(digest_oid))
    return core.Sequence(value=None, contents=core.ObjectIdentifier(key_oid).dump()
                         + core.Sequence(contents=b"".join(p.dump() for p in parameters)).dump())


def _sequence(*items: bytes) -> bytes:
    return core.Sequence(contents=b"".join(items)).dump()


class OpenSSL:
    """Sign and verify with `openssl dgst -engine gost`, keys written under their Russian OIDs."""

    def __init__(self, workdir: Path):
        self.dir = workdir

    def _run(self, *args: str, data: bytes) -> subprocess.CompletedProcess:
        return subprocess.run(["openssl", *args], input=data, capture_output=True, timeout=30)

    def private_key_file(self, key: GostPrivateKey) -> Path:
        scalar = int(key._d).to_bytes(key.profile.curve.size, "little")
        der = _sequence(core.Integer(0).dump(), _russian_algorithm(key.profile).dump(),
                        core.OctetString(core.OctetString(scalar).dump()).dump())
        path = self.dir / f"{key.profile.name}-{id(key)}.key.pem"
        path.write_bytes(_pem("PRIVATE KEY", der))
        return path

    def public_key_file(self, key: GostPublicKey) -> Path:
        der = _sequence(_russian_algorithm(key.profile).dump(),
                        core.BitString.load(core.OctetBitString(core.OctetString(key.point_bytes()).dump()).dump())
                        .dump())
        path = self.dir / f"{key.profile.name}-{key.x % 10**12}.pub.pem"
        path.write_bytes(_pem("PUBLIC KEY", der))
        return path

    def digest(self, profile: Profile, data: bytes) -> bytes:
        done = self._run("dgst", "-engine", "gost", f"-{_RUSSIAN[profile.name][2]}", "-binary", data=data)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def sign(self, key: GostPrivateKey, data: bytes) -> bytes:
        done = self._run("dgst", "-engine", "gost", f"-{_RUSSIAN[key.profile.name][2]}", "-sign",
                         str(self.private_key_file(key)), data=data)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def verifies(self, key: GostPublicKey, signature: bytes, data: bytes) -> bool:
        path = self.dir / "signature.bin"
        path.write_bytes(signature)
        done = self._run("dgst", "-engine", "gost", f"-{_RUSSIAN[key.profile.name][2]}", "-verify",
                         str(self.public_key_file(key)), "-signature", str(path), data=data)
        assert done.returncode in (0, 1), done.stderr
        return done.returncode == 0 and b"Verified OK" in done.stdout


class GostCrypto:
    """gostcrypto for the two GOST R 34.10-2012 profiles."""

    _CURVES = {"gost2015": ("id-tc26-gost-3410-12-512-paramSetA", 512),
               "gost2015-256": ("id-tc26-gost-3410-2012-256-paramSetA", 256)}

    def _signer(self, profile: Profile):
        from gostcrypto import gostsignature

        name, bits = self._CURVES[profile.name]
        mode = gostsignature.MODE_512 if bits == 512 else gostsignature.MODE_256
        return gostsignature.new(mode, gostsignature.CURVES_R_1323565_1_024_2019[name])

    @staticmethod
    def _digest(profile: Profile, data: bytes) -> bytes:
        import gostcrypto

        return gostcrypto.gosthash.new(profile.hash, data=data).digest()

    def sign(self, key: GostPrivateKey, data: bytes) -> bytes:
        size = key.profile.curve.size
        r_s = self._signer(key.profile).sign(int(key._d).to_bytes(size, "big"), self._digest(key.profile, data)[::-1])
        return bytes(r_s[size:] + r_s[:size])

    def verifies(self, key: GostPublicKey, signature: bytes, data: bytes) -> bool:
        size = key.profile.curve.size
        public = int(key.x).to_bytes(size, "big") + int(key.y).to_bytes(size, "big")
        return self._signer(key.profile).verify(public, self._digest(key.profile, data)[::-1],
                                                signature[size:] + signature[:size])


WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DS = "http://www.w3.org/2000/09/xmldsig#"
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
X509V3 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
BASE64 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"


def openssl_signed_envelope(raw: bytes, openssl: OpenSSL, key: GostPrivateKey, cert_der: bytes, *,
                            signature_uri: str | None = None, digest_uri: str | None = None,
                            tamper=None) -> bytes:
    """`raw` signed the way ShEP clients do (contract §8: KeyIdentifier, one exc-c14n Reference to the Body),
    laid out here from a template and signed by the OpenSSL GOST engine: neither gateway.security.wss nor
    gateway.security.gost takes part. `tamper(signature_value) -> bytes` alters the value before it is written."""
    from lxml import etree

    profile = key.profile
    root = etree.fromstring(raw)
    body = root.find(f"{{{SOAP}}}Body")
    body.set(f"{{{WSU}}}Id", "id-oracle-body")
    header = root.find(f"{{{SOAP}}}Header")
    if header is None:
        header = etree.Element(f"{{{SOAP}}}Header")
        root.insert(0, header)
    body_c14n = etree.tostring(body, method="c14n", exclusive=True, with_comments=False)
    digest = base64.b64encode(openssl.digest(profile, body_c14n)).decode()
    token = base64.b64encode(cert_der).decode()
    security = etree.fromstring(f"""<wsse:Security xmlns:wsse="{WSSE}" xmlns:soap="{SOAP}" soap:mustUnderstand="1">
<ds:Signature xmlns:ds="{DS}"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="{EXC_C14N}"/>
<ds:SignatureMethod Algorithm="{signature_uri or profile.signature_uri}"/>
<ds:Reference URI="#id-oracle-body"><ds:Transforms><ds:Transform Algorithm="{EXC_C14N}"/></ds:Transforms>
<ds:DigestMethod Algorithm="{digest_uri or profile.digest_uri}"/><ds:DigestValue>{digest}</ds:DigestValue>
</ds:Reference></ds:SignedInfo><ds:SignatureValue/><ds:KeyInfo><wsse:SecurityTokenReference>
<wsse:KeyIdentifier ValueType="{X509V3}" EncodingType="{BASE64}">{token}</wsse:KeyIdentifier>
</wsse:SecurityTokenReference></ds:KeyInfo></ds:Signature></wsse:Security>""")
    header.append(security)
    signed_info = security.find(f".//{{{DS}}}SignedInfo")
    value = openssl.sign(key, etree.tostring(signed_info, method="c14n", exclusive=True, with_comments=False))
    security.find(f".//{{{DS}}}SignatureValue").text = base64.b64encode(tamper(value) if tamper else value).decode()
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def openssl_verifies_envelope(raw: bytes, openssl: OpenSSL, signer: GostPublicKey) -> bool:
    """The envelope's WS-Security signature checked with the OpenSSL GOST engine: each Reference's digest
    over the exc-c14n of the element it names, then SignatureValue over the exc-c14n SignedInfo."""
    from lxml import etree

    root = etree.fromstring(raw)
    signed_info = root.find(f"{{{SOAP}}}Header/{{{WSSE}}}Security/{{{DS}}}Signature/{{{DS}}}SignedInfo")
    for reference in signed_info.iterfind(f"{{{DS}}}Reference"):
        target = root.xpath("//*[@*[local-name()='Id']=$id]", id=reference.get("URI")[1:])
        assert len(target) == 1
        inclusive = reference.find(f".//{{{EXC_C14N}}}InclusiveNamespaces")
        prefixes = None if inclusive is None else inclusive.get("PrefixList").split()
        c14n = etree.tostring(target[0], method="c14n", exclusive=True, with_comments=False,
                              inclusive_ns_prefixes=prefixes)
        if base64.b64decode(reference.findtext(f"{{{DS}}}DigestValue")) != openssl.digest(signer.profile, c14n):
            return False
    value = base64.b64decode(signed_info.getparent().findtext(f"{{{DS}}}SignatureValue"))
    return openssl.verifies(signer, value, etree.tostring(signed_info, method="c14n", exclusive=True,
                                                          with_comments=False))
