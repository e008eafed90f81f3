"""GOST signatures and hashes (gateway.security.gost): the standards' vectors, and two independent
implementations (the OpenSSL GOST engine, gostcrypto) agreeing with ours in both directions."""
from __future__ import annotations

import base64
import os
import subprocess
from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from gateway.security.gost import digests, ec
from gateway.security.gost import x509 as gost_x509
from gateway.security.gost.curves import Curve
from gateway.security.gost.keys import (GOST2015, GOST2015_256, PROFILES, GostPrivateKey, GostPublicKey,
                                        KeyFormatError)
from tests.gost_oracles import (OPENSSL_GOST, PROFILE_PARAMS, GostCrypto, OpenSSL, needs_gost34311,
                                needs_openssl_gost)

MESSAGE = "Тіркеу туралы өтініш — заявление о прикреплении".encode() * 40


@pytest.fixture
def openssl(tmp_path) -> OpenSSL:
    return OpenSSL(tmp_path)


# --- the standards' examples ------------------------------------------------------------------------

# GOST R 34.10-2012, example 1 (also RFC 7091 §7.1): its 256-bit test curve, key, e and k.
EXAMPLE_CURVE = Curve(
    "example-1", p=57896044618658097711785492504343953926634992332820282019728792003956564821041, a=7,
    b=43308876546767276905765904595650931995942111794451039583252968842033849580414,
    q=57896044618658097711785492504343953927082934583725450622380973592137631069619, x=2,
    y=4018974056539037503335449422937059775635739389905545080690979365213431566280, kz_oid="", ru_oid="")


def test_signature_example_of_the_standard():
    d = 55441196065363246126355624130324183196576709222340016572108097750006097525544
    e = 20798893674476452017134061561508270130637142515379653289952617252661468872421
    k = 53854137677348463731403841147996619241504003434302020712960838528893196233395
    public = ec.public_point(d, EXAMPLE_CURVE)
    assert public == (57520216126176808443631405023338071176630104906313632182896741342206604859403,
                      17614944419213781543809391949654080031942662045363639260709847859438286763994)
    digest = e.to_bytes(32, "little")  # e is the digest read little-endian
    r, s = ec.sign_digest(d, digest, EXAMPLE_CURVE, k=k)
    assert r == 29700980915817952874371204983938256990422752107994319651632687982059210933395
    assert s == 574973400270084654178925310019147038455227042649098563933718999175515839552
    assert ec.verify_digest(public, digest, r, s, EXAMPLE_CURVE)
    assert not ec.verify_digest(public, digest, s, r, EXAMPLE_CURVE)
    assert not ec.verify_digest(public, (e + 1).to_bytes(32, "little"), r, s, EXAMPLE_CURVE)


def _hex(text: str) -> int:
    return int("".join(text.split()), 16)


# GOST R 34.10-2012, example 2: its 512-bit test curve.
EXAMPLE_CURVE_512 = Curve(
    "example-2", a=7,
    p=_hex("4531ACD1FE0023C7550D267B6B2FEE80922B14B2FFB90F04D4EB7C09B5D2D15D"
           "F1D852741AF4704A0458047E80E4546D35B8336FAC224DD81664BBF528BE6373"),
    b=_hex("1CFF0806A31116DA29D8CFA54E57EB748BC5F377E49400FDD788B649ECA1AC43"
           "61834013B2AD7322480A89CA58E0CF74BC9E540C2ADD6897FAD0A3084F302ADC"),
    q=_hex("4531ACD1FE0023C7550D267B6B2FEE80922B14B2FFB90F04D4EB7C09B5D2D15D"
           "A82F2D7ECB1DBAC719905C5EECC423F1D86E25EDBE23C595D644AAF187E6E6DF"),
    x=_hex("24D19CC64572EE30F396BF6EBBFD7A6C5213B3B3D7057CC825F91093A68CD762"
           "FD60611262CD838DC6B60AA7EEE804E28BC849977FAC33B4B530F1B120248A9A"),
    y=_hex("2BB312A43BD2CE6E0D020613C857ACDDCFBF061E91E5F2C3F32447C259F39B2C"
           "83AB156D77F1496BF7EB3351E1EE4E43DC1A18B91B24640B6DBB92CB1ADD371E"), kz_oid="", ru_oid="")


