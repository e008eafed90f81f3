"""Loading and validation of the gateway's TOML configuration (shep.toml).

The whole file is validated at load time so that a bad setting stops the
server at startup with a file:line pointer, never mid-request.
"""

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path


from gateway import configvalues as read
from gateway import tomlpos
from gateway.operators import ROLES, Operator
from gateway.registry import (
    ANY_SENDER,
    SYNC,
    Participant,
    Service,
    ServiceRegistry,
)


class ConfigError(Exception):
    """An invalid configuration; str() reads ``<file>:<line>: <key>: <message>``.

    Raised for the first problem of a file; `problems` holds every one found (this one first).
    """

    def __init__(self, message: str, *, file: Path | None = None,
                 line: int | None = None, key: str | None = None):
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.key = key
        self.problems: tuple[ConfigError, ...] = (self,)

    def __str__(self) -> str:
        location = ":".join(str(part) for part in (self.file, self.line) if part is not None)
        return ": ".join(part for part in (location, self.key, self.message) if part)


# The families of the test PKI's certificates (simulators/pki/ca.py ALGORITHMS).
SIGNING_ALGS = ("rsa", "ec", "gost2015", "gost2004")


@dataclass(frozen=True)
class GatewaySettings:
    host: str = "127.0.0.1"
    port: int = 8080
    # Resolved against the config file's folder; None: $SHEP_STATE_DIR or the per-user default (gateway/statedir.py).
    state_dir: Path | None = None
    # None: SQLite inside state_dir.
    store_url: str | None = None
    max_body_bytes: int = 10 * 1024 * 1024
    # A request's headers must be complete this long after their first byte; an idle connection closes after
    # http_idle_timeout_seconds; one client address may hold at most max_connections_per_client at once.
    http_header_timeout_seconds: float = 10.0
    http_idle_timeout_seconds: float = 60.0
    max_connections_per_client: int = 128
    # XML nesting depth limit.
    max_depth: int = 128
    replay_window_seconds: int = 86400
    # messageDate tolerance, both into the past and the future.
    clock_skew_seconds: int = 300
    default_timeout_seconds: float = 30.0
    # Cap on a provider's answer.
    max_response_bytes: int = 10 * 1024 * 1024
    journal_store_bytes: bool = True
    # How often the gateway signs a checkpoint of the journal into <state_dir>/journal-checkpoints.jsonl.
    journal_checkpoint_seconds: float = 5.0
    # An RFC 3161 time-stamp authority for each checkpoint (docs/security.md): an http(s) URL, "pki" for the
    # built-in test PKI's TSA (asked in-process), None for none.
    checkpoint_tsa_url: str | None = None
    # Dedicated pool for XML and crypto work.
    worker_threads: int = 1
    # Wrong passwords of one participant before it is locked out, and for how long (as the portal's).
    lockout_attempts: int = 5
    lockout_minutes: float = 15.0
    # Wrong passwords (participants' and operators') from one client address, whoever they were for, before
    # the address may try no new password, and for how long.
    address_lockout_attempts: int = 20
    address_lockout_minutes: float = 15.0
    # A wrong password or a locked-out sender is answered this late (holding no thread): one guess a second
    # per connection at most.
    lockout_delay_seconds: float = 1.0
    # Signatures (docs/signatures.md). Empty / None: the test PKI in state_dir/pki.
    trust_anchors: tuple[Path, ...] = ()
    # Folders of certificates X509IssuerSerial key info may name.
    certificate_dirs: tuple[Path, ...] = ()
    signing_key: Path | None = None
    signing_cert: Path | None = None
    signing_key_info: str = "issuerserial"
    # Which of the test PKI's gateway certificates signs, when signing_key/signing_cert are not set.
    signing_alg: str = "rsa"
    revocation: str = "ocsp,crl"
    revocation_cache_seconds: int = 300
    revocation_timeout_seconds: float = 5.0
    allow_sha1: bool = False
    # AsyncChannel (docs/async.md).
    async_visibility_seconds: int = 60
    async_default_amount: int = 10
    async_max_amount: int = 100
    async_max_attempts: int = 10
    async_max_age_seconds: int = 86400
    async_retry_base_seconds: float = 1.0
    async_retry_max_seconds: float = 300.0
    async_push_interval_seconds: float = 0.5
    async_push_timeout_seconds: float = 10.0
    async_push_batch: int = 20
    # /metrics answers only operators (as /api/journal does) when true.
    metrics_require_auth: bool = False


