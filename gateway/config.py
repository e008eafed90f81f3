"""Loading and validation of the gateway's TOML configuration (shep.toml).

The whole file is validated at load time so that a bad setting stops the
server at startup with a file:line pointer, never mid-request.
"""

import json
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from lxml import etree

from gateway.contract import load_schema
from gateway.operators import ROLES, Operator
from gateway.passwords import is_valid_hash
from gateway.registry import (
    ANY_SENDER,
    CHANNELS,
    SYNC,
    Participant,
    Service,
    ServiceRegistry,
)


class ConfigError(Exception):
    """An invalid configuration; str() reads ``<file>:<line>: <key>: <message>``."""

    def __init__(self, message: str, *, file: Path | None = None,
                 line: int | None = None, key: str | None = None):
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.key = key

    def __str__(self) -> str:
        location = ":".join(str(part) for part in (self.file, self.line) if part is not None)
        return ": ".join(part for part in (location, self.key, self.message) if part)


# The families of the test PKI's certificates (simulators/pki/ca.py ALGORITHMS).
SIGNING_ALGS = ("rsa", "ec", "gost2015", "gost2004")


@dataclass(frozen=True)
class GatewaySettings:
    host: str = "127.0.0.1"
    port: int = 8080
    # Kept as written; relative paths are resolved by the CLI.
    state_dir: Path = Path("var")
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
        line = _locate(settings.source.read_text(encoding="utf-8"), path)
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
        raise _syntax_error(error, path, text) from None
    source = path.absolute()
    try:
        gateway, registry, operators = _read_document(document, source.parent)
    except _Problem as problem:
        raise ConfigError(problem.message, file=path, line=_locate(text, problem.path),
                          key=_dotted(problem.path)) from None
    endpoints = {name: _table(document[name], (name,)) for name in ENDPOINT_TABLES if name in document}
    return Settings(source=source, gateway=gateway, registry=registry, endpoints=endpoints, operators=operators)


class _Problem(Exception):
    """A validation failure at a key path; load_config adds file and line."""

    def __init__(self, path: tuple[str, ...], message: str):
        super().__init__(message)
        self.path = path
        self.message = message


# Value readers: each returns the converted value or raises _Problem at `path`.

def _text(value, path):
    if not isinstance(value, str):
        raise _Problem(path, "must be a string")
    return value


def _non_empty_text(value, path):
    if not isinstance(value, str) or not value:
        raise _Problem(path, "must be a non-empty string")
    return value


def _positive_int(value, path):
    # bool is an int subclass in Python, but `true` is never a count in TOML.
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise _Problem(path, "must be a positive integer")
    return value


def _port(value, path):
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise _Problem(path, "must be an integer from 0 to 65535")
    return value


def _positive_number(value, path):
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not math.isfinite(value) or value <= 0):
        raise _Problem(path, "must be a positive number")
    return float(value)


def _boolean(value, path):
    if not isinstance(value, bool):
        raise _Problem(path, "must be true or false")
    return value


def _identifier(value, path):
    if not isinstance(value, str) or not value or any(char.isspace() for char in value):
        raise _Problem(path, "must be a non-empty id without whitespace")
    return value


def _identifiers(value, path):
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _Problem(path, "must be a list of strings")
    for item in value:
        _identifier(item, path)
    return frozenset(value)


def _endpoint(value, path):
    url = urlsplit(_non_empty_text(value, path))
    absolute = url.scheme in ("http", "https") and url.netloc
    relative = not url.scheme and not url.netloc and url.path.startswith("/")
    if not (absolute or relative):
        raise _Problem(path, "must be an http(s) URL or a path starting with /")
    return value


def _password_hash(value, path):
    if not isinstance(value, str) or not is_valid_hash(value):
        raise _Problem(path, "not a supported password hash; create one with `shep hash-password`")
    return value


def _channel(value, path):
    if value not in CHANNELS:
        raise _Problem(path, f"must be one of: {', '.join(sorted(CHANNELS))}")
    return value


def _gateway_path(value, path):
    return Path(_non_empty_text(value, path))


def _tsa_url(value, path):
    if value != "pki" and not (isinstance(value, str) and re.fullmatch(r"https?://[^\s/]+\S*", value)):
        raise _Problem(path, 'must be an http:// or https:// URL, or "pki" (the built-in test PKI\'s TSA)')
    return value


def _one_of(*choices):
    def reader(value, path):
        if value not in choices:
            raise _Problem(path, f"must be one of: {', '.join(choices)}")
        return value
    return reader


