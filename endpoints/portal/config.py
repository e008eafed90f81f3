"""The portal's settings: the `[portal]` table of the emulator's TOML configuration (docs/api.md)."""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

from endpoints.portal.calendar import WorkingCalendar
from gateway.security.certs import REVOCATION_MODES

_NUMBERS = {"lockout_attempts": int, "lockout_minutes": float, "session_minutes": float,
            "password_min_length": int, "password_iterations": int, "revocation_timeout_seconds": float,
            "revocation_cache_seconds": float, "adult_age": int, "term_working_days": int, "pull_amount": int,
            "gateway_timeout_seconds": float}
_TEXTS = ("gateway_url", "participant_id", "password", "service_id", "registry_service", "store_url", "revocation",
          "request_prefix")


@dataclass(frozen=True)
class PortalSettings:
    gateway_url: str = "http://127.0.0.1:8080"
    # The portal is a ShEP participant (ЭҮП) that pulls its AsyncChannel messages.
    participant_id: str = "portal"
    password: str = ""
    service_id: str = "PHC_ATTACHMENT"
    # ЖТ ММБ (GBD FL) on the SyncChannel: registrations are checked there.
    registry_service: str = "GBDFL_UniversalServiceSync"
    # Citizens' keys and certificates live under <state_dir>/portal/.
    state_dir: Path = Path("var")
    # None: the composition root hands the portal the gateway store's engine (own tables, portal_*).
    store_url: str | None = None
    lockout_attempts: int = 5
    lockout_minutes: float = 15.0
    session_minutes: float = 60.0
    password_min_length: int = 8
    password_iterations: int = 200_000
    revocation: str = "ocsp,crl"
    revocation_timeout_seconds: float = 5.0
    # Short: a certificate revoked a minute ago must not pass condition 2 for long.
    revocation_cache_seconds: float = 60.0
    request_prefix: str = "EGOV-"
    adult_age: int = 18
    term_working_days: int = 1
    pull_amount: int = 50
    gateway_timeout_seconds: float = 30.0
    calendar: WorkingCalendar = field(default_factory=WorkingCalendar)
    # The portal's own organisation certificate (PEM): WS-Security on every gateway call when set.
    signing_key: Path | None = None
    signing_cert: Path | None = None
    # Without the files: the composition root issues the portal's certificate from the test PKI.
    transport_signature: bool = False

    def __post_init__(self):
        if (self.signing_key is None) != (self.signing_cert is None):
            raise ValueError("portal.signing_key and portal.signing_cert go together")
        if self.revocation not in REVOCATION_MODES:
            raise ValueError(f"portal.revocation must be one of {', '.join(REVOCATION_MODES)}")
        for name in ("lockout_attempts", "password_min_length", "password_iterations", "term_working_days",
                     "pull_amount", "adult_age"):
            if getattr(self, name) < 1:
                raise ValueError(f"portal.{name} must be at least 1")
        for name in ("lockout_minutes", "session_minutes", "revocation_timeout_seconds",
                     "gateway_timeout_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"portal.{name} must be positive")

    @classmethod
    def from_mapping(cls, table: dict, *, base_dir: Path = Path(".")) -> PortalSettings:
        """From the `[portal]` table; `password_env` names an environment variable holding the password,
        relative `state_dir` is resolved against `base_dir`."""
        table = dict(table)
        known = {*_NUMBERS, *_TEXTS, "password_env", "state_dir", "calendar", "signing_key", "signing_cert",
                 "transport_signature"}
        unknown = set(table) - known
        if unknown:
            raise ValueError(f"portal: unknown keys {', '.join(sorted(unknown))}")
        fields = {name: str(table[name]) for name in _TEXTS if name in table}
        for name, kind in _NUMBERS.items():
            if name in table:
                if isinstance(table[name], bool) or not isinstance(table[name], (int, float)):
                    raise ValueError(f"portal.{name} must be a number")
                fields[name] = kind(table[name])
        if "password_env" in table:
            variable = str(table["password_env"])
            if variable not in os.environ:
                raise ValueError(f"portal.password_env: the environment variable {variable} is not set")
            fields["password"] = os.environ[variable]
        if "state_dir" in table:
            fields["state_dir"] = base_dir / str(table["state_dir"])
        for name in ("signing_key", "signing_cert"):
            if name in table:
                fields[name] = base_dir / str(table[name])
        if "transport_signature" in table:
            if not isinstance(table["transport_signature"], bool):
                raise ValueError("portal.transport_signature must be true or false")
            fields["transport_signature"] = table["transport_signature"]
        if "calendar" in table:
            fields["calendar"] = WorkingCalendar.from_mapping(table["calendar"])
        return cls(**fields)

    def replace(self, **changes) -> PortalSettings:
        return dataclasses.replace(self, **changes)
