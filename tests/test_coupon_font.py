"""The paper coupon's font (endpoints/provider/couponfont.py): found in order (the configured files, fontconfig,
the system's folders, the shipped DejaVu Sans subset), taken only with every Kazakh letter, and the letters drawn
in the PDF are the ones read back from it."""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from endpoints.provider.couponfont import (BOLD_VARIABLE, KAZAKH, REGULAR_VARIABLE, SHIPPED, FontNotFound,
                                           find_coupon_font, missing_letters)
from endpoints.provider.pdf import coupon_pdf
from tests.pdf_text import pdf_text
from tests.test_provider import sample_coupon

# A Latin-only font: what a fontconfig fallback may be on a machine without DejaVu. reportlab ships it.
LATIN_ONLY = Path(__import__("reportlab").__file__).parent / "fonts" / "Vera.ttf"
NONE = dict(fc_match=None, system_dirs=())


def fake_fc_match(tmp_path: Path, regular: Path, bold: Path) -> str:
    """An fc-match that answers `regular` for "DejaVu Sans" and `bold` for "DejaVu Sans:bold"."""
    script = tmp_path / "fc-match"
    script.write_text(f'#!/bin/sh\ncase "$3" in *bold) printf %s "{bold}";; *) printf %s "{regular}";; esac\n')
    script.chmod(0o755)
    return str(script)


def test_the_shipped_subset_has_every_kazakh_letter_and_is_the_last_resort():
    assert missing_letters(SHIPPED / "DejaVuSans.ttf") == missing_letters(SHIPPED / "DejaVuSans-Bold.ttf") == ""
    assert LATIN_ONLY.is_file() and set(missing_letters(LATIN_ONLY)) >= set(KAZAKH)
    found = find_coupon_font({}, **NONE)
    assert found.source == "shipped" and found.regular == SHIPPED / "DejaVuSans.ttf"


def test_a_configured_font_comes_first_and_a_bad_one_is_a_clear_error(tmp_path):
    shipped = SHIPPED / "DejaVuSans.ttf"
    found = find_coupon_font({REGULAR_VARIABLE: str(shipped)}, **NONE)
    assert (found.regular, found.bold, found.source) == (shipped, shipped, REGULAR_VARIABLE)
    with pytest.raises(FontNotFound, match=f"{REGULAR_VARIABLE}={LATIN_ONLY}: has no glyph for ә ғ қ"):
        find_coupon_font({REGULAR_VARIABLE: str(LATIN_ONLY)}, **NONE)
    with pytest.raises(FontNotFound, match=f"{BOLD_VARIABLE}={tmp_path / 'nope.ttf'}: no such file"):
        find_coupon_font({REGULAR_VARIABLE: str(shipped), BOLD_VARIABLE: str(tmp_path / "nope.ttf")}, **NONE)
    not_a_font = tmp_path / "font.ttf"
    not_a_font.write_bytes(b"not a font")
    with pytest.raises(FontNotFound, match="not a TrueType font"):
        find_coupon_font({REGULAR_VARIABLE: str(not_a_font)}, **NONE)


def test_fontconfig_then_the_system_folders_with_the_letters_checked(tmp_path):
    folder = tmp_path / "fonts"
    folder.mkdir()
    for name in ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"):
        shutil.copy(SHIPPED / name, folder / name)
    bold = SHIPPED / "DejaVuSans-Bold.ttf"
    found = find_coupon_font({}, fc_match=fake_fc_match(tmp_path, SHIPPED / "DejaVuSans.ttf", bold),
                             system_dirs=[folder])
    assert (found.source, found.bold) == ("fontconfig", bold)
    # fontconfig's fallback lacks the letters: the next source is taken, not a coupon of empty boxes.
    found = find_coupon_font({}, fc_match=fake_fc_match(tmp_path, LATIN_ONLY, LATIN_ONLY),
                             system_dirs=[tmp_path / "missing", folder])
    assert (found.source, found.regular) == (str(folder), folder / "DejaVuSans.ttf")


def test_nothing_found_names_what_to_install(tmp_path):
    with pytest.raises(FontNotFound) as refused:
        find_coupon_font({}, fc_match=fake_fc_match(tmp_path, LATIN_ONLY, LATIN_ONLY), system_dirs=[tmp_path],
                         shipped=tmp_path)
    assert "ә ғ қ ң ө ұ ү һ і" in str(refused.value)
    assert "fonts-dejavu-core" in str(refused.value) and REGULAR_VARIABLE in str(refused.value)


@pytest.mark.parametrize("source", ["shipped", "found"])
def test_the_kazakh_letters_are_drawn_and_read_back(source):
    font = find_coupon_font({}, **NONE) if source == "shipped" else find_coupon_font()
    coupon = sample_coupon()
    coupon = dataclasses.replace(coupon, person=dataclasses.replace(coupon.person, surname=KAZAKH[9:]))
    text = pdf_text(coupon_pdf(coupon, signer=f"Бас дәрігер {KAZAKH[:9]}", font=font))
    assert KAZAKH[9:] in text and KAZAKH[:9] in text, text
    assert "МСАК көрсететін медициналық ұйымға тіркеу талоны" in text
