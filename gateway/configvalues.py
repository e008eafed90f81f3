"""The value readers of the TOML configuration: each converts one value or raises `Problem` at its key path;
`Collector` reads a table's keys recording every problem; `resolve_path` reads the paths (`package:` ones too)."""
from __future__ import annotations

import re
import math
from pathlib import Path
from urllib.parse import urlsplit

from lxml import etree

from gateway.contract import load_schema
from gateway.passwords import is_valid_hash
from gateway.registry import CHANNELS

# `package:xsd/services/gbdfl/gbdfl.xsd`: a file shipped with shep-emulator, wherever it is installed (the folder
# holding the gateway, xsd and wsdl packages), so that a copied configuration still finds it.
PACKAGE_PREFIX = "package:"
PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def resolve_path(text: str, base_dir: Path) -> Path:
    """A path written in a config file: `package:…` inside the installed package, `~` the user's home, any other
    relative path against `base_dir` (the config file's folder)."""
    if text.startswith(PACKAGE_PREFIX):
        return (PACKAGE_ROOT / text[len(PACKAGE_PREFIX):]).resolve()
    return (base_dir / Path(text).expanduser()).resolve()


class Problem(Exception):
    """A validation failure at a key path; load_config adds file and line."""

    def __init__(self, path: tuple[str, ...], message: str):
        super().__init__(message)
        self.path = path
        self.message = message


class Skipped(Exception):
    """A table not read because of problems already recorded (its own, or a participant it names)."""


class Collector:
    """Reads the keys of one table, recording each problem instead of stopping at the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        self._before = len(problems)

    def read(self, reader, value, path, *extra):
        try:
            return reader(value, path, *extra)
        except Problem as problem:
            self.problems.append(problem)
            return None

    def known_keys(self, table: dict, path, allowed) -> None:
        for key in table:
            if key not in allowed:
                self.problems.append(Problem(path + (key,), f"unknown key; expected one of: {', '.join(allowed)}"))

    def optional(self, table: dict, key: str, path, reader, default):
        return self.read(reader, table[key], path + (key,)) if key in table else default

    def required(self, table: dict, key: str, path, reader):
        if key not in table:
            self.problems.append(Problem(path + (key,), "required key is missing"))
            return None
        return self.read(reader, table[key], path + (key,))

    def complain(self, path, message: str) -> None:
        self.problems.append(Problem(path, message))

    def done(self) -> None:
        """Raise Skipped when this table had a problem: what it would build is not built."""
        if len(self.problems) > self._before:
            raise Skipped


# Value readers: each returns the converted value or raises Problem at `path`.

def text(value, path):
    if not isinstance(value, str):
        raise Problem(path, "must be a string")
    return value


def non_empty_text(value, path):
    if not isinstance(value, str) or not value:
        raise Problem(path, "must be a non-empty string")
    return value


def positive_int(value, path):
    # bool is an int subclass in Python, but `true` is never a count in TOML.
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise Problem(path, "must be a positive integer")
    return value


def port(value, path):
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise Problem(path, "must be an integer from 0 to 65535")
    return value


def positive_number(value, path):
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not math.isfinite(value) or value <= 0):
        raise Problem(path, "must be a positive number")
    return float(value)


def boolean(value, path):
    if not isinstance(value, bool):
        raise Problem(path, "must be true or false")
    return value


def identifier(value, path):
    if not isinstance(value, str) or not value or any(char.isspace() for char in value):
        raise Problem(path, "must be a non-empty id without whitespace")
    return value


def identifiers(value, path):
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise Problem(path, "must be a list of strings")
    for item in value:
        identifier(item, path)
    return frozenset(value)


def endpoint(value, path):
    url = urlsplit(non_empty_text(value, path))
    absolute = url.scheme in ("http", "https") and url.netloc
    relative = not url.scheme and not url.netloc and url.path.startswith("/")
    if not (absolute or relative):
        raise Problem(path, "must be an http(s) URL or a path starting with /")
    return value


def password_hash(value, path):
    if not isinstance(value, str) or not is_valid_hash(value):
        raise Problem(path, "not a supported password hash; create one with `shep hash-password`")
    return value


def channel(value, path):
    if value not in CHANNELS:
        raise Problem(path, f"must be one of: {', '.join(sorted(CHANNELS))}")
    return value


def directory(value, path, base_dir: Path) -> Path:
    return resolve_path(non_empty_text(value, path), base_dir)


def tsa_url(value, path):
    if value != "pki" and not (isinstance(value, str) and re.fullmatch(r"https?://[^\s/]+\S*", value)):
        raise Problem(path, 'must be an http:// or https:// URL, or "pki" (the built-in test PKI\'s TSA)')
    return value


def one_of(*choices):
    def reader(value, path):
        if value not in choices:
            raise Problem(path, f"must be one of: {', '.join(choices)}")
        return value
    return reader


def existing_file(value, path, base_dir: Path) -> Path:
    file = resolve_path(non_empty_text(value, path), base_dir)
    if not file.is_file():
        raise Problem(path, f"file not found: {file}")
    return file


def existing_files(value, path, base_dir: Path) -> tuple[Path, ...]:
    if not isinstance(value, list):
        raise Problem(path, "must be a list of file paths")
    return tuple(existing_file(item, path, base_dir) for item in value)


def existing_dirs(value, path, base_dir: Path) -> tuple[Path, ...]:
    if not isinstance(value, list):
        raise Problem(path, "must be a list of directory paths")
    folders = tuple(resolve_path(non_empty_text(item, path), base_dir) for item in value)
    for folder in folders:
        if not folder.is_dir():
            raise Problem(path, f"directory not found: {folder}")
    return folders


def bin_number(value, path):
    if not isinstance(value, str) or not re.fullmatch(r"\d{12}", value):
        raise Problem(path, "must be a BIN of 12 digits")
    return value


def payload_schema(value, path, base_dir: Path) -> Path:
    schema_path = resolve_path(non_empty_text(value, path), base_dir)
    if not schema_path.is_file():
        raise Problem(path, f"file not found: {schema_path}")
    try:
        load_schema(schema_path)
    except (OSError, etree.XMLSyntaxError, etree.XMLSchemaParseError) as error:
        raise Problem(path, f"not a valid XML Schema: {error}") from None
    return schema_path


def table(value, path) -> dict:
    if not isinstance(value, dict):
        raise Problem(path, "must be a table")
    return value
