import dataclasses
import hashlib
import textwrap
from pathlib import Path

import pytest

from gateway import passwords
from gateway.config import (
    ConfigError,
    GatewaySettings,
    default_config_path,
    load_config,
)
from gateway.passwords import (
    PasswordVerifier,
    hash_password,
    is_valid_hash,
    verify_password,
)
from gateway.registry import Participant, Service, ServiceRegistry

# Few iterations: the format is what matters here, not the cost.
HASH = hash_password("secret", iterations=1000)

VALID_XSD = """\
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:t">
  <xs:element name="Ping" type="xs:string"/>
</xs:schema>
"""


def write_config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "shep.toml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def config_error(tmp_path: Path, body: str) -> ConfigError:
    path = write_config(tmp_path, body)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.file == path
    return caught.value


def line_of(body: str, marker: str) -> int:
    lines = textwrap.dedent(body).splitlines()
    matches = [number for number, line in enumerate(lines, start=1) if marker in line]
    assert len(matches) == 1, f"marker {marker!r} must occur exactly once"
    return matches[0]


PARTIES = f"""
[participants.consumer]
password_hash = "{HASH}"

[participants.provider]
endpoint = "http://127.0.0.1:9000/soap"
"""


# --- the shipped default ----------------------------------------------------

def test_default_config_loads_with_demo_echo():
    settings = load_config(default_config_path())

    assert settings.source == default_config_path().absolute()
    # The shipped file spells out the defaults, and time-stamps the checkpoints at the built-in TSA (off by
    # default: a configuration without the key asks no TSA).
    assert settings.gateway == GatewaySettings(checkpoint_tsa_url="pki")
    echo = settings.registry.service("DEMO_Echo")
    assert echo.provider == "demo-provider"
    assert echo.channel == "sync"
    assert echo.timeout_seconds == 10.0
    assert echo.allowed_senders == frozenset({"demo-consumer"})
    assert echo.routes == frozenset()
    assert echo.strict is False
    assert echo.payload_schema == default_config_path().parent.resolve() / "demo-echo.xsd"
    assert settings.registry.participant("demo-provider").endpoint == "/demo/echo"
    assert settings.registry.participant("demo-provider").password_hash is None


def test_default_demo_passwords_and_access():
    registry = load_config(default_config_path()).registry
    consumer = registry.participant("demo-consumer")
    other = registry.participant("demo-other")

    assert verify_password("demo-consumer-pass", consumer.password_hash)
    assert verify_password("demo-other-pass", other.password_hash)
    assert not verify_password("demo-other-pass", consumer.password_hash)
    echo = registry.service("DEMO_Echo")
    assert echo.allows("demo-consumer")
    assert not echo.allows("demo-other")


def test_demo_echo_schema_accepts_unqualified_text_only():
    from lxml import etree

    from gateway.contract import load_schema

    echo = load_config(default_config_path()).registry.service("DEMO_Echo")
    schema = load_schema(echo.payload_schema)

    def valid(root: str, inner: str) -> bool:
        xml = f'<e:{root} xmlns:e="urn:shep-emulator:demo:echo">{inner}</e:{root}>'
        return schema.validate(etree.fromstring(xml))

    assert valid("EchoRequest", "<text>hi</text>")
    assert valid("EchoResponse", "<text/>")
    assert not valid("EchoRequest", "<e:text>hi</e:text>")
    assert not valid("EchoRequest", f"<text>{'x' * 1001}</text>")


# --- valid configs ------------------------------------------------------------

