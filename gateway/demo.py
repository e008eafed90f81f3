"""`shep demo`: walk both diagrams of the regulation over HTTP and print a trace with the gateway's hops.

Talks to a running server at --url, or starts `shep serve --port 0` with a temporary state dir when
nothing answers there. Only the portal's and the clinic's JSON APIs and the gateway's journal API are
used; the ЖТ ММБ population is read locally (same seed as the server) only to pick suitable IINs.
Exit 1 when any step behaves unexpectedly.
"""
from __future__ import annotations

import base64
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

HTTP_TIMEOUT = 30.0
START_TIMEOUT = 60.0
RESULT_TIMEOUT = 30.0
PASSWORD = "demo-pass-2026"          # portal passwords of the demo's citizens
EMPLOYEE_PASSWORD = "clinic-pass"    # endpoints/provider/defaults/clinics.toml
AKTAU_P2 = "050640382083"            # zone: Актау microdistricts 13–35, outside_zone = "refuse"
BEINEU = "111140568623"
ZHANAOZEN_EMPLOYEE = "880228426140"  # Жанаозенская городская поликлиника, zone: Г.ЖАНАОЗЕН
DECEASED = "470118351607"            # showcase: УТЕПОВ АРЫСТАН, Бейнеу, deceased


class Http:
    def __init__(self, base: str, operator_token: str | None = None):
        self.base = base.rstrip("/")
        # The journal API's bearer token, when the server has [operators.*] configured.
        self.operator_token = operator_token

    def call(self, method: str, path: str, body=None, token: str | None = None) -> tuple[int, object, bytes]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT) as resp:
                status, raw, ctype = resp.status, resp.read(), resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as err:
            status, raw, ctype = err.code, err.read(), err.headers.get("Content-Type", "")
        parsed = None
        if "json" in ctype:
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = None
        return status, parsed, raw

    def journal(self, **query) -> list[dict]:
        from urllib.parse import urlencode

        status, data, _ = self.call("GET", "/api/journal?" + urlencode({"limit": 1000, **query}),
                                    token=self.operator_token)
        if status in (401, 403):
            error = data.get("error") if isinstance(data, dict) else status
            raise RuntimeError(f"GET /api/journal answered {status} ({error}): give an operator's token with "
                               "--operator-token or SHEP_OPERATOR_TOKEN")
        return data["records"] if status == 200 and isinstance(data, dict) else []


@dataclass
class Step:
    diagram: str
    step: str
    title: str
    expected: str
    observed: str = ""
    ok: bool = False
    hops: list[dict] = field(default_factory=list)


