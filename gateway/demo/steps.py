"""The steps of `shep demo`: both diagrams of the regulation through the parties' JSON APIs, each step's
outcome and the gateway's hops it caused (`GET /api/journal`).

The ЖТ ММБ population is read locally (same seed as the server) only to pick suitable IINs.
"""
from __future__ import annotations

import base64
import re
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from gateway.demo.http import Http
from gateway.demo.report import Report, Step, all_pass

RESULT_TIMEOUT = 30.0
PASSWORD = "demo-pass-2026"          # portal passwords of the demo's citizens
EMPLOYEE_PASSWORD = "clinic-pass"    # endpoints/provider/defaults/clinics.toml
AKTAU_P2 = "050640382083"            # zone: Актау microdistricts 13–35, outside_zone = "refuse"
BEINEU = "111140568623"
ZHANAOZEN_EMPLOYEE = "880228426140"  # Жанаозенская городская поликлиника, zone: Г.ЖАНАОЗЕН
DECEASED = "470118351607"            # showcase: УТЕПОВ АРЫСТАН, Бейнеу, deceased


class Demo:
    """The steps of both diagrams, each recorded in `report` with the gateway's hops it caused."""

    def __init__(self, http: Http, state_dir: Path | None, report: Report, alg: str = "rsa"):
        self.http, self.state_dir, self.report, self.alg = http, state_dir, report, alg

    def record(self, diagram: str, step: str, title: str, expected: str, observed: str, ok: bool,
               hops: list[dict] | None = None) -> bool:
        return self.report.step(Step(diagram, step, title, expected, observed, bool(ok), hops or []))

    # --- journal -------------------------------------------------------------------------------------

    def hops(self, since: str, *, message_id: str | None = None, correlation_id: str | None = None,
             service_id: str | None = None, sender: str | None = None) -> list[dict]:
        """The journal's records since `since` matching the filters; with `sender`, every hop of the exchanges
        that sender opened (the forward and the answer too, which the gateway and the provider send)."""
        query = {"since": since}
        if message_id:
            query["messageId"] = message_id
        if service_id:
            query["serviceId"] = service_id
        records = self.http.journal(**query)
        if sender:
            sessions = {r["session_id"] for r in records if r["hop"] == "request-in" and r["from_party"] == sender}
            records = [r for r in records if r["session_id"] in sessions]
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
                    sent and bool(hops) and all_pass(hops), hops)
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
                    registered and bool(update_hops) and all_pass(update_hops), update_hops)
        final = request.get("status") if isinstance(request, dict) else None
        self.record("1", "condition 3 · process 8", "grounds met, coupon received («refresh status»)",
                    "COMPLETED (RESPONSE AttachmentCoupon)", f"{final}",
                    final == "COMPLETED" and bool(response_hops) and all_pass(response_hops), response_hops)
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
                hops = _messages_of(self.hops(since, correlation_id=corr, service_id="PHC_ATTACHMENT"),
                                    "ajo") if corr else []
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
            self.report.say(f"    (shep pki issue failed: {result.stderr.strip()}; using a self-signed certificate)")
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
                    bool(number) and bool(hops) and all_pass(hops), hops)
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

def _messages_of(records: list[dict], sender: str) -> list[dict]:
    """Every hop of the messages `sender` sent (their pushes, notifications and state changes too)."""
    messages = {r["message_id"] for r in records if r["hop"] == "request-in" and r["from_party"] == sender}
    return [r for r in records if r["message_id"] in messages]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _err(data) -> str | None:
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    return error.get("code") if isinstance(error, dict) else error


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