def test_every_gateway_field_is_configurable(tmp_path):
    for name in ("root.pem", "gw.key", "gw.pem"):
        (tmp_path / name).write_text("placeholder")
    (tmp_path / "certs").mkdir()
    path = write_config(tmp_path, """
        [gateway]
        host = "0.0.0.0"
        port = 0
        state_dir = "/tmp/shep-state"
        store_url = "postgresql+psycopg://shep@localhost/shep"
        max_body_bytes = 1
        max_depth = 2
        replay_window_seconds = 3
        clock_skew_seconds = 4
        default_timeout_seconds = 5
        max_response_bytes = 6
        journal_store_bytes = false
        journal_checkpoint_seconds = 22
        checkpoint_tsa_url = "http://tsa.test/tsp"
        http_header_timeout_seconds = 23
        http_idle_timeout_seconds = 24
        max_connections_per_client = 25
        worker_threads = 7
        lockout_attempts = 26
        lockout_minutes = 27
        lockout_delay_seconds = 28
        address_lockout_attempts = 29
        address_lockout_minutes = 30
        trust_anchors = ["root.pem"]
        certificate_dirs = ["certs"]
        signing_key = "gw.key"
        signing_cert = "gw.pem"
        signing_key_info = "bst"
        signing_alg = "gost2015"
        revocation = "crl"
        revocation_cache_seconds = 8
        revocation_timeout_seconds = 9
        allow_sha1 = true
        async_visibility_seconds = 11
        async_default_amount = 12
        async_max_amount = 13
        async_max_attempts = 14
        async_max_age_seconds = 15
        async_retry_base_seconds = 16
        async_retry_max_seconds = 17
        async_push_interval_seconds = 18
        async_push_timeout_seconds = 19
        async_push_batch = 21
        metrics_require_auth = true
    """)
    gateway = load_config(path).gateway

    assert gateway == GatewaySettings(
        host="0.0.0.0", port=0, state_dir=Path("/tmp/shep-state"),
        store_url="postgresql+psycopg://shep@localhost/shep", max_body_bytes=1, max_depth=2,
        replay_window_seconds=3, clock_skew_seconds=4, default_timeout_seconds=5.0,
        max_response_bytes=6, journal_store_bytes=False, journal_checkpoint_seconds=22.0, worker_threads=7,
        checkpoint_tsa_url="http://tsa.test/tsp",
        http_header_timeout_seconds=23.0, http_idle_timeout_seconds=24.0, max_connections_per_client=25,
        lockout_attempts=26, lockout_minutes=27.0, lockout_delay_seconds=28.0, address_lockout_attempts=29,
        address_lockout_minutes=30.0,
        trust_anchors=(tmp_path / "root.pem",), certificate_dirs=(tmp_path / "certs",),
        signing_key=tmp_path / "gw.key", signing_cert=tmp_path / "gw.pem", signing_key_info="bst",
        signing_alg="gost2015", revocation="crl", revocation_cache_seconds=8, revocation_timeout_seconds=9.0,
        allow_sha1=True, async_visibility_seconds=11, async_default_amount=12, async_max_amount=13,
        async_max_attempts=14, async_max_age_seconds=15, async_retry_base_seconds=16.0, async_retry_max_seconds=17.0,
        async_push_interval_seconds=18.0, async_push_timeout_seconds=19.0, async_push_batch=21,
        metrics_require_auth=True,
    )
    assert isinstance(gateway.default_timeout_seconds, float)
    unchanged = [field.name for field in dataclasses.fields(GatewaySettings)
                 if getattr(gateway, field.name) == field.default]
    assert unchanged == []


def test_empty_file_gives_defaults(tmp_path):
    settings = load_config(write_config(tmp_path, ""))

    assert settings.gateway == GatewaySettings()
    assert dict(settings.registry.services) == {}


def test_service_defaults_and_relative_schema(tmp_path, monkeypatch):
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "ping.xsd").write_text(VALID_XSD)
    path = write_config(tmp_path, PARTIES + """
        [gateway]
        default_timeout_seconds = 12.5

        [services.PING]
        provider = "provider"
        payload_schema = "schemas/ping.xsd"
        allowed_senders = ["*"]

        [services.ASYNC_PING]
        provider = "consumer"
        channel = "async"
        timeout_seconds = 3
        allowed_senders = []
        routes = ["R1", "R2"]
        strict = true
        description = "queued"
    """)
    # Schema paths are relative to the config file, not the working directory.
    monkeypatch.chdir(Path("/"))
    registry = load_config(path).registry

    ping = registry.service("PING")
    assert ping.channel == "sync"
    assert ping.timeout_seconds == 12.5
    assert ping.payload_schema == (tmp_path / "schemas" / "ping.xsd").resolve()
    assert ping.routes == frozenset()
    assert ping.strict is False
    queued = registry.service("ASYNC_PING")
    assert queued.channel == "async"
    assert queued.timeout_seconds == 3.0
    assert queued.routes == frozenset({"R1", "R2"})
    assert queued.strict is True
    assert queued.allowed_senders == frozenset()
    assert queued.payload_schema is None