def test_512_bit_signature_example_of_the_standard():
    d = _hex("BA6048AADAE241BA40936D47756D7C93091A0E8514669700EE7508E508B10207"
             "2E8123B2200A0563322DAD2827E2714A2636B7BFD18AADFC62967821FA18DD4")
    e = _hex("3754F3CFACC9E0615C4F4A7C4D8DAB531B09B6F9C170C533A71D147035B0C591"
             "7184EE536593F4414339976C647C5D5A407ADEDB1D560C4FC6777D2972075B8C")
    k = _hex("0359E7F4B1410FEACC570456C6801496946312120B39D019D455986E364F3658"
             "86748ED7A44B3E794434006011842286212273A6D14CF70EA3AF71BB1AE679F1")
    public = ec.public_point(d, EXAMPLE_CURVE_512)
    assert public == (_hex("115DC5BC96760C7B48598D8AB9E740D4C4A85A65BE33C1815B5C320C854621DD"
                           "5A515856D13314AF69BC5B924C8B4DDFF75C45415C1D9DD9DD33612CD530EFE1"),
                      _hex("37C7C90CD40B0F5621DC3AC1B751CFA0E2634FA0503B3D52639F5D7FB72AFD61"
                           "EA199441D943FFE7F0C70A2759A3CDB84C114E1F9339FDF27F35ECA93677BEEC"))
    digest = e.to_bytes(64, "little")
    r, s = ec.sign_digest(d, digest, EXAMPLE_CURVE_512, k=k)
    assert r == _hex("2F86FA60A081091A23DD795E1E3C689EE512A3C82EE0DCC2643C78EEA8FCACD3"
                     "5492558486B20F1C9EC197C90699850260C93BCBCD9C5C3317E19344E173AE36")
    assert s == _hex("1081B394696FFE8E6585E7A9362D26B6325F56778AADBC081C0BFBE933D52FF5"
                     "823CE288E8C4F362526080DF7F70CE406A6EEB1F56919CB92A9853BDE73E5B4A")
    assert ec.verify_digest(public, digest, r, s, EXAMPLE_CURVE_512)
    assert not ec.verify_digest(public, digest, r, s ^ 1, EXAMPLE_CURVE_512)


# GOST R 34.11-2012 example 1 (RFC 6986 §10.1), as implementations write the digest octets.
M1 = b"012345678901234567890123456789012345678901234567890123456789012"
STREEBOG_512_M1 = ("1b54d01a4af5b9d5cc3d86d68d285462b19abc2475222f35c085122be4ba1ffa"
                   "00ad30f8767b3a82384c6574f024c311e2a481332b08ef7f41797891c1646f48")
STREEBOG_256_M1 = "9d151eefd8590b89daa6ba6cb74af9275dd051026bb149a452fd84e5e57b5500"


def test_streebog_examples_of_the_standard():
    assert digests.digest(digests.STREEBOG_512, M1).hex() == STREEBOG_512_M1
    assert digests.digest(digests.STREEBOG_256, M1).hex() == STREEBOG_256_M1


@needs_gost34311
def test_gost34311_cryptopro_example():
    # GOST R 34.11-94 with the CryptoPro S-boxes (RFC 4357 §11.2), "abc".
    assert digests.digest(digests.GOST34311, b"abc").hex() == \
        "b285056dbf18d7392d7677369524dd14747459ed8143997e163b2986f92fd42c"


@pytest.mark.parametrize("length", [0, 1, 63, 64, 65, 4095, 100_000])
@pytest.mark.parametrize("name", [digests.STREEBOG_256, digests.STREEBOG_512])
def test_streebog_backends_agree(name, length):
    data = os.urandom(length)
    assert digests.digest(name, data) == digests._python(name, data)  # the C path against gostcrypto's


@pytest.mark.parametrize("name", [digests.STREEBOG_256, digests.STREEBOG_512])
def test_the_python_path_answers_bytes(name):
    """gostcrypto answers a bytearray, which asn1crypto refuses: a GOST time-stamp or export failed on a machine
    without the OpenSSL GOST provider (found by .ci/bare-run.py)."""
    assert type(digests._python(name, b"abc")) is bytes


