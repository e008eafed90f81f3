"""`make screens`: a PNG of each main page of the portal, of the clinic's workstation (`clinic-…`) and of the
console (`console-…`) under docs/screens/, taken by the browser walks of the tests (tests/browser.py,
tests/clinic_browser.py) on a `shep serve` of its own (the shipped configuration with one operator, a
temporary state folder)."""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tests import browser
from tests.clinic_browser import walk_diagram_2
from tests.serve_process import ServeProcess

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screens"
COLOURS = 64  # the pages are flat colours and text: a palette keeps each PNG small


def shrink(path: Path) -> None:
    try:
        from PIL import Image  # comes with reportlab
    except ImportError:
        return
    with Image.open(path) as image:
        image.convert("RGB").quantize(COLOURS).save(path, optimize=True)


def main() -> int:
    if not browser.available():
        print(browser.SKIP_REASON, file=sys.stderr)
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.png"):
        old.unlink()
    with tempfile.TemporaryDirectory(prefix="shep-screens-") as work:
        work = Path(work)
        (work / "downloads").mkdir()
        config = browser.console_config(work)  # the shipped configuration and one operator
        server = ServeProcess("--config", str(config), "--port", "0", "--state-dir", str(work / "var"), cwd=work,
                              log=work / "serve.log")
        driver = None
        try:
            base = server.wait_listening(60)
            driver = browser.chromium(work / "downloads")
            browser.walk_diagram_1(driver, base, work / "downloads", shots=OUT)
            for done in (work / "downloads").iterdir():  # the clinic's walk waits for its own downloads
                done.unlink()
            # Another citizen: the portal's is attached to the clinic by now.
            walk_diagram_2(driver, base, work / "downloads", person=browser.citizen(skip=1), shots=OUT)
            browser.send_demo_echo(base, "console-screens-1", work / "var")
            browser.walk_console(driver, base, "console-screens-1", shots=OUT)
        finally:
            if driver is not None:
                driver.quit()
            server.terminate()
            server.close()
    for path in sorted(OUT.glob("*.png")):
        shrink(path)
        print(f"{path.relative_to(ROOT)}  {path.stat().st_size // 1024} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