# --- validation errors: key and line ----------------------------------------

INVALID = [
    pytest.param("""
        [gateway]
        port = 8080
        prot = 1
    """, "gateway.prot", "prot =", id="unknown-gateway-key"),
    pytest.param("""
        title = "x"
    """, "title", "title =", id="unknown-top-level-key"),
    pytest.param("""
        [gateway]
        checkpoint_tsa_url = "tsa.example/tsp"
    """, "gateway.checkpoint_tsa_url", "checkpoint_tsa_url", id="tsa-url-not-http"),
    pytest.param("""
        [participants.p]
        endpoint = "/x"
        passwrod_hash = "x"
    """, "participants.p.passwrod_hash", "passwrod_hash", id="unknown-participant-key"),
    pytest.param(PARTIES + """
        [services.S]
        provider = "provider"
        allowed_senders = []
        timeout = 5
    """, "services.S.timeout", "timeout =", id="unknown-service-key"),
    pytest.param("""
        [gateway]
        port = true
    """, "gateway.port", "port =", id="bool-is-not-int"),
    pytest.param("""
        [gateway]
        port = 70000
    """, "gateway.port", "port =", id="port-too-large"),
    pytest.param("""
        [gateway]
        port = -1
    """, "gateway.port", "port =", id="port-negative"),
    pytest.param("""
        [gateway]
        max_body_bytes = 0
    """, "gateway.max_body_bytes", "max_body_bytes", id="zero-limit"),
    pytest.param("""
        [gateway]
        clock_skew_seconds = -5
    """, "gateway.clock_skew_seconds", "clock_skew", id="negative-limit"),
    pytest.param("""
        [gateway]
        worker_threads = 1.5
    """, "gateway.worker_threads", "worker_threads", id="float-is-not-int"),
    pytest.param("""
        [gateway]
        lockout_attempts = 0
    """, "gateway.lockout_attempts", "lockout_attempts", id="no-attempt-allowed"),
    pytest.param("""
        [gateway]
        lockout_minutes = 0
    """, "gateway.lockout_minutes", "lockout_minutes", id="lockout-of-no-time"),
    pytest.param("""
        [gateway]
        default_timeout_seconds = "10"
    """, "gateway.default_timeout_seconds", "default_timeout", id="string-is-not-number"),
    pytest.param("""
        [gateway]
        default_timeout_seconds = inf
    """, "gateway.default_timeout_seconds", "default_timeout", id="infinite-timeout"),
    pytest.param("""
        [gateway]
        journal_store_bytes = 1
    """, "gateway.journal_store_bytes", "journal_store_bytes", id="int-is-not-bool"),
    pytest.param("""
        [gateway]
        state_dir = ""
    """, "gateway.state_dir", "state_dir", id="empty-state-dir"),
    pytest.param("""
        [gateway]
        certificate_dirs = "certs"
    """, "gateway.certificate_dirs", "certificate_dirs", id="certificate-dirs-not-a-list"),
    pytest.param("""
        [gateway]
        certificate_dirs = ["no-such-folder"]
    """, "gateway.certificate_dirs", "certificate_dirs", id="certificate-dir-missing"),
    pytest.param("""
        gateway = 5
    """, "gateway", "gateway =", id="gateway-not-a-table"),
    pytest.param("""
        [participants]
        p = "x"
    """, "participants.p", "p = ", id="participant-not-a-table"),
    pytest.param("""
        [participants.p]
        endpoint = "echo"
    """, "participants.p.endpoint", "endpoint", id="endpoint-neither-url-nor-path"),
    pytest.param("""
        [participants."demo consumer"]
        endpoint = "/x"
    """, 'participants."demo consumer"', "[participants.", id="participant-id-whitespace"),
    pytest.param(PARTIES + """
        [services.""]
        provider = "provider"
        allowed_senders = []
    """, 'services.""', '[services.""]', id="service-id-empty"),
    pytest.param(PARTIES + """
        [services.S]
        provider = "nobody"
        allowed_senders = []
    """, "services.S.provider", '"nobody"', id="unknown-provider"),
    pytest.param(PARTIES + """
        [services.S]
        provider = "consumer"
        allowed_senders = []
    """, "services.S.provider", 'provider = "consumer"', id="sync-provider-without-endpoint"),
    pytest.param(PARTIES + """
        [services.S]
        allowed_senders = []
    """, "services.S.provider", "[services.S]", id="missing-provider"),
    pytest.param(PARTIES + """
        [services.S]
        provider = "provider"
    """, "services.S.allowed_senders", "[services.S]", id="missing-allowed-senders"),
    pytest.param(PARTIES + """
        [services.S]
        provider = "provider"
        allowed_senders = ["consumer", "stranger"]
    """, "services.S.allowed_senders", "allowed_senders", id="unknown-sender"),
    pytest.param(PARTIES + """
        [services.S]
        provider = "provider"
        allowed_senders = ["provider"]
    """, "services.S.allowed_senders", "allowed_senders", id="receive-only-sender"),
    pytest.param(PARTIES + """
        [services.S]
        provider = "provider"
        allowed_senders = "consumer"
    """, "services.S.allowed_senders", "allowed_senders", id="senders-not-a-list"),
    pytest.param(PARTIES + """
        [services.S]
        provider = "provider"
        channel = "batch"
        allowed_senders = []
    """, "services.S.channel", "channel", id="unknown-channel"),
    pytest.param(PARTIES + """
        [services.S]
        provider = "provider"
        allowed_senders = []
        routes = ["R1", ""]
    """, "services.S.routes", "routes", id="empty-route"),
    pytest.param(PARTIES + """
        [services.S]
        provider = "provider"
        allowed_senders = []
        strict = "yes"
    """, "services.S.strict", "strict", id="strict-not-bool"),
    pytest.param(PARTIES + """
        [services.S]
        provider = "provider"
        allowed_senders = []
        timeout_seconds = 0
    """, "services.S.timeout_seconds", "timeout_seconds", id="zero-timeout"),
    pytest.param(PARTIES + """
        [services.S]
        provider = "provider"
        allowed_senders = []
        payload_schema = "missing.xsd"
    """, "services.S.payload_schema", "payload_schema", id="schema-missing"),
]


