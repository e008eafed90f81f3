"""The wheel: what it contains, and that an installed copy serves the contract on its own.

Slow (a fresh venv and a `pip install`, ~30 s) and deliberately not skipped. The wheel is built
from a copy of the source tree without build/, *.egg-info, .venv and var/, so a stale in-tree
`build/lib` cannot add or hide files, and concurrent builds do not race on the checkout.
"""
from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
import zipfile
from pathlib import Path

import pytest
from lxml import etree

ROOT = Path(__file__).resolve().parent.parent
WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
XS_NS = "http://www.w3.org/2001/XMLSchema"
BUILD_TIMEOUT = 300
VENV_TIMEOUT = 120
INSTALL_TIMEOUT = 600
START_TIMEOUT = 20
STOP_TIMEOUT = 10
HTTP_TIMEOUT = 15
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "var", "*.egg-info", "__pycache__",
                                    ".pytest_cache", ".ruff_cache", "*.pyc")


def run(args: list[str], *, timeout: float, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    try:
        result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{' '.join(args)} did not finish within {timeout} s; stderr={exc.stderr!r}")
    assert result.returncode == 0, f"{' '.join(args)} → {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    return {**env, "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    out = work / "dist"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(out), str(source)],
        timeout=BUILD_TIMEOUT, cwd=work, env=clean_env())
    wheels = list(out.glob("shep_emulator-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_wheel_contents(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        entry_text = archive.read(entry_points).decode("utf-8")
    expected = {"wsdl/SyncChannel-v10.wsdl", "wsdl/SyncChannel-v10-Interfaces.wsdl",
                "gateway/defaults/shep.toml", "gateway/defaults/demo-echo.xsd",
                "gateway/cli/__init__.py", "gateway/cli/serve.py", "simulators/echo.py",
                # The coupon's fallback font, with its license (endpoints/provider/couponfont.py).
                "endpoints/provider/fonts/DejaVuSans.ttf", "endpoints/provider/fonts/DejaVuSans-Bold.ttf",
                "endpoints/provider/fonts/LICENSE",
                # the web pages' templates, catalogues and stylesheet (docs/web.md)
                "gateway/web/pages/templates/base.html", "gateway/web/pages/messages/kk.toml",
                "gateway/web/pages/static/web.css",
                "endpoints/portal/templates/status.html", "endpoints/portal/messages/ru.toml",
                "endpoints/provider/templates/request.html", "endpoints/provider/messages/kk.toml",
                # the conformance catalogue, samples and report page (docs/conformance.md)
                "gateway/conformance/cases/provider/fault-shape.toml",
                "gateway/conformance/cases/client/async-pull.toml",
                "gateway/conformance/samples/DEMO_Echo.toml", "gateway/conformance/templates/report.html",
                "gateway/web/pages/messages/en.toml", "gateway/console/templates/console_exchange.html",
                "gateway/console/messages/en.toml"}
    xsds = {f"xsd/{p.name}" for p in (ROOT / "xsd").glob("*.xsd")}
    assert len(xsds) >= 9
    missing = sorted((expected | xsds) - names)
    assert not missing, f"missing from the wheel: {missing}"
    assert re.search(r"^\[console_scripts\]\s*$", entry_text, re.M), entry_text
    assert re.search(r"^shep\s*=\s*gateway\.cli:main\s*$", entry_text, re.M), entry_text
    assert not [n for n in names if n.startswith("tests/")]


def _wait_listening(proc: subprocess.Popen, lines: queue.Queue, seen: list[str]) -> str:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
        except queue.Empty:
            pytest.fail(f"installed shep serve printed no listening line within {START_TIMEOUT} s: {seen!r}")
        if line is None:
            proc.wait(timeout=STOP_TIMEOUT)
            pytest.fail(f"installed shep serve exited with {proc.returncode}: {seen!r}")
        seen.append(line)
        found = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        if found:
            return found.group(1)


def _get_xml(url: str) -> etree._Element:
    with HTTP.open(url, timeout=HTTP_TIMEOUT) as response:
        assert response.status == 200, url
        assert response.headers.get("Content-Type", "").startswith("text/xml"), response.headers
        return etree.fromstring(response.read(), etree.XMLParser(resolve_entities=False, no_network=True))


def test_installed_wheel_serves_the_contract(wheel, tmp_path):
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], timeout=VENV_TIMEOUT, cwd=tmp_path, env=clean_env())
    python = venv / "bin" / "python"
    env = {**clean_env(), "VIRTUAL_ENV": str(venv), "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    run([str(python), "-m", "pip", "install", "--disable-pip-version-check", str(wheel)],
        timeout=INSTALL_TIMEOUT, cwd=tmp_path, env=env)

    # A working directory outside the checkout: nothing there can shadow the installed package.
    outside = tmp_path / "outside"
    outside.mkdir()
    located = run([str(python), "-c", "import gateway.contract as c; print(c.XSD_DIR); print(c.WSDL_DIR)"],
                  timeout=60, cwd=outside, env=env).stdout.split()
    purelib = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                       timeout=60, cwd=outside, env=env).stdout.strip())
    xsd_dir, wsdl_dir = (Path(p) for p in located)
    assert xsd_dir == purelib / "xsd" and wsdl_dir == purelib / "wsdl", located
    assert ROOT not in xsd_dir.parents

    # Mark the installed copy of the schema that the WSDL references, to see that very file served.
    marker = f" installed copy {uuid.uuid4()} "
    installed_types = xsd_dir / "SyncChannel-v10-Types.xsd"
    tree = etree.parse(str(installed_types))
    tree.getroot().insert(0, etree.Comment(marker))
    tree.write(str(installed_types), xml_declaration=True, encoding="UTF-8")

    proc = subprocess.Popen([str(venv / "bin" / "shep"), "serve", "--port", "0", "--state-dir", str(tmp_path / "var"),
                             "--log-level", "WARNING"], cwd=outside, env=env, stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True)
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        for line in proc.stderr:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    try:
        base = _wait_listening(proc, lines, seen := [])
        while not seen[-1].startswith("  logs"):  # the rest of the banner
            line = lines.get(timeout=START_TIMEOUT)
            assert line is not None, seen
            seen.append(line)
        assert re.search(r"^  config +" + re.escape(str(purelib / "gateway" / "defaults" / "shep.toml")) + "$",
                         "".join(seen), re.M), seen

        service = _get_xml(f"{base}/bip-sync/?wsdl")
        assert service.tag == f"{{{WSDL_NS}}}definitions"
        imports = [el.get("location") for el in service.iter(f"{{{WSDL_NS}}}import")]
        assert imports == [f"{base}/bip-sync/?wsdl=SyncChannel-v10-Interfaces.wsdl"], imports
        interfaces = _get_xml(imports[0])
        xsd_refs = [el.get("schemaLocation") for el in interfaces.iter(f"{{{XS_NS}}}import")]
        assert f"{base}/bip-sync/?xsd=SyncChannel-v10-Types.xsd" in xsd_refs, xsd_refs

        schema = _get_xml(f"{base}/bip-sync/?xsd=SyncChannel-v10-Types.xsd")
        assert schema.tag == f"{{{XS_NS}}}schema"
        assert schema.get("targetNamespace") == "http://bip.bee.kz/SyncChannel/v10/Types"
        comments = [el.text for el in schema.iter(etree.Comment)]
        assert marker in comments, "the XSD was not served from the installed copy"

        # The portal's pages, rendered from the installed templates.
        with HTTP.open(f"{base}/portal/", timeout=HTTP_TIMEOUT) as response:
            page = response.read().decode("utf-8")
            assert response.status == 200 and response.headers["Content-Type"] == "text/html; charset=utf-8"
            assert "1414" in page and "/portal/static/web.css" in page
        # The console's (no operator configured: loopback is served without signing in).
        with HTTP.open(f"{base}/console/faults", timeout=HTTP_TIMEOUT) as response:
            assert response.status == 200 and "SHEP-160" in response.read().decode("utf-8")

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=STOP_TIMEOUT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT)
