"""Message catalogues: one TOML file per language (`messages/kk.toml`, `messages/ru.toml`, `messages/en.toml`),
the shared one here and a party's own beside its templates. Each set of pages names its languages, the
first its default: Kazakh then Russian for the e-service's parties, as in the regulation; the gateway's
console is English only.

Plain TOML rather than gettext: the pages name their messages by stable keys, the catalogues are small,
and tomllib reads them with no compile step; a catalogue that misses a key of the other is refused at
start, so no page can show a key instead of a text.
"""
from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path

LANGUAGES = ("kk", "ru")
NAMES = {"kk": "Қазақша", "ru": "Русский", "en": "English"}


def _flat(table: Mapping, prefix: str = "") -> dict[str, str]:
    found: dict[str, str] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            found.update(_flat(value, f"{name}."))
        elif isinstance(value, str):
            found[name] = value
        else:
            raise ValueError(f"{name}: a message must be a string, not {type(value).__name__}")
    return found


class Catalogue:
    """Texts by language and key, from the catalogue folders given (later folders override earlier ones), in
    `languages` only (the first the default)."""

    def __init__(self, folders: Iterable[Path], languages: tuple[str, ...] = LANGUAGES):
        unknown = [lang for lang in languages if lang not in NAMES]
        if not languages or unknown:
            raise ValueError(f"languages must be some of {', '.join(NAMES)}, not {languages!r}")
        self.languages = tuple(languages)
        self.messages: dict[str, dict[str, str]] = {lang: {} for lang in self.languages}
        for folder in folders:
            for lang in self.languages:
                path = Path(folder) / f"{lang}.toml"
                with path.open("rb") as file:
                    self.messages[lang].update(_flat(tomllib.load(file)))
        keys = {lang: set(texts) for lang, texts in self.messages.items()}
        for lang in self.languages:
            for other in self.languages:
                missing = sorted(keys[other] - keys[lang])
                if missing:
                    raise ValueError(f"the {lang} catalogue lacks {', '.join(missing[:5])} (present in {other})")

    def text(self, lang: str, key: str, **params) -> str:
        """The text of `key` in `lang`, its {placeholders} filled; a key no catalogue has is a KeyError."""
        template = self.messages[lang][key]
        return template.format_map(params) if params else template

    def has(self, key: str) -> bool:
        return key in self.messages[self.languages[0]]

    def choose(self, asked: str | None, remembered: str | None) -> str:
        """The page's language: `?lang=` first, then the cookie, then the default (the first)."""
        for candidate in (asked, remembered):
            if candidate in self.languages:
                return candidate
        return self.languages[0]


def moment(value: str | None) -> str:
    """An ISO 8601 instant as the pages show it: its own local date and time, and its UTC offset."""
    if not value:
        return ""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    if parsed.tzinfo is None:
        return parsed.strftime("%Y-%m-%d %H:%M")
    offset = parsed.strftime("%z")
    return f"{parsed:%Y-%m-%d %H:%M} (UTC{offset[:3]}:{offset[3:]})"