@pytest.mark.parametrize(("body", "key", "marker"), INVALID)
def test_invalid_config_reports_key_and_line(tmp_path, body, key, marker):
    error = config_error(tmp_path, body)

    assert error.key == key
    assert error.line == line_of(body, marker)
    assert str(error) == f"{error.file}:{error.line}: {key}: {error.message}"


def test_error_string_format(tmp_path):
    body = PARTIES + """
        [services.X]
        provider = "provider"
        allowed_senders = []
        timeout_seconds = -1
    """
    error = config_error(tmp_path, body)

    line = line_of(body, "timeout_seconds")
    assert str(error) == (
        f"{tmp_path / 'shep.toml'}:{line}: services.X.timeout_seconds: must be a positive number"
    )


def test_error_string_omits_missing_parts():
    assert str(ConfigError("boom")) == "boom"
    assert str(ConfigError("boom", file=Path("a.toml"))) == "a.toml: boom"
    assert str(ConfigError("boom", file=Path("a.toml"), key="gateway")) == "a.toml: gateway: boom"


def test_bad_password_hash_points_to_hash_password_command(tmp_path):
    body = """
        [participants.p]
        description = "x"
        password_hash = "demo-consumer-pass"
    """
    error = config_error(tmp_path, body)

    assert error.key == "participants.p.password_hash"
    assert error.line == line_of(body, "password_hash")
    assert "shep hash-password" in error.message


@pytest.mark.parametrize("content", [
    pytest.param("this is not xml", id="not-xml"),
    pytest.param("<root/>", id="xml-but-not-a-schema"),
    pytest.param('<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">'
                 '<xs:element name="A" type="xs:nosuchtype"/></xs:schema>', id="broken-schema"),
])
def test_invalid_payload_schema(tmp_path, content):
    (tmp_path / "bad.xsd").write_text(content)
    body = PARTIES + """
        [services.S]
        provider = "provider"
        payload_schema = "bad.xsd"
        allowed_senders = []
    """
    error = config_error(tmp_path, body)

    assert error.key == "services.S.payload_schema"
    assert error.line == line_of(body, "payload_schema")
    assert "not a valid XML Schema" in error.message


