"""XML Security Library (libxmlsec1, Aleksey Sanin's C library) as the independent signature oracle: it shares no
code with the gateway (lxml + cryptography) nor with signxml.

Two front ends to the library:
- the `xmlsec` wheel (python-xmlsec, a test dependency), which bundles its own libxmlsec1 (1.3) and libxml2, so a
  fresh machine with only python3 has it. Its libxml2 must be the one lxml bundles (setup.cfg pins both);
- the `xmlsec1` command (Debian package xmlsec1, libxmlsec1 1.2) where it is on PATH, as CI has it. Then it signs,
  and every verdict is asked of both, which must agree (cheap: the wheel runs in-process).

Both are asked the same thing the same way: verify the first ds:Signature of a document with one certificate's key
(`--pubkey-cert-pem`) or through a trusted CA (`--trusted-pem`), Ids registered as `--id-attr` does; or sign a
template with a key and its certificate (`--privkey-pem`). The closing summary of `make test` names the one used.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from lxml import etree

from tests import system_tools

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
_REFERENCES = re.compile(rb"SignedInfo References \(ok/all\): (\d+)/(\d+)")
_PARSER = etree.XMLParser(no_network=True)
# (attribute local name, element as {namespace}name): an Id attribute of that name, in any namespace, on every such
# element is an Id a Reference may point at (`xmlsec1 --id-attr:NAME NAMESPACE:ELEMENT`).
IdAttr = tuple[str, str]


@dataclass(frozen=True)
class Verdict:
    ok: bool
    references: int  # SignedInfo References that verified
    detail: str  # the oracle's own words on a refusal (xmlsec1's stderr, or the wheel's error)


@cache
def _command_name() -> str:
    version = subprocess.run(["xmlsec1", "--version"], capture_output=True, text=True, timeout=30).stdout
    return f"xmlsec1 command ({version.strip()})"


@cache
def _wheel_name() -> str:
    import xmlsec

    return f"python-xmlsec {xmlsec.__version__} (libxmlsec1 {'.'.join(map(str, xmlsec.get_libxmlsec_version()))})"


def verify(document: bytes, *, cert: x509.Certificate | None = None, trusted: x509.Certificate | None = None,
           ids: Sequence[IdAttr] = ()) -> Verdict:
    """The first ds:Signature of `document`, verified with `cert`'s key or a certificate chaining to `trusted`."""
    assert (cert is None) != (trusted is None), "one of cert and trusted"
    system_tools.used("XML signatures", _wheel_name())
    wheel = _wheel_verify(document, cert, trusted, ids)
    if not shutil.which("xmlsec1"):
        return wheel
    system_tools.used("XML signatures", _command_name())
    command = _cli_verify(document, cert, trusted, ids)
    assert (command.ok, command.ok and command.references) == (wheel.ok, wheel.ok and wheel.references), (
        f"the xmlsec1 command and the python-xmlsec wheel disagree: {command} / {wheel}")
    return command


def sign(template: bytes, key, cert: x509.Certificate, *, ids: Sequence[IdAttr] = ()) -> bytes:
    """The document with its first (empty) ds:Signature template filled in by the library: digests, value, and the
    KeyInfo children the template asks for (an empty X509Data or X509IssuerSerial gets the certificate's)."""
    if shutil.which("xmlsec1"):
        system_tools.used("XML signatures", _command_name())
        return _cli_sign(template, key, cert, ids)
    system_tools.used("XML signatures", _wheel_name())
    return _wheel_sign(template, key, cert, ids)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.PEM)


def _key_pem(key) -> bytes:
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())


def _id_options(ids: Sequence[IdAttr]) -> list[str]:
    options = []
    for attr, element in ids:
        namespace, local = element[1:].split("}")
        options += [f"--id-attr:{attr}", f"{namespace}:{local}"]
    return options


def _cli_verify(document, cert, trusted, ids) -> Verdict:
    with tempfile.TemporaryDirectory(prefix="xmlsec1-") as work:
        args = _id_options(ids)
        for option, pem in (("--pubkey-cert-pem", cert), ("--trusted-pem", trusted)):
            if pem is not None:
                path = Path(work, f"{option[2:]}.pem")
                path.write_bytes(_pem(pem))
                args += [option, str(path)]
        Path(work, "document.xml").write_bytes(document)
        result = subprocess.run(["xmlsec1", "--verify", *args, str(Path(work, "document.xml"))], capture_output=True,
                                timeout=60)
    counts = _REFERENCES.search(result.stderr)
    return Verdict(result.returncode == 0, int(counts.group(1)) if counts else 0,
                   result.stderr.decode("utf-8", "replace"))


def _cli_sign(template, key, cert, ids) -> bytes:
    with tempfile.TemporaryDirectory(prefix="xmlsec1-") as work:
        key_path, cert_path, path = Path(work, "key.pem"), Path(work, "cert.pem"), Path(work, "template.xml")
        key_path.write_bytes(_key_pem(key))
        cert_path.write_bytes(_pem(cert))
        path.write_bytes(template)
        result = subprocess.run(["xmlsec1", "--sign", *_id_options(ids), "--privkey-pem", f"{key_path},{cert_path}",
                                 str(path)], capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode("utf-8", "replace")
    return result.stdout


def _register_ids(context, root: etree._Element, ids: Sequence[IdAttr]) -> None:
    for attr, element in ids:
        for node in root.iter(element):
            for qname in node.attrib:
                if etree.QName(qname).localname == attr:
                    context.register_id(node, attr, etree.QName(qname).namespace)


def _signature(root: etree._Element) -> etree._Element | None:
    return next(root.iter(f"{{{DS_NS}}}Signature"), None)


def _wheel_verify(document, cert, trusted, ids) -> Verdict:
    import xmlsec

    try:
        root = etree.fromstring(document, _PARSER)
    except etree.XMLSyntaxError as exc:
        return Verdict(False, 0, f"not XML: {exc}")
    node = _signature(root)
    if node is None:
        return Verdict(False, 0, "no ds:Signature")
    if cert is not None:
        # The key set on the context: libxmlsec1 1.3 stops at a KeyInfo child it does not know (a WS-Security
        # SecurityTokenReference) where the 1.2 command goes on to the keys it was given.
        context = xmlsec.SignatureContext()
        context.key = xmlsec.Key.from_memory(_pem(cert), xmlsec.KeyFormat.CERT_PEM)
    else:
        manager = xmlsec.KeysManager()
        manager.load_cert_from_memory(_pem(trusted), xmlsec.KeyFormat.CERT_PEM, xmlsec.KeyDataType.TRUSTED)
        context = xmlsec.SignatureContext(manager)
    try:
        _register_ids(context, root, ids)  # a duplicate Id fails here, as the command refuses it
        context.verify(node)
    except xmlsec.Error as exc:
        return Verdict(False, 0, str(exc))
    # A verified signature is one whose every SignedInfo Reference verified: the library fails it otherwise.
    return Verdict(True, len(node.findall(f"{{{DS_NS}}}SignedInfo/{{{DS_NS}}}Reference")), "")


def _wheel_sign(template, key, cert, ids) -> bytes:
    import xmlsec

    root = etree.fromstring(template, _PARSER)
    context = xmlsec.SignatureContext()
    signing_key = xmlsec.Key.from_memory(_key_pem(key), xmlsec.KeyFormat.PEM)
    signing_key.load_cert_from_memory(_pem(cert), xmlsec.KeyFormat.CERT_PEM)
    context.key = signing_key
    _register_ids(context, root, ids)
    context.sign(_signature(root))
    return etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8")
