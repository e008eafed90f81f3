"""Who is at the console: the operator's sign-in, checked by the operator API's own `OperatorAuth` (the
same credentials, the same address lockout with its 429), then a session cookie.

The cookie (`shep_console`, Path /console/) holds the operator's name, when it expires and an HMAC of
both and of the browser session (`shep_web`, renewed at sign-in and sign-out) under the server's web
secret: every worker process accepts it, nothing is stored, and it dies with the browser session it was
issued to. The operator's role is read from the configuration on every request.

With no `[operators.*]` configured the console serves loopback clients as an operator with no sign-in,
and nobody else, as the API does.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass

from gateway.operators import OPERATOR, Credentials, Operator, OperatorAuth, Refused

COOKIE = "shep_console"
SESSION_SECONDS = 8 * 3600  # a working day; signing out or closing the browser ends it sooner
LOOPBACK = "loopback client"


class SignInNeeded(Exception):
    """No (valid) console session: the page sends the browser to the sign-in form."""


@dataclass(frozen=True)
class Signed:
    name: str
    role: str

    def may(self, role: str) -> bool:
        return Operator(self.name, self.role).may(role)


class ConsoleAuth:
    def __init__(self, auth: OperatorAuth, secret: bytes, clock=time.time):
        self.auth = auth
        self.secret = secret
        self.clock = clock

    @property
    def open_to_loopback(self) -> bool:
        return not self.auth.operators

    def sign_in(self, name: str, secret: str, client: str) -> Operator:
        """The operator these credentials prove (a blank name: `secret` is a bearer token); Refused with 401
        or 429 (the address is locked out) as the API refuses them."""
        return self.auth.verify(Credentials(name or None, secret), "auditor", client)

    def cookie_value(self, name: str, session_id: str) -> str:
        expires = int(self.clock()) + SESSION_SECONDS
        encoded = base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")
        return f"{encoded}.{expires}.{self._mac(name, expires, session_id)}"

    def who(self, cookie: str | None, session_id: str, client: str, proxied: bool) -> Signed:
        """The signed-in operator; SignInNeeded without a valid session, Refused(403) where no operator is
        configured and the client is not on loopback."""
        if self.open_to_loopback:
            self.auth.check(None, client, proxied)  # Refused(403) unless loopback and not proxied
            return Signed(LOOPBACK, OPERATOR)
        name = self._name(cookie or "", session_id)
        operator = self.auth.operators.get(name) if name is not None else None
        if operator is None:
            raise SignInNeeded()
        return Signed(operator.name, operator.role)

    def _name(self, cookie: str, session_id: str) -> str | None:
        encoded, _, rest = cookie.partition(".")
        expires, _, mac = rest.partition(".")
        try:
            name = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
            expires_at = int(expires)
        except (ValueError, UnicodeDecodeError):
            return None
        if expires_at < self.clock() or not hmac.compare_digest(mac, self._mac(name, expires_at, session_id)):
            return None
        return name

    def _mac(self, name: str, expires: int, session_id: str) -> str:
        message = f"console:{name}:{expires}:{session_id}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()


__all__ = ["ConsoleAuth", "Refused", "SignInNeeded", "Signed", "COOKIE"]