def _existing_file(value, path, base_dir: Path) -> Path:
    file = (base_dir / _non_empty_text(value, path)).resolve()
    if not file.is_file():
        raise _Problem(path, f"file not found: {file}")
    return file


def _existing_files(value, path, base_dir: Path) -> tuple[Path, ...]:
    if not isinstance(value, list):
        raise _Problem(path, "must be a list of file paths")
    return tuple(_existing_file(item, path, base_dir) for item in value)


def _existing_dirs(value, path, base_dir: Path) -> tuple[Path, ...]:
    if not isinstance(value, list):
        raise _Problem(path, "must be a list of directory paths")
    folders = tuple((base_dir / _non_empty_text(item, path)).resolve() for item in value)
    for folder in folders:
        if not folder.is_dir():
            raise _Problem(path, f"directory not found: {folder}")
    return folders


def _bin(value, path):
    if not isinstance(value, str) or not re.fullmatch(r"\d{12}", value):
        raise _Problem(path, "must be a BIN of 12 digits")
    return value


_GATEWAY_FIELDS = {
    "host": _non_empty_text,
    "port": _port,
    "state_dir": _gateway_path,
    "store_url": _non_empty_text,
    "max_body_bytes": _positive_int,
    "http_header_timeout_seconds": _positive_number,
    "http_idle_timeout_seconds": _positive_number,
    "max_connections_per_client": _positive_int,
    "max_depth": _positive_int,
    "replay_window_seconds": _positive_int,
    "clock_skew_seconds": _positive_int,
    "default_timeout_seconds": _positive_number,
    "max_response_bytes": _positive_int,
    "journal_store_bytes": _boolean,
    "journal_checkpoint_seconds": _positive_number,
    "checkpoint_tsa_url": _tsa_url,
    "worker_threads": _positive_int,
    "lockout_attempts": _positive_int,
    "lockout_minutes": _positive_number,
    "address_lockout_attempts": _positive_int,
    "address_lockout_minutes": _positive_number,
    "lockout_delay_seconds": _positive_number,
    "trust_anchors": _existing_files,
    "certificate_dirs": _existing_dirs,
    "signing_key": _existing_file,
    "signing_cert": _existing_file,
    "signing_key_info": _one_of("issuerserial", "bst", "keyidentifier"),
    "signing_alg": _one_of(*SIGNING_ALGS),
    "revocation": _one_of("ocsp,crl", "ocsp", "crl", "none"),
    "revocation_cache_seconds": _positive_int,
    "revocation_timeout_seconds": _positive_number,
    "allow_sha1": _boolean,
    "async_visibility_seconds": _positive_int,
    "async_default_amount": _positive_int,
    "async_max_amount": _positive_int,
    "async_max_attempts": _positive_int,
    "async_max_age_seconds": _positive_int,
    "async_retry_base_seconds": _positive_number,
    "async_retry_max_seconds": _positive_number,
    "async_push_interval_seconds": _positive_number,
    "async_push_timeout_seconds": _positive_number,
    "async_push_batch": _positive_int,
    "metrics_require_auth": _boolean,
}
# Readers of file paths, resolved against the config file's directory.
_GATEWAY_FILES = ("trust_anchors", "certificate_dirs", "signing_key", "signing_cert")
_PARTICIPANT_KEYS = ("password_hash", "endpoint", "description", "bin", "certificate", "async_endpoint",
                     "push_secret")
_OPERATOR_KEYS = ("role", "password_hash", "token_hash", "description")
_SERVICE_KEYS = ("provider", "channel", "payload_schema", "timeout_seconds",
                 "allowed_senders", "routes", "strict", "description",
                 "require_transport_signature", "require_payload_signature")


