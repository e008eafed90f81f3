"""The paper coupon's font (шрифт талона): a TrueType font with the Russian and Kazakh letters, found the same
way on any system.

In order: the files named by SHEP_COUPON_FONT (and SHEP_COUPON_FONT_BOLD), fontconfig's match for DejaVu Sans,
DejaVu Sans in the folders where systems install it, and last the subset of DejaVu Sans shipped in
`endpoints/provider/fonts/` (185 KB, under its license there), so a machine without any font still prints
coupons. A font is taken only if it has every letter of `REQUIRED`: fontconfig answers with some other font
when DejaVu is missing, and that one may lack them.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from reportlab.pdfbase.ttfonts import TTFontFile

REGULAR_VARIABLE = "SHEP_COUPON_FONT"
BOLD_VARIABLE = "SHEP_COUPON_FONT_BOLD"
KAZAKH = "әғқңөұүһіӘҒҚҢӨҰҮҺІ"
REQUIRED = KAZAKH + "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ№«»"
FILES = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf")
SHIPPED = Path(__file__).with_name("fonts")
# Where systems install DejaVu Sans (package): Debian, Ubuntu (fonts-dejavu-core); Fedora, RHEL
# (dejavu-sans-fonts); Arch (ttf-dejavu); Alpine, openSUSE (font-dejavu, dejavu-fonts); FreeBSD (dejavu);
# macOS (Homebrew: font-dejavu); Windows.
SYSTEM_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu-sans-fonts"),
    Path("/usr/share/fonts/TTF"),
    Path("/usr/share/fonts/dejavu"),
    Path("/usr/share/fonts/truetype"),
    Path("/usr/local/share/fonts/dejavu"),
    Path.home() / "Library" / "Fonts",
    Path("/Library/Fonts"),
    Path(os.environ.get("WINDIR", "C:/Windows")) / "Fonts",
)
_FC_TIMEOUT = 10
INSTALL_HINT = ("install DejaVu Sans (Debian/Ubuntu: fonts-dejavu-core; Fedora: dejavu-sans-fonts; Alpine: "
                "font-dejavu; macOS: brew install --cask font-dejavu), or set SHEP_COUPON_FONT (and "
                "SHEP_COUPON_FONT_BOLD) to a TrueType font that has them")


class FontNotFound(RuntimeError):
    """No usable font: the message says what to install or set."""


@dataclass(frozen=True)
class CouponFont:
    regular: Path
    bold: Path
    source: str  # the variable, "fontconfig", the folder, or "shipped"


def missing_letters(path: Path) -> str:
    """The letters of REQUIRED the TrueType font at `path` has no glyph for; ValueError if it is not one."""
    try:
        mapping = TTFontFile(str(path)).charToGlyph
    except Exception as error:  # reportlab raises its own TTFError, or OSError, for what it cannot read
        raise ValueError(f"not a TrueType font reportlab can embed ({error})") from None
    return "".join(letter for letter in REQUIRED if ord(letter) not in mapping)


def find_coupon_font(environ: Mapping[str, str] = os.environ, *, fc_match: str | None = "",
                     system_dirs=SYSTEM_DIRS, shipped: Path = SHIPPED) -> CouponFont:
    """The first usable pair (regular, bold) in the order of the module's docstring. `fc_match`: the fc-match
    program ("" finds it on PATH, None: no fontconfig)."""
    configured = environ.get(REGULAR_VARIABLE)
    if configured:
        pair = CouponFont(Path(configured), Path(environ.get(BOLD_VARIABLE) or configured), REGULAR_VARIABLE)
        for variable, path in ((REGULAR_VARIABLE, pair.regular), (BOLD_VARIABLE, pair.bold)):
            problem = _problem(path)
            if problem:
                raise FontNotFound(f"{variable}={path}: {problem}")
        return pair
    candidates = [CouponFont(*found, "fontconfig")] if (found := _fontconfig(fc_match)) else []
    candidates += [CouponFont(folder / FILES[0], folder / FILES[1], str(folder)) for folder in system_dirs]
    candidates.append(CouponFont(shipped / FILES[0], shipped / FILES[1], "shipped"))
    for pair in candidates:
        if not _problem(pair.regular) and not _problem(pair.bold):
            return pair
    raise FontNotFound(f"no font with the Cyrillic and Kazakh letters ({' '.join(KAZAKH[:9])}) for the paper "
                       f"coupon: {INSTALL_HINT}")


def _problem(path: Path) -> str | None:
    if not path.is_file():
        return "no such file"
    try:
        missing = missing_letters(path)
    except ValueError as error:
        return str(error)
    return f"has no glyph for {' '.join(missing)}" if missing else None


def _fontconfig(fc_match: str | None) -> tuple[Path, Path] | None:
    program = shutil.which("fc-match") if fc_match == "" else fc_match
    if not program:
        return None
    files = []
    for pattern in ("DejaVu Sans", "DejaVu Sans:bold"):
        try:
            answer = subprocess.run([program, "-f", "%{file}", pattern], capture_output=True, text=True,
                                    timeout=_FC_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if answer.returncode != 0 or not answer.stdout.strip():
            return None
        files.append(Path(answer.stdout.strip()))
    return files[0], files[1]
