"""What every page answer carries: a strict Content-Security-Policy (our own files only, no inline
script or style, no framing), no MIME sniffing, no caching of personal data; the browser session cookie
and its CSRF token.

The CSRF token is an HMAC of the browser session's random id under a secret kept in the state folder
(so every worker process of one server accepts it); a form posted without the token of the session that
sent it is refused. The cookies are HttpOnly and SameSite=Strict, and Secure when served over TLS.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",  # for browsers that predate frame-ancestors
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}
SESSION_COOKIE = "shep_web"
CSRF_FIELD = "csrf_token"
SECRET_FILE = "web-secret"


def load_secret(state_dir: Path) -> bytes:
    """The server's CSRF secret, `<state_dir>/web-secret` (0600), made on first use."""
    path = Path(state_dir) / SECRET_FILE
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another worker made it first
        return bytes.fromhex(path.read_text().strip())
    with os.fdopen(fd, "w") as file:
        file.write(secret.hex())
    return secret


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


def csrf_token(secret: bytes, session_id: str) -> str:
    return hmac.new(secret, f"csrf:{session_id}".encode(), hashlib.sha256).hexdigest()


def csrf_valid(secret: bytes, session_id: str | None, token: str | None) -> bool:
    if not session_id or not token:
        return False
    return hmac.compare_digest(csrf_token(secret, session_id), token)


def cookie(name: str, value: str, *, path: str, secure: bool, max_age: int | None = None) -> str:
    """A Set-Cookie value: HttpOnly, SameSite=Strict, Secure over TLS; max_age 0 deletes it."""
    parts = [f"{name}={value}", f"Path={path}", "HttpOnly", "SameSite=Strict"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if secure:
        parts.append("Secure")
    return "; ".join(parts)