def test_curves_are_sound():
    for profile in PROFILES.values():
        curve = profile.curve
        assert ec.on_curve((curve.x, curve.y), curve)
        assert ec.multiply_base(curve.q, curve) is None  # q·P is the point at infinity
        assert ec.multiply(curve.q, (curve.x, curve.y), curve) is None
        k = ec.new_private(curve)
        assert ec.affine(ec.multiply_base(k, curve), curve) == ec.affine(ec.multiply(k, (curve.x, curve.y), curve),
                                                                         curve)


# --- against the OpenSSL GOST engine and gostcrypto ----------------------------------------------

@needs_openssl_gost
@pytest.mark.parametrize("name", PROFILE_PARAMS)
def test_openssl_agrees_both_ways(openssl, name):
    profile = PROFILES[name]
    key = GostPrivateKey.generate(profile)
    ours = key.sign(MESSAGE)
    assert openssl.verifies(key.public_key(), ours, MESSAGE)
    assert not openssl.verifies(key.public_key(), ours, MESSAGE + b"!")
    theirs = openssl.sign(key, MESSAGE)
    assert key.public_key().verify(theirs, MESSAGE)
    assert openssl.digest(profile, MESSAGE) == digests.digest(profile.hash, MESSAGE)


@pytest.mark.parametrize("profile", [GOST2015, GOST2015_256], ids=lambda p: p.name)
def test_gostcrypto_agrees_both_ways(profile):
    key = GostPrivateKey.generate(profile)
    oracle = GostCrypto()
    assert oracle.verifies(key.public_key(), key.sign(MESSAGE), MESSAGE)
    assert key.public_key().verify(oracle.sign(key, MESSAGE), MESSAGE)


def _flip(value: bytes, at: int) -> bytes:
    return value[:at] + bytes([value[at] ^ 1]) + value[at + 1:]


@pytest.mark.parametrize("name", PROFILE_PARAMS)
def test_refusals(openssl, name):
    """A bit flip, r‖s for s‖r, another curve's key, another message: ours refuses, and so does OpenSSL."""
    profile = PROFILES[name]
    key = GostPrivateKey.generate(profile)
    signature = key.sign(MESSAGE)
    half = len(signature) // 2
    other = GostPrivateKey.generate(GOST2015 if profile is not GOST2015 else GOST2015_256)
    bad = {"bit flip in s": _flip(signature, 3), "bit flip in r": _flip(signature, half + 3),
           "r‖s": signature[half:] + signature[:half], "truncated": signature[:-1],
           "zero": bytes(len(signature))}
    for case, value in bad.items():
        assert not key.public_key().verify(value, MESSAGE), case
        if OPENSSL_GOST and case != "truncated":
            assert not openssl.verifies(key.public_key(), value, MESSAGE), case
    assert not key.public_key().verify(other.sign(MESSAGE), MESSAGE)
    assert not key.public_key().verify(signature, MESSAGE[:-1])


# --- keys ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(PROFILES))
def test_key_encodings_round_trip(name):
    key = GostPrivateKey.generate(PROFILES[name])
    assert GostPrivateKey.from_pkcs8(key.pkcs8_der()) == key
    assert GostPublicKey.from_spki(key.public_key().spki_der()) == key.public_key()


@needs_openssl_gost
def test_reads_a_key_the_openssl_engine_made(tmp_path):
    pem = subprocess.run(["openssl", "genpkey", "-engine", "gost", "-algorithm", "gost2012_512", "-pkeyopt",
                          "paramset:A"], capture_output=True, check=True).stdout
    key = GostPrivateKey.from_pkcs8(base64.b64decode(b"".join(pem.split(b"-----")[2].split())))
    assert key.profile is GOST2015
    text = subprocess.run(["openssl", "pkey", "-engine", "gost", "-noout", "-text"], input=pem, capture_output=True,
                          check=True).stdout.decode()
    x = text.split("X:")[1].split()[0]
    assert int(x, 16) == key.public_key().x


def test_bad_keys_are_refused():
    key = GostPrivateKey.generate(GOST2015).public_key()
    off_curve = GostPublicKey(key.profile, key.x, key.y + 1)
    with pytest.raises(KeyFormatError, match="not a point"):
        GostPublicKey.from_spki(off_curve.spki_der())
    with pytest.raises(KeyFormatError):
        GostPublicKey.from_spki(b"\x30\x03\x02\x01\x00")


