"""GOST R 34.10 signatures (ГОСТ 34.310-2004 and ГОСТ Р 34.10-2015 alike) on Python integers.

The arithmetic is the standard's: e = hash as a little-endian integer mod q (1 if 0), r = x(kP) mod q,
s = (r·d + k·e) mod q; verification recomputes x(z1·P + z2·Q). Points are Jacobian; the base point
uses a precomputed 4-bit fixed-window table (additions only), other points a width-5 NAF. Python's
integers are constant-time for nothing: this serves a test gateway, not a key custodian.
"""
from __future__ import annotations

import functools
import secrets

from gateway.security.gost.curves import Curve

_WINDOW = 4
_NAF_WIDTH = 5


def _double(point, curve: Curve):
    if point is None:
        return None
    x, y, z = point
    if not y:
        return None
    p = curve.p
    yy = y * y % p
    s = 4 * x * yy % p
    zz = z * z % p
    if curve.a == p - 3:
        m = 3 * (x - zz) * (x + zz) % p
    else:
        m = (3 * x * x + curve.a * zz * zz) % p
    x3 = (m * m - 2 * s) % p
    return x3, (m * (s - x3) - 8 * yy * yy) % p, 2 * y * z % p


def _add_affine(point, affine, curve: Curve):
    """Jacobian + affine (mixed addition)."""
    if point is None:
        return affine[0], affine[1], 1
    x1, y1, z1 = point
    x2, y2 = affine
    p = curve.p
    z1z1 = z1 * z1 % p
    h = (x2 * z1z1 - x1) % p
    r = (y2 * z1 * z1z1 - y1) % p
    if not h:
        return _double(point, curve) if not r else None
    hh = h * h % p
    hhh = h * hh % p
    v = x1 * hh % p
    x3 = (r * r - hhh - 2 * v) % p
    return x3, (r * (v - x3) - y1 * hhh) % p, z1 * h % p


def _to_affine(points: list, curve: Curve) -> list[tuple[int, int]]:
    """Many Jacobian points to affine with one inversion (Montgomery's trick); none may be infinity."""
    p = curve.p
    prefix, running = [], 1
    for _, _, z in points:
        prefix.append(running)
        running = running * z % p
    inverse = pow(running, -1, p)
    result = [None] * len(points)
    for i in range(len(points) - 1, -1, -1):
        x, y, z = points[i]
        z_inv = inverse * prefix[i] % p
        inverse = inverse * z % p
        zz = z_inv * z_inv % p
        result[i] = (x * zz % p, y * zz * z_inv % p)
    return result


def affine(point, curve: Curve) -> tuple[int, int] | None:
    return None if point is None else _to_affine([point], curve)[0]


@functools.lru_cache(maxsize=8)
def _base_table(curve: Curve) -> list[list[tuple[int, int]]]:
    """table[i][j-1] = j·16^i·P for the base point P, affine."""
    windows = (curve.q.bit_length() + _WINDOW - 1) // _WINDOW
    table, base = [], (curve.x, curve.y, 1)
    for _ in range(windows):
        row = [base]
        for _ in range((1 << _WINDOW) - 2):
            row.append(_add_affine(row[-1], _to_affine([base], curve)[0], curve))
        table.append(_to_affine(row, curve))
        base = row[-1]
        base = _add_affine(base, table[-1][0], curve)  # 16·(16^i·P)
    return table


def multiply_base(k: int, curve: Curve):
    """k·P for the curve's base point (Jacobian), additions only."""
    point = None
    for row in _base_table(curve):
        digit = k & ((1 << _WINDOW) - 1)
        if digit:
            point = _add_affine(point, row[digit - 1], curve)
        k >>= _WINDOW
    return point


def _naf(k: int) -> list[int]:
    digits = []
    while k:
        if k & 1:
            digit = k & ((1 << _NAF_WIDTH) - 1)
            if digit >= 1 << (_NAF_WIDTH - 1):
                digit -= 1 << _NAF_WIDTH
            k -= digit
        else:
            digit = 0
        digits.append(digit)
        k >>= 1
    return digits


def multiply(k: int, point: tuple[int, int], curve: Curve):
    """k·Q for an affine point Q (Jacobian result)."""
    odd = [(point[0], point[1], 1)]
    twice = _to_affine([_double(odd[0], curve)], curve)[0]
    for _ in range((1 << (_NAF_WIDTH - 2)) - 1):
        odd.append(_add_affine(odd[-1], twice, curve))
    table = _to_affine(odd, curve)  # 1Q, 3Q, 5Q, ...
    p = curve.p
    result = None
    for digit in reversed(_naf(k)):
        result = _double(result, curve)
        if digit > 0:
            result = _add_affine(result, table[digit >> 1], curve)
        elif digit < 0:
            x, y = table[(-digit) >> 1]
            result = _add_affine(result, (x, p - y), curve)
    return result


def on_curve(point: tuple[int, int], curve: Curve) -> bool:
    x, y = point
    p = curve.p
    return 0 <= x < p and 0 <= y < p and (y * y - x * x * x - curve.a * x - curve.b) % p == 0


def _e(digest: bytes, q: int) -> int:
    return int.from_bytes(digest, "little") % q or 1


def public_point(d: int, curve: Curve) -> tuple[int, int]:
    return affine(multiply_base(d, curve), curve)


def new_private(curve: Curve) -> int:
    return secrets.randbelow(curve.q - 1) + 1


def sign_digest(d: int, digest: bytes, curve: Curve, *, k: int | None = None) -> tuple[int, int]:
    """(r, s) for a digest; `k` only for the standard's test vectors."""
    q, e = curve.q, _e(digest, curve.q)
    while True:
        nonce = k if k is not None else secrets.randbelow(q - 1) + 1
        r = affine(multiply_base(nonce, curve), curve)[0] % q
        s = (r * d + nonce * e) % q
        if r and s:
            return r, s
        if k is not None:
            raise ValueError("this k gives r = 0 or s = 0")


def verify_digest(public: tuple[int, int], digest: bytes, r: int, s: int, curve: Curve) -> bool:
    q = curve.q
    if not (0 < r < q and 0 < s < q) or not on_curve(public, curve):
        return False
    v = pow(_e(digest, q), -1, q)
    z1, z2 = s * v % q, (q - r) * v % q
    first, second = multiply_base(z1, curve), multiply(z2, public, curve)
    if first is None or second is None:
        total = first or second
    else:
        total = _add_affine(first, affine(second, curve), curve)
    point = affine(total, curve)
    return point is not None and point[0] % q == r