@dataclass(frozen=True)
class Settings:
    source: Path
    gateway: GatewaySettings
    registry: ServiceRegistry
    # The parties' own tables ([portal], [clinic], [gbdfl]), checked by them (`endpoint_error`).
    endpoints: dict = field(default_factory=dict)
    # [operators.<name>]: who may use the operator API (gateway/operators.py).
    operators: dict[str, Operator] = field(default_factory=dict)


# Tables the configuration file carries for the parties in endpoints/, not for the gateway.
ENDPOINT_TABLES = ("portal", "clinic", "gbdfl")


def endpoint_error(settings: Settings, error: ValueError) -> ConfigError:
    """An endpoint's complaint about its table ("portal.calendar.timezone: …", "portal.x must be …") with
    file and line: the message starts with the dotted key it is about."""
    match = _ENDPOINT_ERROR.match(str(error))
    key, message = match.groups() if match else (None, str(error))
    if key is None:
        return ConfigError(message, file=settings.source)
    path = tuple(key.split("."))
    try:
        line = tomlpos.locate(settings.source.read_text(encoding="utf-8"), path)
    except OSError:
        line = None
    return ConfigError(message, file=settings.source, line=line, key=key)


_ENDPOINT_ERROR = re.compile(r"([A-Za-z_][\w.-]*)(?::\s*|\s+)(.+)", re.S)


def default_config_path() -> Path:
    return Path(__file__).parent / "defaults" / "shep.toml"


def load_config(path: Path) -> Settings:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"cannot read config: {error.strerror}", file=path) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[:error.start].count(b"\n") + 1
        raise ConfigError("not valid UTF-8", file=path, line=line) from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        message, line = tomlpos.syntax_error(error, text)
        raise ConfigError(message, file=path, line=line) from None
    source = path.absolute()
    problems: list[read.Problem] = []
    gateway, registry, operators = _read_document(document, source.parent, problems)
    if problems:
        errors = tuple(ConfigError(problem.message, file=path, line=tomlpos.locate(text, problem.path),
                                   key=tomlpos.dotted(problem.path)) for problem in problems)
        errors[0].problems = errors
        raise errors[0]
    endpoints = {name: read.table(document[name], (name,)) for name in ENDPOINT_TABLES if name in document}
    return Settings(source=source, gateway=gateway, registry=registry, endpoints=endpoints, operators=operators)