class Demo:
    def __init__(self, http: Http, state_dir: Path | None, out=sys.stdout, alg: str = "rsa"):
        self.http, self.state_dir, self.out, self.alg = http, state_dir, out, alg
        self.steps: list[Step] = []

    # --- reporting -----------------------------------------------------------------------------------

    def record(self, diagram: str, step: str, title: str, expected: str, observed: str, ok: bool,
               hops: list[dict] | None = None) -> bool:
        s = Step(diagram, step, title, expected, observed, bool(ok), hops or [])
        self.steps.append(s)
        mark = "OK" if s.ok else "FAIL"
        print(f"Diagram {diagram} · {step}: {title}", file=self.out)
        print(f"    expected {expected}; observed {observed}  [{mark}]", file=self.out)
        if s.hops:
            print("    → gateway hops: " + "; ".join(_hop_summary(h) for h in s.hops), file=self.out)
            for h in s.hops:
                failed = [v for v in h["verdicts"] if v["verdict"] not in _FINE]
                checks = ", ".join(f"{v['check']}:{v['verdict']}" for v in h["verdicts"])
                print(f"      #{h['seq']} {h['hop']:<13} {h['from_party'] or '-'}→{h['to_party'] or '-'} "
                      f"messageId={h['message_id'] or '-'} fault={h['fault_code'] or '-'}"
                      + (f"\n         checks: {checks}" if checks else "")
                      + (f"\n         NOT PASSED: {failed}" if failed else ""), file=self.out)
        self.out.flush()
        return s.ok

    def summary(self) -> bool:
        print("\nSummary", file=self.out)
        rows = [("step", "expected", "observed", "result")]
        rows += [(f"D{s.diagram} {s.step}", s.expected, s.observed, "OK" if s.ok else "FAIL") for s in self.steps]
        widths = [min(max(len(r[i]) for r in rows), 60) for i in range(4)]
        for n, r in enumerate(rows):
            print("| " + " | ".join(c[:60].ljust(widths[i]) for i, c in enumerate(r)) + " |", file=self.out)
            if n == 0:
                print("|" + "|".join("-" * (w + 2) for w in widths) + "|", file=self.out)
        ok = all(s.ok for s in self.steps)
        print(f"\n{sum(s.ok for s in self.steps)}/{len(self.steps)} steps OK", file=self.out)
        return ok

    # --- journal -------------------------------------------------------------------------------------

    def hops(self, since: str, *, message_id: str | None = None, correlation_id: str | None = None,
             service_id: str | None = None, sender: str | None = None) -> list[dict]:
        query = {"since": since}
        if message_id:
            query["messageId"] = message_id
        if service_id:
            query["serviceId"] = service_id
        if sender:
            query["sender"] = sender
        records = self.http.journal(**query)
        if correlation_id:
            records = [r for r in records if r.get("correlation_id") == correlation_id]
        return records

    # --- diagram 1 -----------------------------------------------------------------------------------

    def portal_citizen(self, candidates, *, fresh: bool) -> tuple[dict, str] | None:
        """Register the first candidate that is free (fresh: not registered yet); answer (person, token)."""
        for person in candidates:
            body = {"iin": person.iin, "password": PASSWORD, "surname": person.surname or "ТЕСТ",
                    "name": person.name or "ТЕСТ", "patronymic": person.patronymic}
            status, data, _ = self.http.call("POST", "/portal/api/accounts", body)
            if status == 201 or (status == 409 and not fresh):
                return person, status
        return None

    def diagram1(self, population) -> None:
        api = "/portal/api"
        chosen = self.portal_citizen(_candidates(population, "Г.АКТАУ", _zone_aktau_p2), fresh=True)
        ok = chosen is not None
        person = chosen[0] if chosen else None
        self.record("1", "(pre)", "register a citizen on the portal",
                    "201, SIGN certificate issued", f"{person.iin} {person.surname} registered" if ok else
                    "no free candidate", ok)
        if not ok:
            return
        iin = person.iin
        status, data, _ = self.http.call("POST", f"{api}/session", {"iin": iin, "password": "wrong-password"})
        self.record("1", "process 1 → condition 1 → process 2", "wrong password refused",
                    "401 AUTH_REFUSED", f"{status} {_err(data)}", status == 401 and _err(data) == "AUTH_REFUSED")
        status, data, _ = self.http.call("POST", f"{api}/session", {"iin": iin, "password": PASSWORD})
        token = data.get("token") if status == 200 and isinstance(data, dict) else None
        self.record("1", "process 1 · condition 1", "login with IIN and password", "200 token",
                    f"{status} {'token' if token else _err(data)}", bool(token))
        if not token:
            return
        form = {"service": "PHC_ATTACHMENT", "clinic_bin": AKTAU_P2, "reason": "FREE_CHOICE"}
        status, data, _ = self.http.call("POST", f"{api}/requests", form, token)
        number = data.get("number") if status == 201 else None
        self.record("1", "process 3", "choose the service, fill in the form", "201 DRAFT",
                    f"{status} {number} {data.get('status') if isinstance(data, dict) else ''}",
                    status == 201 and data.get("status") == "DRAFT")
        if not number:
            return
        sign_at = _now()
        status, data, _ = self.http.call("POST", f"{api}/requests/{number}/sign", None, token)
        sent = status == 200 and data.get("status") == "SENT"
        msg, corr = (data.get("message_id"), data.get("correlation_id")) if sent else (None, None)
        hops = self.hops(sign_at, message_id=msg) if msg else []
        self.record("1", "condition 2 · process 5", "EDS checked, request signed and sent through the gateway",
                    "200 SENT, request-in checks pass",
                    f"{status} {data.get('status') if isinstance(data, dict) else ''} messageId={msg}",
                    sent and bool(hops) and _all_pass(hops), hops)
        if not sent:
            return
        deadline = time.monotonic() + RESULT_TIMEOUT
        seen, request = set(), data
        while time.monotonic() < deadline:
            status, request, _ = self.http.call("POST", f"{api}/requests/{number}/refresh", None, token)
            if status == 200:
                seen.add(request["status"])
                if request["status"] in ("COMPLETED", "REFUSED", "ERROR"):
                    break
            time.sleep(0.3)
        exchange = [h for h in self.hops(sign_at, correlation_id=corr, service_id="PHC_ATTACHMENT")
                    if h["message_id"] != msg]
        by_message: dict[str, list[dict]] = {}
        for h in exchange:
            if h["from_party"] == "ajo" or h["message_id"] in by_message:
                by_message.setdefault(h["message_id"], []).append(h)
        ajo_messages = list(by_message.values())
        update_hops = ajo_messages[0] if ajo_messages else []
        response_hops = ajo_messages[1] if len(ajo_messages) > 1 else []
        registered = bool(request.get("registration_number")) if isinstance(request, dict) else False
        self.record("1", "process 6", "registered in the clinic's АЖО (UPDATE Registration)",
                    "registration_number set, UPDATE hops pass",
                    f"registration_number={request.get('registration_number') if isinstance(request, dict) else None}",
                    registered and bool(update_hops) and _all_pass(update_hops), update_hops)
        final = request.get("status") if isinstance(request, dict) else None
        self.record("1", "condition 3 · process 8", "grounds met, coupon received («refresh status»)",
                    "COMPLETED (RESPONSE AttachmentCoupon)", f"{final}",
                    final == "COMPLETED" and bool(response_hops) and _all_pass(response_hops), response_hops)
        status, data, _ = self.http.call("GET", f"{api}/requests/{number}/result", None, token)
        valid = status == 200 and data.get("type") == "COUPON" and data["signature"].get("valid") is True
        self.record("1", "process 8 («view result»)", "coupon signed by the clinic's authorised person",
                    "COUPON, signature valid, matches request",
                    f"{status} {data.get('type') if isinstance(data, dict) else ''} "
                    f"valid={data.get('signature', {}).get('valid') if isinstance(data, dict) else None} "
                    f"coupon={data.get('coupon', {}).get('couponNumber') if isinstance(data, dict) else None}",
                    valid and data.get("matches_request") is True)

        # condition 2 refused (process 4): another person's certificate
        self.condition2_refusal(population, token, iin, api)

        # condition 3 refused (process 7): a deceased person
        since = _now()
        dead = population.get(DECEASED)
        chosen = self.portal_citizen([dead], fresh=False)
        status, data, _ = self.http.call("POST", f"{api}/session", {"iin": DECEASED, "password": PASSWORD})
        dtoken = data.get("token") if status == 200 else None
        final, reasons, corr, hops = None, [], None, []
        if chosen and dtoken:
            status, draft, _ = self.http.call("POST", f"{api}/requests",
                                              {"clinic_bin": BEINEU, "reason": "FREE_CHOICE"}, dtoken)
            if status == 201:
                status, sent, _ = self.http.call("POST", f"{api}/requests/{draft['number']}/sign", None, dtoken)
                corr = sent.get("correlation_id") if status == 200 else None
                deadline = time.monotonic() + RESULT_TIMEOUT
                while corr and time.monotonic() < deadline:
                    status, req, _ = self.http.call("POST", f"{api}/requests/{draft['number']}/refresh", None, dtoken)
                    if status == 200 and req["status"] in ("COMPLETED", "REFUSED", "ERROR"):
                        final, reasons = req["status"], [r.get("code") for r in req.get("reasons") or []]
                        break
                    time.sleep(0.3)
                hops = [h for h in self.hops(since, correlation_id=corr, service_id="PHC_ATTACHMENT")
                        if h["from_party"] == "ajo"] if corr else []
        self.record("1", "condition 3 → process 7", f"clinic refuses a deceased person ({DECEASED})",
                    "REFUSED with ATT-202", f"{final} {reasons}", final == "REFUSED" and "ATT-202" in reasons, hops)

    def condition2_refusal(self, population, token: str, iin: str, api: str) -> None:
        other = next(p for p in population if p.iin != iin and p.death_date is None
                     and p.birth_date.year < 2000)
        with tempfile.TemporaryDirectory(prefix="shep-demo-cert-") as tmp:
            how = self._other_certificate(other.iin, Path(tmp))
            cert = (Path(tmp) / "cert.pem").read_text()
            key = (Path(tmp) / "key.pem").read_text()
        status, _, _ = self.http.call("PUT", f"{api}/certificate", {"certificate": cert, "key": key}, token)
        uploaded = status == 200
        status, draft, _ = self.http.call("POST", f"{api}/requests", {"clinic_bin": AKTAU_P2, "reason": "FREE_CHOICE"},
                                          token)
        since = _now()
        code, reasons = None, []
        if status == 201:
            status, data, _ = self.http.call("POST", f"{api}/requests/{draft['number']}/sign", None, token)
            code = _err(data)
            reasons = [r["code"] for r in data.get("reasons", [])] if isinstance(data, dict) else []
        expected_reason = "IIN_MISMATCH" if how == "pki" else "CERT_UNTRUSTED"
        hops = self.hops(since, service_id="PHC_ATTACHMENT", sender="portal")
        self.record("1", "condition 2 → process 4",
                    f"sign with another person's certificate ({other.iin}, {how}), nothing reaches the gateway",
                    f"422 EDS_NOT_CONFIRMED {expected_reason}, no hops",
                    f"upload={'ok' if uploaded else 'failed'} {status} {code} {reasons} hops={len(hops)}",
                    uploaded and status == 422 and code == "EDS_NOT_CONFIRMED" and expected_reason in reasons
                    and not hops)

    def _other_certificate(self, iin: str, out: Path) -> str:
        """A SIGN certificate of another IIN: from the server's test PKI (`shep pki issue`) when its state dir is
        known, otherwise a self-signed one (the running server's PKI is out of reach over HTTP)."""
        if self.state_dir is not None:
            shep = Path(sys.executable).with_name("shep")
            cmd = [str(shep) if shep.exists() else sys.executable, *([] if shep.exists() else ["-m", "gateway.cli"]),
                   "pki", "issue", "--state-dir", str(self.state_dir), "--kind", "person", "--alg", self.alg,
                   "--usage", "sign", "--iin", iin, "--out", str(out)]
            result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            if result.returncode == 0:
                return "pki"
            print(f"    (shep pki issue failed: {result.stderr.strip()}; using a self-signed certificate)",
                  file=self.out)
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes

        from gateway.security.keyfiles import save_credentials
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "DEMO"),
                          x509.NameAttribute(NameOID.SERIAL_NUMBER, f"IIN{iin}")])
        now = datetime.now(timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
                .not_valid_after(now + timedelta(days=30)).sign(key, hashes.SHA256()))
        save_credentials(out / "key.pem", out / "cert.pem", key, cert)
        return "self-signed"

    # --- signatures ----------------------------------------------------------------------------------

    def signatures(self, since: str) -> None:
        """Every message hop since `since` by the algorithm that signed it, as the journal shows it: the
        verdicts of the signatures the gateway checked (in), the SignatureMethod of what it sent (out)."""
        from gateway.security.algorithms import short_name

        found: dict[str, int] = {}
        hops = [h for h in self.http.journal(since=since, body=1) if h["hop"] != "state"]
        for hop in hops:
            names = [match.group(1) for v in hop["verdicts"] for detail in (v.get("detail") or "").split("; ")
                     for match in [re.fullmatch(r"(?:payload )?signed by .* \(([\w-]+)\)", detail)] if match]
            if hop["direction"] == "out":
                method = re.search(rb'SignatureMethod Algorithm="([^"]+)"',
                                   base64.b64decode(hop.get("body_base64") or ""))
                names.append(short_name(method.group(1).decode()) if method else "unsigned")
            elif not any(v["check"] in ("verify_transport_signature", "verify_provider_signature")
                         and v["verdict"] == "pass" and "signed by" in (v.get("detail") or "")
                         for v in hop["verdicts"]):
                names.append("unsigned")
            for name in names:
                found[name] = found.get(name, 0) + 1
        observed = ", ".join(f"{n} {name}" for name, n in sorted(found.items())) or "none"
        # The journal names a signature by its method: SHA-256 with the test PKI's RSA and EC keys.
        expected = {"rsa": "rsa-sha256", "ec": "ecdsa-sha256"}.get(self.alg, self.alg)
        self.record("1+2", "every hop", f"every message hop signed with {self.alg}", f"only {expected}",
                    f"{observed} in {len(hops)} message hops", set(found) == {expected})

    # --- diagram 2 -----------------------------------------------------------------------------------

    def diagram2(self, population) -> None:
        api = "/clinic/api"
        status, data, _ = self.http.call("POST", f"{api}/login", {"iin": ZHANAOZEN_EMPLOYEE,
                                                                   "password": EMPLOYEE_PASSWORD})
        token = data.get("token") if status == 200 else None
        self.record("2", "process 1", "employee logs in to the АЖО", "200 token",
                    f"{status} {data['employee']['clinicName'] if token else _err(data)}", bool(token))
        if not token:
            return
        # processes 2–3, condition 1: a Жанаозен adult not attached anywhere yet
        person = None
        for candidate in _candidates(population, "Г.ЖАНАОЗЕН", lambda a: True):
            status, reg, _ = self.http.call("GET", f"{api}/register?iin={candidate.iin}&active=1", None, token)
            if status == 200 and not reg["attachments"]:
                person = candidate
                break
        since = _now()
        status, draft, _ = (self.http.call("POST", f"{api}/requests", {"iin": person.iin, "reason": "FREE_CHOICE"},
                                           token) if person else (0, {}, b""))
        hops = self.hops(since, service_id="GBDFL_UniversalServiceSync", sender="ajo")
        number = draft.get("requestNumber") if status == 201 else None
        self.record("2", "processes 2–3 · condition 1", f"request for {person.iin if person else '?'}; "
                    "ЖТ ММБ asked through the gateway", "201 DRAFT completed from ЖТ ММБ, sync hops pass",
                    f"{status} {number} {draft.get('person', {}).get('surname') if number else _err(draft)}",
                    bool(number) and bool(hops) and _all_pass(hops), hops)
        # condition 1 → process 4
        missing = _missing_iin(population)
        since = _now()
        status, data, _ = self.http.call("POST", f"{api}/requests", {"iin": missing, "reason": "FREE_CHOICE"}, token)
        hops = self.hops(since, service_id="GBDFL_UniversalServiceSync", sender="ajo")
        self.record("2", "condition 1 → process 4", f"recipient {missing} not in ЖТ ММБ",
                    "404 ATT-201", f"{status} {_err(data)}", status == 404 and _err(data) == "ATT-201", hops)
        if number:
            since = _now()
            status, done, _ = self.http.call("POST", f"{api}/requests/{number}/sign", None, token)
            hops = self.hops(since, service_id="GBDFL_UniversalServiceSync", sender="ajo")
            self.record("2", "processes 5–6 · condition 2", "employee signs; registered; grounds met",
                        "200 COMPLETED with registration number and coupon",
                        f"{status} {done.get('status')} {done.get('registrationNumber')} "
                        f"{(done.get('coupon') or {}).get('couponNumber')}",
                        status == 200 and done.get("status") == "COMPLETED" and bool(done.get("registrationNumber")),
                        hops)
            link = (done.get("links") or {}).get("couponPdf", "")
            status, _, raw = self.http.call("GET", link.replace("/clinic/api", api, 1), None, token) \
                if link else (0, None, b"")
            self.record("2", "process 8", "paper coupon", "200 application/pdf starting %PDF",
                        f"{status} {len(raw)} bytes {raw[:5]!r}", status == 200 and raw.startswith(b"%PDF"))
        # condition 2 → process 7: a deceased person (also outside the Жанаозен zone)
        status, draft, _ = self.http.call("POST", f"{api}/requests", {"iin": DECEASED, "reason": "FREE_CHOICE"}, token)
        refusal = []
        if status == 201:
            status, done, _ = self.http.call("POST", f"{api}/requests/{draft['requestNumber']}/sign", None, token)
            refusal = [r["code"] for r in done.get("refusal") or []] if status == 200 else []
            final = done.get("status")
        else:
            final = _err(draft)
        self.record("2", "condition 2 → process 7", f"refusal for a deceased person ({DECEASED})",
                    "REFUSED with ATT-202", f"{status} {final} {refusal}", final == "REFUSED" and "ATT-202" in refusal)