def test_quoted_table_name_with_dot(tmp_path):
    body = PARTIES + """
        [services.OTHER]
        provider = "provider"
        allowed_senders = []
        timeout_seconds = 1

        [ services . "X.Y" ]
        provider = "provider"
        allowed_senders = []
        timeout_seconds = -1  # the broken one
    """
    error = config_error(tmp_path, body)

    assert error.key == 'services."X.Y".timeout_seconds'
    assert error.line == line_of(body, "the broken one")


def test_dotted_keys_and_inline_tables(tmp_path):
    body = PARTIES + """
        [services]
        S.provider = "provider"
        S.allowed_senders = []
        T = { provider = "provider", allowed_senders = [], timeout_seconds = 0 }
    """
    error = config_error(tmp_path, body)

    assert error.key == "services.T.timeout_seconds"
    assert error.line == line_of(body, "T = {")


def test_multiline_string_does_not_confuse_the_locator(tmp_path):
    body = '''
        [participants.provider]
        endpoint = "/p"
        description = """
        [services.S]
        timeout_seconds = 5
        """

        [services.S]
        provider = "provider"
        allowed_senders = []
        timeout_seconds = "soon"
    '''
    error = config_error(tmp_path, body)

    assert error.key == "services.S.timeout_seconds"
    assert error.line == line_of(body, '"soon"')


def test_toml_syntax_error_line(tmp_path):
    body = """
        [gateway]
        port = 8080
        host = 127.0.0.1
    """
    error = config_error(tmp_path, body)

    assert error.line == line_of(body, "host =")
    assert error.key is None
    assert error.message.startswith("invalid TOML: ")
    assert "column" in error.message


def test_toml_duplicate_key_line(tmp_path):
    body = """
        [gateway]
        port = 1
        port = 2
    """
    error = config_error(tmp_path, body)

    assert error.line == line_of(body, "port = 2")


def test_toml_error_at_end_of_file(tmp_path):
    error = config_error(tmp_path, "[gateway]\nport =")

    assert error.line == 2


def test_invalid_utf8(tmp_path):
    path = tmp_path / "shep.toml"
    path.write_bytes(b'[gateway]\nhost = "\xff"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert caught.value.line == 2


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "absent.toml")

    assert caught.value.file == tmp_path / "absent.toml"
    assert caught.value.line is None


# --- passwords ----------------------------------------------------------------

def test_hash_format():
    scheme, iterations, salt, digest = hash_password("pw").split("$")

    assert scheme == "pbkdf2-sha256"
    assert iterations == "200000"
    assert len(salt) == 24 and len(digest) == 44  # base64 of 16 and 32 bytes
    assert hash_password("pw") != hash_password("pw")  # random salt


def test_verify_password():
    assert verify_password("secret", HASH)
    assert not verify_password("Secret", HASH)
    assert not verify_password("", HASH)


@pytest.mark.parametrize("encoded", [
    "",
    "secret",
    HASH.replace("pbkdf2-sha256", "pbkdf2-sha1"),
    HASH + "$extra",
    HASH.replace("$1000$", "$0$"),
    HASH.replace("$1000$", "$-1$"),
    HASH.replace("$1000$", "$²$"),
    HASH.replace("$1000$", "$99999999999$"),
    HASH[:-4],
    HASH[:-1] + "!",
    "pbkdf2-sha256$1000$$" + HASH.rsplit("$", 1)[1],
    None,
    42,
])
def test_malformed_hash_is_rejected_without_raising(encoded):
    assert not is_valid_hash(encoded)
    assert not verify_password("secret", encoded)
    assert not PasswordVerifier().verify("secret", encoded)


def test_unencodable_plain_text_is_rejected():
    assert not verify_password("\ud800", HASH)
    assert not PasswordVerifier().verify("\ud800", HASH)
    assert not verify_password(None, HASH)


@pytest.fixture
def pbkdf2_calls(monkeypatch):
    calls = []
    real = hashlib.pbkdf2_hmac

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(passwords.hashlib, "pbkdf2_hmac", counting)
    return calls


def test_verifier_caches_successes(pbkdf2_calls):
    verifier = PasswordVerifier()

    assert verifier.verify("secret", HASH)
    assert verifier.verify("secret", HASH)
    assert len(pbkdf2_calls) == 1


