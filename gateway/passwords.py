"""Participant passwords (пароль участника ШЭП), stored only as PBKDF2 hashes.

Encoded form: ``pbkdf2-sha256$<iterations>$<salt base64>$<hash base64>``.
"""

import base64
import hashlib
import hmac
import os
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable

SCHEME = "pbkdf2-sha256"
DEFAULT_ITERATIONS = 200_000
SALT_BYTES = 16
# A typo'd iteration count in the config must not stall every request.
MAX_ITERATIONS = 10_000_000
_DIGEST_BYTES = hashlib.sha256().digest_size


def hash_password(plain: str, *, iterations: int = DEFAULT_ITERATIONS) -> str:
    salt = os.urandom(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha256", plain.encode("utf-8"), salt, iterations)
    return f"{SCHEME}${iterations}${_b64(salt)}${_b64(digest)}"


def is_valid_hash(encoded: str) -> bool:
    return _parse(encoded) is not None


def verify_password(plain: str, encoded: str) -> bool:
    parsed = _parse(encoded)
    if parsed is None or not isinstance(plain, str):
        return False
    iterations, salt, expected = parsed
    try:
        secret = plain.encode("utf-8")
    except UnicodeEncodeError:
        return False
    actual = hashlib.pbkdf2_hmac("sha256", secret, salt, iterations)
    return hmac.compare_digest(actual, expected)


class PasswordVerifier:
    """verify_password with an LRU cache of successful checks.

    PBKDF2 is slow on purpose and a participant authenticates on every
    request. Only successes are cached, so guessing still pays full price:
    the gateway asks `verified` (the cache alone) in the work pool and hashes
    the other pairs with `verify_apart`, in a pool of their own.
    """

    def __init__(self, max_entries: int = 1024, *, run: Callable[..., Awaitable[bool]] | None = None):
        self._max_entries = max_entries
        # run(func, *args): where verify_apart hashes (the composition root's password pool).
        self._run = run
        self._key = os.urandom(32)
        self._verified: OrderedDict[tuple[str, bytes], None] = OrderedDict()
        self._lock = threading.Lock()

    def verified(self, plain: str, encoded: str) -> bool:
        """The pair was verified before: no hashing."""
        token = self._token(plain, encoded)
        return token is not None and self._seen(token)

    def verify(self, plain: str, encoded: str) -> bool:
        token = self._token(plain, encoded)
        if token is None:
            return False
        if self._seen(token):
            return True
        # Outside the lock: PBKDF2 would otherwise serialise all worker threads.
        if not verify_password(plain, encoded):
            return False
        with self._lock:
            self._verified[token] = None
            self._verified.move_to_end(token)
            while len(self._verified) > self._max_entries:
                self._verified.popitem(last=False)
        return True

    def verify_apart(self, plain: str, encoded: str) -> Awaitable[bool]:
        """verify, in the pool given as `run`."""
        return self._run(self.verify, plain, encoded)

    def _seen(self, token: tuple[str, bytes]) -> bool:
        with self._lock:
            if token in self._verified:
                self._verified.move_to_end(token)
                return True
        return False

    def _token(self, plain: str, encoded: str) -> tuple[str, bytes] | None:
        if not isinstance(plain, str) or not isinstance(encoded, str):
            return None
        try:
            secret = plain.encode("utf-8")
        except UnicodeEncodeError:
            return None
        # Keyed digest rather than bare sha256: a memory dump of the cache
        # must not be cheaper to brute-force than the PBKDF2 hashes themselves.
        return encoded, hmac.digest(self._key, secret, "sha256")


def _parse(encoded: str) -> tuple[int, bytes, bytes] | None:
    if not isinstance(encoded, str):
        return None
    parts = encoded.split("$")
    if len(parts) != 4 or parts[0] != SCHEME:
        return None
    _, iterations, salt, digest = parts
    # isascii: str.isdigit also accepts digits such as "²" that int() rejects.
    if not (iterations.isascii() and iterations.isdigit()):
        return None
    rounds = int(iterations)
    if not 1 <= rounds <= MAX_ITERATIONS:
        return None
    try:
        salt_bytes = base64.b64decode(salt, validate=True)
        digest_bytes = base64.b64decode(digest, validate=True)
    except ValueError:
        return None
    if not salt_bytes or len(digest_bytes) != _DIGEST_BYTES:
        return None
    return rounds, salt_bytes, digest_bytes


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