# --- helpers ---------------------------------------------------------------------------------------------

_FINE = ("pass", "skip", "note")  # `note`: a queue state change recorded by the AsyncChannel


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _err(data) -> str | None:
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    return error.get("code") if isinstance(error, dict) else error


def _all_pass(hops: list[dict]) -> bool:
    return all(not h["fault_code"] and all(v["verdict"] in _FINE for v in h["verdicts"]) for h in hops)


def _hop_summary(h: dict) -> str:
    counts: dict[str, int] = {}
    for v in h["verdicts"]:
        counts[v["verdict"]] = counts.get(v["verdict"], 0) + 1
    checks = ", ".join(f"{n} {k}" for k, n in counts.items()) or "no checks"
    return f"{h['hop']} (checks: {checks})" + (f" FAULT {h['fault_code']}" if h["fault_code"] else "")


def _zone_aktau_p2(address) -> bool:
    m = re.fullmatch(r"МИКРОРАЙОН (\d+)", address.street or "")
    return address.town == "АКТАУ" and bool(m) and 13 <= int(m.group(1)) <= 35


def _candidates(population, region: str, in_zone):
    today = date.today()
    for p in population:
        a = p.reg_address
        if (a is None or p.death_date is not None or p.addresses or a.district.region.ru != region
                or not in_zone(a) or (today.year - p.birth_date.year) < 20 or p.surname is None):
            continue
        yield p