# --- X.509 structures ----------------------------------------------------------------------------

def _gost_certificate(issuer: GostPrivateKey, subject: GostPrivateKey, name: str) -> x509.Certificate:
    placeholder = gost_x509.placeholder_key()
    now = datetime.now(timezone.utc)
    built = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
             .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ТЕСТ CA")]))
             .public_key(placeholder.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now).not_valid_after(now + timedelta(days=1)).sign(placeholder, hashes.SHA256()))
    der = gost_x509.with_gost(built.public_bytes(serialization.Encoding.DER), "certificate", issuer,
                              subject.public_key())
    return x509.load_der_x509_certificate(der)


def test_certificate_crl_and_ocsp_signed_with_gost(openssl):
    ca_key, leaf_key = GostPrivateKey.generate(GOST2015), GostPrivateKey.generate(GOST2015)
    ca = _gost_certificate(ca_key, ca_key, "ТЕСТ CA")
    leaf = _gost_certificate(ca_key, leaf_key, "ТЕСТОВ ТЕСТ")
    assert gost_x509.public_key(leaf) == leaf_key.public_key()
    assert gost_x509.issued_by(leaf, ca) and gost_x509.issued_by(ca, ca)
    assert not gost_x509.issued_by(ca, leaf)
    assert leaf.signature_algorithm_oid.dotted_string == GOST2015.signature_oid
    if OPENSSL_GOST:  # the certificate signature is what the engine computes over the TBS
        assert openssl.verifies(ca_key.public_key(), leaf.signature, leaf.tbs_certificate_bytes)

    placeholder = gost_x509.placeholder_key()
    now = datetime.now(timezone.utc)
    crl = (x509.CertificateRevocationListBuilder().issuer_name(ca.subject).last_update(now)
           .next_update(now + timedelta(days=1)).sign(placeholder, hashes.SHA256()))
    crl = x509.load_der_x509_crl(gost_x509.with_gost(crl.public_bytes(serialization.Encoding.DER), "crl", ca_key))
    assert gost_x509.signed_by(crl, ca_key.public_key()) and not gost_x509.signed_by(crl, leaf_key.public_key())

    request = ocsp.OCSPRequestBuilder().add_certificate(leaf, ca, hashes.SHA1()).build()
    stand_in = gost_x509.placeholder_certificate(ca.subject, placeholder)
    response = (ocsp.OCSPResponseBuilder()
                .add_response_by_hash(request.issuer_name_hash, request.issuer_key_hash, leaf.serial_number,
                                      hashes.SHA1(), ocsp.OCSPCertStatus.GOOD, now, now + timedelta(days=1), None,
                                      None)
                .responder_id(ocsp.OCSPResponderEncoding.NAME, stand_in).certificates([stand_in])
                .sign(placeholder, hashes.SHA256()))
    response = ocsp.load_der_ocsp_response(
        gost_x509.ocsp_with_gost(response.public_bytes(serialization.Encoding.DER), ca_key, [ca]))
    assert response.certificates == [ca] and response.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert gost_x509.signed_by(response, ca_key.public_key())
    assert not gost_x509.signed_by(response, leaf_key.public_key())


def test_without_the_openssl_provider(monkeypatch):
    """The pure-Python path: Streebog still hashes (gostcrypto), ГОСТ 34.311-95 is refused with its reason."""
    from gateway.security import algorithms as alg
    from gateway.security.algorithms import AlgorithmPolicy, SignatureError

    monkeypatch.setattr(digests, "backend", lambda: ("python", digests._python))
    assert digests.digest(digests.STREEBOG_512, M1).hex() == STREEBOG_512_M1
    AlgorithmPolicy().check(alg.GOST2015_512_SIGNATURE, alg.GOST2015_512_DIGEST)
    with pytest.raises(SignatureError) as caught:
        AlgorithmPolicy().check(alg.GOST2004_SIGNATURE, alg.GOST2004_DIGEST)
    assert caught.value.name == "SIGNATURE_ALGORITHM_UNSUPPORTED" and "libengine-gost-openssl" in caught.value.detail
    with pytest.raises(digests.DigestUnavailable):
        digests.digest(digests.GOST34311, b"abc")