def _read_document(document: dict, base_dir: Path) -> tuple[GatewaySettings, ServiceRegistry, dict[str, Operator]]:
    _known_keys(document, (), ("gateway", "participants", "services", "operators", *ENDPOINT_TABLES))
    gateway_table = _table(document.get("gateway", {}), ("gateway",))
    _known_keys(gateway_table, ("gateway",), _GATEWAY_FIELDS)
    gateway = GatewaySettings(**{
        key: (_GATEWAY_FIELDS[key](value, ("gateway", key), base_dir) if key in _GATEWAY_FILES
              else _GATEWAY_FIELDS[key](value, ("gateway", key)))
        for key, value in gateway_table.items()
    })
    if (gateway.signing_key is None) != (gateway.signing_cert is None):
        missing = "signing_cert" if gateway.signing_cert is None else "signing_key"
        raise _Problem(("gateway", missing), "signing_key and signing_cert are set together")
    participant_tables = _table(document.get("participants", {}), ("participants",))
    participants = {
        participant_id: _participant(participant_id, table, ("participants", participant_id), base_dir)
        for participant_id, table in participant_tables.items()
    }
    service_tables = _table(document.get("services", {}), ("services",))
    services = [
        _service(service_id, table, ("services", service_id), participants, gateway, base_dir)
        for service_id, table in service_tables.items()
    ]
    operator_tables = _table(document.get("operators", {}), ("operators",))
    operators = {name: _operator(name, table, ("operators", name)) for name, table in operator_tables.items()}
    return gateway, ServiceRegistry(participants.values(), services), operators


def _operator(name: str, value, path) -> Operator:
    # The name is the user-id of HTTP Basic, which cannot hold a colon.
    if not isinstance(name, str) or not name or ":" in name or any(char.isspace() for char in name):
        raise _Problem(path, "an operator's name must be non-empty, without whitespace or ':'")
    table = _table(value, path)
    _known_keys(table, path, _OPERATOR_KEYS)
    _optional(table, "description", path, _text, "")
    operator = Operator(name=name, role=_required(table, "role", path, _one_of(*ROLES)),
                        password_hash=_optional(table, "password_hash", path, _password_hash, None),
                        token_hash=_optional(table, "token_hash", path, _password_hash, None))
    if operator.password_hash is None and operator.token_hash is None:
        raise _Problem(path, "needs password_hash (HTTP Basic) or token_hash (Bearer), or both")
    return operator


def _participant(participant_id: str, value, path, base_dir: Path) -> Participant:
    _identifier(participant_id, path)
    table = _table(value, path)
    _known_keys(table, path, _PARTICIPANT_KEYS)
    return Participant(
        id=participant_id,
        password_hash=_optional(table, "password_hash", path, _password_hash, None),
        endpoint=_optional(table, "endpoint", path, _endpoint, None),
        description=_optional(table, "description", path, _text, ""),
        bin=_optional(table, "bin", path, _bin, None),
        certificate=_optional(table, "certificate", path,
                              lambda value, key_path: _existing_file(value, key_path, base_dir), None),
        async_endpoint=_optional(table, "async_endpoint", path, _endpoint, None),
        push_secret=_optional(table, "push_secret", path, _non_empty_text, None),
    )


def _service(service_id: str, value, path, participants: dict[str, Participant],
             gateway: GatewaySettings, base_dir: Path) -> Service:
    _identifier(service_id, path)
    table = _table(value, path)
    _known_keys(table, path, _SERVICE_KEYS)

    provider_id = _required(table, "provider", path, _non_empty_text)
    provider = participants.get(provider_id)
    if provider is None:
        raise _Problem(path + ("provider",), f"unknown participant {provider_id!r}")
    channel = _optional(table, "channel", path, _channel, SYNC)
    if channel == SYNC and provider.endpoint is None:
        raise _Problem(path + ("provider",),
                       f"participant {provider_id!r} has no endpoint, which a sync service needs")

    senders = _required(table, "allowed_senders", path, _identifiers)
    for sender in sorted(senders - {ANY_SENDER}):
        if sender not in participants:
            raise _Problem(path + ("allowed_senders",), f"unknown participant {sender!r}")
        if participants[sender].password_hash is None:
            raise _Problem(path + ("allowed_senders",),
                           f"participant {sender!r} has no password_hash and cannot send")

    def schema(value, key_path):
        return _payload_schema(value, key_path, base_dir)

    return Service(
        id=service_id,
        provider=provider_id,
        channel=channel,
        payload_schema=_optional(table, "payload_schema", path, schema, None),
        timeout_seconds=_optional(table, "timeout_seconds", path, _positive_number,
                                  gateway.default_timeout_seconds),
        allowed_senders=senders,
        routes=_optional(table, "routes", path, _identifiers, frozenset()),
        strict=_optional(table, "strict", path, _boolean, False),
        description=_optional(table, "description", path, _text, ""),
        require_transport_signature=_optional(table, "require_transport_signature", path, _boolean, False),
        require_payload_signature=_optional(table, "require_payload_signature", path, _boolean, False),
    )