def test_verifier_does_not_cache_failures(pbkdf2_calls):
    verifier = PasswordVerifier()
    verifier.verify("secret", HASH)

    assert not verifier.verify("wrong", HASH)
    assert not verifier.verify("wrong", HASH)
    assert len(pbkdf2_calls) == 3


def test_verifier_cache_is_bounded_lru(pbkdf2_calls):
    hashes = {name: hash_password(name, iterations=1000) for name in "abc"}
    pbkdf2_calls.clear()
    verifier = PasswordVerifier(max_entries=2)

    verifier.verify("a", hashes["a"])
    verifier.verify("b", hashes["b"])
    verifier.verify("a", hashes["a"])  # a is now the most recent
    verifier.verify("c", hashes["c"])  # evicts b
    assert len(pbkdf2_calls) == 3
    verifier.verify("a", hashes["a"])
    assert len(pbkdf2_calls) == 3
    verifier.verify("b", hashes["b"])
    assert len(pbkdf2_calls) == 4


def test_verifier_keeps_no_plain_text():
    verifier = PasswordVerifier()
    verifier.verify("secret", HASH)

    plain_digest = hashlib.sha256(b"secret").digest()
    for encoded, token in verifier._verified:
        assert encoded == HASH
        assert b"secret" not in token and token != plain_digest


# --- registry -----------------------------------------------------------------

def make_service(senders) -> Service:
    return Service(id="S", provider="p", channel="sync", payload_schema=None, timeout_seconds=1.0,
                   allowed_senders=frozenset(senders), routes=frozenset(), strict=False)


def test_service_allows_listed_senders_only():
    service = make_service(["a", "b"])

    assert service.allows("a")
    assert service.allows("b")
    assert not service.allows("c")
    assert not service.allows("*")


def test_service_allows_anyone_with_star():
    assert make_service(["*"]).allows("anyone")
    assert not make_service([]).allows("anyone")


def test_registry_lookup_and_read_only_mappings():
    participant = Participant(id="p", password_hash=None, endpoint="/p")
    registry = ServiceRegistry([participant], [make_service(["*"])])

    assert registry.participant("p") is participant
    assert registry.participant("q") is None
    assert registry.service("S").provider == "p"
    assert registry.service("T") is None
    with pytest.raises(TypeError):
        registry.services["T"] = make_service([])


def test_registry_rejects_duplicate_ids():
    participant = Participant(id="p", password_hash=None, endpoint=None)
    with pytest.raises(ValueError, match="duplicate participant"):
        ServiceRegistry([participant, participant], [])


def test_signing_key_without_certificate_is_an_error(tmp_path):
    (tmp_path / "gw.key").write_text("placeholder")
    error = config_error(tmp_path, """
        [gateway]
        signing_key = "gw.key"
    """)
    assert error.key == "gateway.signing_cert"


def test_participant_bin_and_pinned_certificate(tmp_path):
    (tmp_path / "clinic.pem").write_text("placeholder")
    settings = load_config(write_config(tmp_path, """
        [participants.clinic]
        bin = "230540004989"
        certificate = "clinic.pem"
    """))
    clinic = settings.registry.participant("clinic")
    assert clinic.bin == "230540004989" and clinic.certificate == tmp_path / "clinic.pem"
    error = config_error(tmp_path, """
        [participants.clinic]
        bin = "BIN230540004989"
    """)
    assert error.key == "participants.clinic.bin" and error.line == 3


# --- [operators.<name>] --------------------------------------------------------------------------------

def test_operators_are_read_with_their_role_and_hashes(tmp_path):
    settings = load_config(write_config(tmp_path, f"""
        [operators.alice]
        role = "auditor"
        password_hash = "{HASH}"
        description = "reads the journal"

        [operators.ci]
        role = "operator"
        token_hash = "{HASH}"
    """))
    assert settings.operators["alice"].role == "auditor" and settings.operators["alice"].token_hash is None
    assert settings.operators["ci"].may("auditor") and not settings.operators["alice"].may("operator")
    assert load_config(write_config(tmp_path, "")).operators == {}


