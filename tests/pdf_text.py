"""The text of a PDF as a reader finds it: poppler's `pdftotext` (Debian package poppler-utils) where it is on PATH,
as CI has it, else pypdf (pure Python, a test dependency). Neither shares code with reportlab, which writes it."""
from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests import system_tools


def pdf_text(pdf: bytes) -> str:
    """The words of every page, one space between them (long values wrap onto the next line)."""
    exe = shutil.which("pdftotext")
    if exe:
        system_tools.used("PDF text", "pdftotext command")
        with tempfile.TemporaryDirectory(prefix="pdftotext-") as work:
            path = Path(work, "document.pdf")
            path.write_bytes(pdf)
            text = subprocess.run([exe, "-layout", str(path), "-"], capture_output=True, check=True,
                                  timeout=60).stdout.decode()
    else:
        import pypdf

        system_tools.used("PDF text", f"pypdf {pypdf.__version__}")
        text = "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    return " ".join(text.split())


def text_positions(pdf: bytes) -> list[tuple[str, float, float]]:
    """(text, x, y) of every text run pypdf finds on the first page, in points from the bottom left: where a
    reader puts each run, to tell whether two of them share a row."""
    import pypdf

    runs: list[tuple[str, float, float]] = []

    def visit(text, cm, tm, font, size):
        if text.strip():
            # The run's origin in page space: the text matrix's translation through the current matrix.
            x, y = tm[4], tm[5]
            runs.append((text.strip(), cm[0] * x + cm[2] * y + cm[4], cm[1] * x + cm[3] * y + cm[5]))

    pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text(visitor_text=visit)
    return runs