_GATEWAY_FIELDS = {
    "host": read.non_empty_text,
    "port": read.port,
    "state_dir": read.directory,
    "store_url": read.non_empty_text,
    "max_body_bytes": read.positive_int,
    "http_header_timeout_seconds": read.positive_number,
    "http_idle_timeout_seconds": read.positive_number,
    "max_connections_per_client": read.positive_int,
    "max_depth": read.positive_int,
    "replay_window_seconds": read.positive_int,
    "clock_skew_seconds": read.positive_int,
    "default_timeout_seconds": read.positive_number,
    "max_response_bytes": read.positive_int,
    "journal_store_bytes": read.boolean,
    "journal_checkpoint_seconds": read.positive_number,
    "checkpoint_tsa_url": read.tsa_url,
    "worker_threads": read.positive_int,
    "lockout_attempts": read.positive_int,
    "lockout_minutes": read.positive_number,
    "address_lockout_attempts": read.positive_int,
    "address_lockout_minutes": read.positive_number,
    "lockout_delay_seconds": read.positive_number,
    "trust_anchors": read.existing_files,
    "certificate_dirs": read.existing_dirs,
    "signing_key": read.existing_file,
    "signing_cert": read.existing_file,
    "signing_key_info": read.one_of("issuerserial", "bst", "keyidentifier"),
    "signing_alg": read.one_of(*SIGNING_ALGS),
    "revocation": read.one_of("ocsp,crl", "ocsp", "crl", "none"),
    "revocation_cache_seconds": read.positive_int,
    "revocation_timeout_seconds": read.positive_number,
    "allow_sha1": read.boolean,
    "async_visibility_seconds": read.positive_int,
    "async_default_amount": read.positive_int,
    "async_max_amount": read.positive_int,
    "async_max_attempts": read.positive_int,
    "async_max_age_seconds": read.positive_int,
    "async_retry_base_seconds": read.positive_number,
    "async_retry_max_seconds": read.positive_number,
    "async_push_interval_seconds": read.positive_number,
    "async_push_timeout_seconds": read.positive_number,
    "async_push_batch": read.positive_int,
    "metrics_require_auth": read.boolean,
}
# Readers of file paths, resolved against the config file's directory.
_GATEWAY_FILES = ("state_dir", "trust_anchors", "certificate_dirs", "signing_key", "signing_cert")
_PARTICIPANT_KEYS = ("password_hash", "endpoint", "description", "bin", "certificate", "async_endpoint",
                     "push_secret")
_OPERATOR_KEYS = ("role", "password_hash", "token_hash", "description")
_SERVICE_KEYS = ("provider", "channel", "payload_schema", "timeout_seconds",
                 "allowed_senders", "routes", "strict", "description",
                 "require_transport_signature", "require_payload_signature")


def _read_document(document: dict, base_dir: Path, problems: list[read.Problem]
                   ) -> tuple[GatewaySettings, ServiceRegistry, dict[str, Operator]]:
    """Every table and key, each problem recorded in `problems`: a file is corrected in one go, not one error a run."""
    top = read.Collector(problems)
    top.known_keys(document, (), ("gateway", "participants", "services", "operators", *ENDPOINT_TABLES))
    gateway_table = top.read(read.table, document.get("gateway", {}), ("gateway",)) or {}
    top.known_keys(gateway_table, ("gateway",), _GATEWAY_FIELDS)
    values = {}
    for key, value in gateway_table.items():
        if key in _GATEWAY_FIELDS:
            extra = (base_dir,) if key in _GATEWAY_FILES else ()
            converted = top.read(_GATEWAY_FIELDS[key], value, ("gateway", key), *extra)
            if converted is not None:
                values[key] = converted
    gateway = GatewaySettings(**values)
    for present, missing in (("signing_key", "signing_cert"), ("signing_cert", "signing_key")):
        if present in gateway_table and missing not in gateway_table:
            top.complain(("gateway", missing), "signing_key and signing_cert are set together")

    def each(table_name: str, build) -> dict:
        """name → what `build` made of its table, or None when it had a problem."""
        built = {}
        for name, table in (top.read(read.table, document.get(table_name, {}), (table_name,)) or {}).items():
            try:
                built[name] = build(name, table, (table_name, name), read.Collector(problems))
            except read.Skipped:
                built[name] = None
        return built

    participants = each("participants", lambda name, table, path, keys: _participant(name, table, path, base_dir,
                                                                                     keys))
    services = each("services", lambda name, table, path, keys: _service(name, table, path, participants, gateway,
                                                                         base_dir, keys))
    operators = each("operators", _operator)
    return (gateway, ServiceRegistry([p for p in participants.values() if p is not None],
                                     [s for s in services.values() if s is not None]),
            {name: operator for name, operator in operators.items() if operator is not None})