@pytest.mark.parametrize("table, key, message", [
    ('[operators.a]\npassword_hash = "{HASH}"', "operators.a.role", "required key is missing"),
    ('[operators.a]\nrole = "admin"\npassword_hash = "{HASH}"', "operators.a.role", "one of: auditor, operator"),
    ('[operators.a]\nrole = "auditor"', "operators.a", "needs password_hash (HTTP Basic) or token_hash"),
    ('[operators.a]\nrole = "auditor"\ntoken_hash = "plain-token"', "operators.a.token_hash", "shep hash-password"),
    ('[operators.a]\nrole = "auditor"\npassword = "x"', "operators.a.password", "unknown key"),
    ('[operators."a:b"]\nrole = "auditor"\npassword_hash = "{HASH}"', '"a:b"', "without whitespace or ':'"),
    ("[gateway]\nmetrics_require_auth = 1", "gateway.metrics_require_auth", "must be true or false"),
])
def test_bad_operator_settings_name_the_key(tmp_path, table, key, message):
    error = config_error(tmp_path, table.replace("{HASH}", HASH))
    assert key in error.key and message in error.message
    assert error.line is not None


def test_participant_push_secret(tmp_path):
    settings = load_config(write_config(tmp_path, """
        [participants.clinic]
        async_endpoint = "https://clinic.example/async"
        push_secret = "long-random-string"
    """))
    assert settings.registry.participant("clinic").push_secret == "long-random-string"
    error = config_error(tmp_path, """
        [participants.clinic]
        push_secret = ""
    """)
    assert error.key == "participants.clinic.push_secret"


# --- paths relative to the file, package: paths, every problem at once ------------------------------------

def test_paths_are_relative_to_the_file_not_the_working_folder(tmp_path, monkeypatch):
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "ping.xsd").write_text(VALID_XSD, "utf-8")
    monkeypatch.chdir(tmp_path)  # elsewhere than the file
    path = write_config(conf, PARTIES + """
        [gateway]
        state_dir = "state"

        [services.PING]
        provider = "provider"
        payload_schema = "ping.xsd"
        allowed_senders = ["consumer"]
    """)
    settings = load_config(Path("conf") / path.name)
    assert settings.gateway.state_dir == conf / "state"
    assert settings.registry.service("PING").payload_schema == conf / "ping.xsd"


def test_package_paths_name_the_installed_files_wherever_the_file_is(tmp_path):
    path = write_config(tmp_path, PARTIES + """
        [services.GBDFL]
        provider = "provider"
        payload_schema = "package:xsd/services/gbdfl/gbdfl.xsd"
        allowed_senders = ["consumer"]
    """)
    schema = load_config(path).registry.service("GBDFL").payload_schema
    assert schema == (Path(__file__).resolve().parent.parent / "xsd" / "services" / "gbdfl" / "gbdfl.xsd")
    missing = config_error(tmp_path, PARTIES + """
        [services.GBDFL]
        provider = "provider"
        payload_schema = "package:xsd/no-such.xsd"
        allowed_senders = ["consumer"]
    """)
    assert missing.message.startswith("file not found: ") and missing.message.endswith("/xsd/no-such.xsd")


def test_every_problem_is_reported_once_not_its_consequences(tmp_path):
    body = f"""
        [gateway]
        port = -1
        prot = 8080

        [participants.consumer]
        password_hash = "plain"

        [participants.provider]
        endpoint = "http://127.0.0.1:9000/soap"

        [services.A]
        provider = "provider"
        allowed_senders = ["consumer"]
        timeout_seconds = 0

        [services.B]
        provider = "nobody"
        allowed_senders = ["consumer"]

        [operators.x]
        role = "root"
        token_hash = "{HASH}"
    """
    error = config_error(tmp_path, body)
    found = [(problem.line, problem.key) for problem in error.problems]
    assert found == [
        (line_of(body, "prot ="), "gateway.prot"),
        (line_of(body, "port = -1"), "gateway.port"),
        (line_of(body, 'password_hash = "plain"'), "participants.consumer.password_hash"),
        # services.A names the broken consumer: no second complaint about it, only its own timeout
        (line_of(body, "timeout_seconds = 0"), "services.A.timeout_seconds"),
        (line_of(body, '"nobody"'), "services.B.provider"),
        (line_of(body, 'role = "root"'), "operators.x.role"),
    ], [str(problem) for problem in error.problems]
    assert error.problems[0] is error
