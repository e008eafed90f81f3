"""Operators: the people allowed the gateway's operator API (`/api/journal`, `/api/queue`, optionally `/metrics`).

Credentials are `[operators.<name>]` tables (docs/configuration.md, "Operator API"): HTTP Basic with the
operator's name and password, or `Authorization: Bearer <token>`; both stored only as `shep hash-password`
hashes. Without any operator configured, only loopback clients are served.
"""
from __future__ import annotations

import base64
import binascii
import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from gateway.passwords import PasswordVerifier

if TYPE_CHECKING:
    from gateway.store.lockouts import AddressLockouts

# Each role has the rights of the roles before it.
AUDITOR, OPERATOR = "auditor", "operator"
ROLES = (AUDITOR, OPERATOR)
REALM = "shep-emulator operators"


@dataclass(frozen=True)
class Operator:
    name: str
    role: str
    password_hash: str | None = None
    token_hash: str | None = None

    def may(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


class Refused(Exception):
    """Not allowed: `status` 401 (no or wrong credentials), 403 (known but not allowed) or 429 (the client's
    address is locked out); str() says why."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True)
class Credentials:
    """What the Authorization header presents: a Basic name and password, or a bearer token (name None)."""

    name: str | None
    secret: str


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return host == "localhost"


def parse_authorization(header: bytes | None) -> Credentials:
    """The credentials of an Authorization header; Refused(401) when absent or malformed."""
    if not header:
        raise Refused(401, "no credentials (Authorization: Basic or Bearer)")
    scheme, _, value = header.decode("latin-1").strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return Credentials(None, value)
    if scheme.lower() == "basic" and value:
        try:
            name, colon, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise Refused(401, "malformed Basic credentials") from None
        if colon:
            return Credentials(name, password)
        raise Refused(401, "malformed Basic credentials (no ':')")
    raise Refused(401, f"unsupported Authorization scheme {scheme!r}; use Basic or Bearer")


class OperatorAuth:
    """Who may use the operator API: `check` (cheap, on the reactor) then `verify` (PBKDF2, in the pool). Wrong
    credentials count against the client's address, as participants' wrong passwords do (`lockouts`)."""

    def __init__(self, operators: dict[str, Operator], verifier: PasswordVerifier, lockouts: "AddressLockouts"):
        self.operators = operators
        # Successful checks are cached, so an operator's script polling the journal pays PBKDF2 once.
        self.verifier = verifier
        self.lockouts = lockouts

    def check(self, authorization: bytes | None, client: str, proxied: bool) -> Credentials | None:
        """None: serve without credentials (no operator configured, a loopback client); the credentials to
        verify otherwise. A proxied request (Forwarded, X-Forwarded-For) is never taken for a local one."""
        if not self.operators:
            if is_loopback(client) and not proxied:
                return None
            raise Refused(403, "no operator is configured: the operator API answers loopback clients only")
        return parse_authorization(authorization)

    def verify(self, credentials: Credentials, role: str, client: str) -> Operator:
        """The operator the credentials prove, allowed `role`; Refused otherwise. Credentials verified before
        pass at once; new ones are tried only while the client's address is not locked out (429)."""
        operator = self._proven(credentials, self.verifier.verified)
        if operator is None:
            locked_until = self.lockouts.locked_until(client)
            if locked_until is not None:
                raise Refused(429, f"too many wrong credentials from {client}: no new ones are tried until "
                                   f"{locked_until.isoformat(timespec='seconds')}")
            operator = self._proven(credentials, self.verifier.verify)
        if operator is None:
            self.lockouts.failed(client)
            raise Refused(401, "wrong credentials" if credentials.name is None
                          else f"wrong name or password for {credentials.name!r}")
        if not operator.may(role):
            raise Refused(403, f"operator {operator.name!r} is {operator.role}; this needs {role}")
        return operator

    def _proven(self, credentials: Credentials, verify: Callable[[str, str], bool]) -> Operator | None:
        if credentials.name is None:
            return next((op for op in self.operators.values()
                         if op.token_hash is not None and verify(credentials.secret, op.token_hash)), None)
        operator = self.operators.get(credentials.name)
        if operator is None or operator.password_hash is None or not verify(credentials.secret, operator.password_hash):
            return None
        return operator