def _operator(name: str, value, path, keys: read.Collector) -> Operator:
    # The name is the user-id of HTTP Basic, which cannot hold a colon.
    if not isinstance(name, str) or not name or ":" in name or any(char.isspace() for char in name):
        keys.complain(path, "an operator's name must be non-empty, without whitespace or ':'")
    table = keys.read(read.table, value, path)
    keys.done()
    keys.known_keys(table, path, _OPERATOR_KEYS)
    keys.optional(table, "description", path, read.text, "")
    role = keys.required(table, "role", path, read.one_of(*ROLES))
    password_hash = keys.optional(table, "password_hash", path, read.password_hash, None)
    token_hash = keys.optional(table, "token_hash", path, read.password_hash, None)
    if "password_hash" not in table and "token_hash" not in table:
        keys.complain(path, "needs password_hash (HTTP Basic) or token_hash (Bearer), or both")
    keys.done()
    return Operator(name=name, role=role, password_hash=password_hash, token_hash=token_hash)


def _participant(participant_id: str, value, path, base_dir: Path, keys: read.Collector) -> Participant:
    keys.read(read.identifier, participant_id, path)
    table = keys.read(read.table, value, path)
    keys.done()
    keys.known_keys(table, path, _PARTICIPANT_KEYS)
    participant = Participant(
        id=participant_id,
        password_hash=keys.optional(table, "password_hash", path, read.password_hash, None),
        endpoint=keys.optional(table, "endpoint", path, read.endpoint, None),
        description=keys.optional(table, "description", path, read.text, ""),
        bin=keys.optional(table, "bin", path, read.bin_number, None),
        certificate=keys.optional(table, "certificate", path,
                                  lambda value, key_path: read.existing_file(value, key_path, base_dir), None),
        async_endpoint=keys.optional(table, "async_endpoint", path, read.endpoint, None),
        push_secret=keys.optional(table, "push_secret", path, read.non_empty_text, None),
    )
    keys.done()
    return participant


def _service(service_id: str, value, path, participants: dict[str, Participant | None],
             gateway: GatewaySettings, base_dir: Path, keys: read.Collector) -> Service:
    """`participants` maps one with problems to None: they are reported already, naming it adds none here."""
    keys.read(read.identifier, service_id, path)
    table = keys.read(read.table, value, path)
    keys.done()
    keys.known_keys(table, path, _SERVICE_KEYS)

    provider_id = keys.required(table, "provider", path, read.non_empty_text)
    channel = keys.optional(table, "channel", path, read.channel, SYNC)
    if provider_id is not None:
        if provider_id not in participants:
            keys.complain(path + ("provider",), f"unknown participant {provider_id!r}")
        elif (provider := participants[provider_id]) is not None and channel == SYNC and provider.endpoint is None:
            keys.complain(path + ("provider",),
                          f"participant {provider_id!r} has no endpoint, which a sync service needs")

    senders = keys.required(table, "allowed_senders", path, read.identifiers) or frozenset()
    for sender in sorted(senders - {ANY_SENDER}):
        if sender not in participants:
            keys.complain(path + ("allowed_senders",), f"unknown participant {sender!r}")
        elif participants[sender] is not None and participants[sender].password_hash is None:
            keys.complain(path + ("allowed_senders",),
                          f"participant {sender!r} has no password_hash and cannot send")

    def schema(value, key_path):
        return read.payload_schema(value, key_path, base_dir)

    service = Service(
        id=service_id,
        provider=provider_id,
        channel=channel,
        payload_schema=keys.optional(table, "payload_schema", path, schema, None),
        timeout_seconds=keys.optional(table, "timeout_seconds", path, read.positive_number,
                                      gateway.default_timeout_seconds),
        allowed_senders=senders,
        routes=keys.optional(table, "routes", path, read.identifiers, frozenset()),
        strict=keys.optional(table, "strict", path, read.boolean, False),
        description=keys.optional(table, "description", path, read.text, ""),
        require_transport_signature=keys.optional(table, "require_transport_signature", path, read.boolean, False),
        require_payload_signature=keys.optional(table, "require_payload_signature", path, read.boolean, False),
    )
    keys.done()
    return service
