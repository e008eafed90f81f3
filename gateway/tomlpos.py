"""Where a key is written in a TOML file: tomllib reports positions for syntax errors only (in its message text),
so the line of a key a semantic check refuses is found by a small scan of table headers and `key =` lines."""
from __future__ import annotations

import json
import re
import tomllib

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_BASIC_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_TOML_POSITION = re.compile(
    r"(?P<message>.*) \(at (?:line (?P<line>\d+), column (?P<column>\d+)|end of document)\)",
    re.DOTALL,
)


def dotted(path: tuple[str, ...]) -> str | None:
    if not path:
        return None
    return ".".join(part if _BARE_KEY.fullmatch(part) else json.dumps(part, ensure_ascii=False)
                    for part in path)


def syntax_error(error: tomllib.TOMLDecodeError, text: str) -> tuple[str, int | None]:
    """A syntax error's message and line."""
    # Python < 3.14 reports the position only inside the message text.
    match = _TOML_POSITION.fullmatch(str(error))
    if match is None:
        return f"invalid TOML: {error}", None
    if match["line"] is None:
        return f"invalid TOML: {match['message']} at end of file", max(1, len(text.splitlines()))
    return f"invalid TOML: {match['message']} (column {match['column']})", int(match["line"])


def locate(text: str, path: tuple[str, ...]) -> int | None:
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