def _missing_iin(population) -> str:
    import random

    from gateway.security.identity import generate_iin

    rng = random.Random(1414)
    while True:
        iin = generate_iin(date(1990, 1, 1 + rng.randrange(28)), "M", rng)
        if population.get(iin) is None:
            return iin


class _Server:
    """`shep serve --port 0` in a subprocess with a temporary state dir (and `store_url`'s store when given)."""

    def __init__(self, store_url: str | None = None, alg: str = "rsa"):
        self.state_dir = Path(tempfile.mkdtemp(prefix="shep-demo-"))
        shep = Path(sys.executable).with_name("shep")
        cmd = [str(shep)] if shep.exists() else [sys.executable, "-m", "gateway.cli"]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        store = ["--store", store_url] if store_url else []
        self.proc = subprocess.Popen([*cmd, "serve", "--port", "0", "--host", "127.0.0.1", "--state-dir",
                                      str(self.state_dir), *store, "--signing-alg", alg, "--log-level", "WARNING"],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def wait_url(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            found = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
            if found:
                return found.group(1)
        raise RuntimeError("shep serve did not start listening in time")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        shutil.rmtree(self.state_dir, ignore_errors=True)


def _reachable(url: str) -> bool:
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=2) as resp:
            return resp.status == 200
    except (OSError, ValueError):
        return False


def _server_alg(http: Http) -> str:
    from cryptography import x509

    from gateway.security.gost.x509 import certificate_alg

    status, _, raw = http.call("GET", "/api/certificate")
    if status != 200:
        raise RuntimeError(f"GET /api/certificate answered {status}")
    return certificate_alg(x509.load_pem_x509_certificate(raw))


def run(url: str, state_dir: str | None = None, out=sys.stdout, store_url: str | None = None,
        alg: str = "rsa", operator_token: str | None = None) -> int:
    from simulators.gbdfl.population import build_population

    server = None
    if not _reachable(url):
        print(f"no server at {url}: starting `shep serve --port 0 --signing-alg {alg}` with a temporary state dir",
              file=out)
        server = _Server(store_url, alg)
    started = time.monotonic()
    try:
        if server:
            url = server.wait_url()
        http = Http(url, operator_token)
        http.journal(limit=1)  # a refused journal stops the demo now, not after every step has failed
        signing = _server_alg(http)
        if signing != alg:
            raise RuntimeError(f"the server at {url} signs with {signing}, not {alg}: start it with "
                               f"`make run ARGS=\"--signing-alg {alg}\"`, or give a --url where none runs")
        print(f"server {url} (signatures: {alg})\n", file=out)
        demo = Demo(http, server.state_dir if server else (Path(state_dir) if state_dir else None), out, alg)
        population = build_population()
        since = _now()
        print("== Diagram 1: through the portal ==", file=out)
        demo.diagram1(population)
        print("\n== Diagram 2: through the clinic's employee ==", file=out)
        demo.diagram2(population)
        print("\n== Signatures ==", file=out)
        demo.signatures(since)
        ok = demo.summary()
    finally:
        if server:
            server.stop()
    print(f"demo took {time.monotonic() - started:.1f} s", file=out)
    return 0 if ok else 1


def cmd_demo(args) -> int:
    try:
        return run(args.url, args.state_dir, store_url=args.store, alg=args.alg,
                   operator_token=args.operator_token or os.environ.get("SHEP_OPERATOR_TOKEN"))
    except RuntimeError as exc:
        print(f"shep demo: {exc}", file=sys.stderr)
        return 2