def _payload_schema(value, path, base_dir: Path) -> Path:
    schema_path = (base_dir / _non_empty_text(value, path)).resolve()
    if not schema_path.is_file():
        raise _Problem(path, f"file not found: {schema_path}")
    try:
        load_schema(schema_path)
    except (OSError, etree.XMLSyntaxError, etree.XMLSchemaParseError) as error:
        raise _Problem(path, f"not a valid XML Schema: {error}") from None
    return schema_path


def _table(value, path) -> dict:
    if not isinstance(value, dict):
        raise _Problem(path, "must be a table")
    return value


def _known_keys(table: dict, path, allowed) -> None:
    for key in table:
        if key not in allowed:
            raise _Problem(path + (key,), f"unknown key; expected one of: {', '.join(allowed)}")


def _required(table: dict, key: str, path, reader):
    if key not in table:
        raise _Problem(path + (key,), "required key is missing")
    return reader(table[key], path + (key,))


def _optional(table: dict, key: str, path, reader, default):
    return reader(table[key], path + (key,)) if key in table else default


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_BASIC_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_TOML_POSITION = re.compile(
    r"(?P<message>.*) \(at (?:line (?P<line>\d+), column (?P<column>\d+)|end of document)\)",
    re.DOTALL,
)


def _dotted(path: tuple[str, ...]) -> str | None:
    if not path:
        return None
    return ".".join(part if _BARE_KEY.fullmatch(part) else json.dumps(part, ensure_ascii=False)
                    for part in path)


def _syntax_error(error: tomllib.TOMLDecodeError, file: Path, text: str) -> ConfigError:
    # Python < 3.14 reports the position only inside the message text.
    match = _TOML_POSITION.fullmatch(str(error))
    if match is None:
        return ConfigError(f"invalid TOML: {error}", file=file)
    if match["line"] is None:
        return ConfigError(f"invalid TOML: {match['message']} at end of file",
                           file=file, line=max(1, len(text.splitlines())))
    return ConfigError(f"invalid TOML: {match['message']} (column {match['column']})",
                       file=file, line=int(match["line"]))


def _locate(text: str, path: tuple[str, ...]) -> int | None:
    """Line where `path` (or, failing that, its nearest parent) is first written.

    tomllib reports no positions for parsed keys, so this scans table headers
    and `key =` lines; inline tables are attributed to the line of their key.
    """
    first_seen: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    closing = None  # delimiter of a multi-line string being skipped
    for number, line in enumerate(text.splitlines(), start=1):
        if closing is not None:
            if line.count(closing) % 2:
                closing = None
            continue
        stripped = line.lstrip()
        if stripped.startswith("["):
            parsed = _parse_key(stripped, 2 if stripped.startswith("[[") else 1)
            if parsed is not None:
                table = parsed[0]
                _remember(first_seen, table, number)
            continue
        parsed = _parse_key(stripped, 0)
        if parsed is None or not stripped.startswith("=", parsed[1]):
            continue
        _remember(first_seen, table + parsed[0], number)
        value = stripped[parsed[1] + 1:]
        closing = next((quotes for quotes in ('"""', "'''") if value.count(quotes) % 2), None)
    for end in range(len(path), 0, -1):
        if path[:end] in first_seen:
            return first_seen[path[:end]]
    return None


def _remember(first_seen: dict, path: tuple[str, ...], line: int) -> None:
    # A header or dotted key also implicitly defines each of its parent tables.
    for end in range(1, len(path) + 1):
        first_seen.setdefault(path[:end], line)


def _parse_key(text: str, pos: int) -> tuple[tuple[str, ...], int] | None:
    """Reads a dotted TOML key at `pos`; returns its parts and the position after it."""
    parts = []
    while True:
        pos = _skip_blanks(text, pos)
        if text.startswith('"', pos):
            match = _BASIC_STRING.match(text, pos)
            if match is None:
                return None
            try:
                part = json.loads(match.group())
            except ValueError:  # TOML-only escapes such as \U0001F600
                part = match.group()[1:-1]
            pos = match.end()
        elif text.startswith("'", pos):
            end = text.find("'", pos + 1)
            if end < 0:
                return None
            part, pos = text[pos + 1:end], end + 1
        else:
            match = _BARE_KEY.match(text, pos)
            if match is None:
                return None
            part, pos = match.group(), match.end()
        parts.append(part)
        pos = _skip_blanks(text, pos)
        if not text.startswith(".", pos):
            return tuple(parts), pos
        pos += 1


def _skip_blanks(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    return pos
