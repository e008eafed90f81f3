"""The console's pages (docs/web.md, "The gateway console"): sign-in, the overview with live figures, the
journal and one exchange as a timeline, the AsyncChannel queue, the fault catalogue, the test PKI, the
metrics. Each reads or changes what the operator API and `shep` commands do, through the same objects
(`Journal.query`, `AsyncQueue.stop|retry`, the PKI's `revoke` and `crl`, the metrics registry).

Auditors read; only operators resend, stop, retry and revoke (403 otherwise).
"""
from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from gateway.asyncchannel.queue import DELIVERED, ON_DELIVERY, STATES, NotPending, NotYours
from gateway.console import figures, resend, xmlview
from gateway.console.signin import COOKIE, SESSION_SECONDS, ConsoleAuth, Refused, SignInNeeded, Signed
from gateway.faults import CATALOGUE
from gateway.journal import VERDICTS
from gateway.operators import AUDITOR, OPERATOR
from gateway.web.pages.resource import Download, Page, PageError, PagesResource, Redirect, Route, View
from gateway.web.resources import instant

HERE = Path(__file__).resolve().parent
MOUNT = "/console/"
LANGUAGES = ("en",)
JOURNAL_LIMIT = 100
EXCHANGE_LIMIT = 1000
REASONS = ("unspecified", "key_compromise", "affiliation_changed", "superseded", "cessation_of_operation")


class ConsolePKI(Protocol):
    """What the console needs of a PKI (the composition root hands it the test PKI's)."""

    def certificates(self) -> list[dict]: ...
    def revoke(self, serial: str, reason: str) -> dict: ...
    def crl(self, ca_slug: str) -> bytes: ...


@dataclass
class ConsoleParts:
    auth: ConsoleAuth
    journal: object  # gateway.journal.Journal
    queue: object  # gateway.asyncchannel.queue.AsyncQueue
    metrics: object  # gateway.metrics.Metrics (its registry)
    services: Callable[[str | None], object]  # the registry's service by id, or None
    base_url: Callable[[], str]
    clock: Callable[[], datetime]
    pki: ConsolePKI | None = None


class Console:
    def __init__(self, parts: ConsoleParts):
        self.parts = parts

    # -- who ------------------------------------------------------------------------------------------

    def who(self, view: View, role: str = AUDITOR) -> Signed:
        signed = self.parts.auth.who(view.cookie(COOKIE), view.session_id, view.client, view.proxied)
        if not signed.may(role):
            raise PageError(403, "console.refused.role", name=signed.name, role=signed.role, needed=role)
        return signed

    def page(self, view: View, template: str, status: int = 200, **context) -> Page:
        return Page(template, {"me": self.who(view), "open": self.parts.auth.open_to_loopback, **context}, status)

    # -- sign-in --------------------------------------------------------------------------------------

    def login_form(self, view: View) -> Page:
        return Page("console_login.html", {"me": None, "open": self.parts.auth.open_to_loopback,
                                           "next": _next(view.query.get("next")), "name": "", "refusal": None})

    def login(self, view: View):
        name, secret = view.form.get("name").strip(), view.form.get("password")
        target = _next(view.form.get("next"))
        try:
            operator = self.parts.auth.sign_in(name, secret, view.client)
        except Refused as refusal:
            return Page("console_login.html", {"me": None, "open": self.parts.auth.open_to_loopback,
                                               "next": target, "name": name, "refusal": str(refusal)},
                        refusal.status)
        view.rotate_session()
        view.set_cookie(COOKIE, self.parts.auth.cookie_value(operator.name, view.session_id),
                        max_age=SESSION_SECONDS)
        return Redirect(target)

    def logout(self, view: View) -> Redirect:
        view.clear_cookie(COOKIE)
        view.rotate_session()
        return Redirect("login")

    # -- overview and figures -------------------------------------------------------------------------

    def overview(self, view: View) -> Page:
        registry = self.parts.metrics.registry
        received, rate = figures.messages_per_second(self.parts.journal, self.parts.clock())
        pending = sum(count for count, _ in self.parts.queue.pending().values())
        return self.page(view, "console_overview.html", received=received, rate=rate, pending=pending,
                         records=self.parts.journal.size(), faults=figures.faults_by_code(registry),
                         catalogue=CATALOGUE)

    def metrics(self, view: View) -> Page:
        received, rate = figures.messages_per_second(self.parts.journal, self.parts.clock())
        return self.page(view, "console_metrics.html", families=figures.families(self.parts.metrics.registry),
                         number=figures.number, received=received, rate=rate)

    def faults(self, view: View) -> Page:
        return self.page(view, "console_faults.html", faults=list(CATALOGUE.values()))

    # -- the journal and one exchange -----------------------------------------------------------------

    def journal(self, view: View) -> Page:
        filters = {name: view.query.get(name, "").strip() for name in
                   ("service", "sender", "messageId", "since", "until", "verdict")}
        query, errors = {}, {}
        for name, key in (("service", "service_id"), ("sender", "sender"), ("messageId", "message_id")):
            if filters[name]:
                query[key] = filters[name]
        for name in ("since", "until"):
            if filters[name]:
                try:
                    query[name] = instant(name, filters[name])
                except ValueError as error:
                    errors[name] = str(error)
        if filters["verdict"]:
            if filters["verdict"] in VERDICTS:
                query["verdict"] = filters["verdict"]
            else:
                errors["verdict"] = f"one of {', '.join(VERDICTS)}"
        records = [] if errors else self.parts.journal.query(**query, limit=JOURNAL_LIMIT, newest_first=True)
        return self.page(view, "console_journal.html", 400 if errors else 200, filters=filters, errors=errors,
                         records=records, verdicts=VERDICTS, limit=JOURNAL_LIMIT)

    def _exchange(self, session: str) -> list[dict]:
        records = self.parts.journal.query(session_id=session, include_body=True, limit=EXCHANGE_LIMIT)
        if not records:
            raise PageError(404, "console.exchange.none", session=session)
        return records

    def exchange(self, view: View, outcome: resend.Outcome | None = None) -> Page:
        session = view.params["session"]
        hops = []
        for record in self._exchange(session):
            body = base64.b64decode(record["body_base64"]) if record["body_base64"] is not None else None
            hops.append({"record": record, "shown": xmlview.show(body) if body is not None else None,
                         "ms": _ms(record["started_at"], record["finished_at"]),
                         "fault": CATALOGUE.get(record["fault_code"] or "")})
        return self.page(view, "console_exchange.html", session=session, hops=hops, outcome=outcome,
                         resendable=any(h["record"]["hop"] == "request-in" and h["shown"] for h in hops))

    def download(self, view: View) -> Download:
        self.who(view)
        name = view.params["file"]
        seq = name[:-len(".xml")] if name.endswith(".xml") else ""
        record = next((r for r in self._exchange(view.params["session"]) if seq.isdigit() and r["seq"] == int(seq)),
                      None)
        if record is None or record["body_base64"] is None:
            raise PageError(404, "console.exchange.no_bytes")
        return Download(base64.b64decode(record["body_base64"]), "application/xml",
                        f"{view.params['session']}-{record['seq']}-{record['hop']}.xml")

    def resend(self, view: View) -> Page:
        self.who(view, OPERATOR)
        first = next((r for r in self._exchange(view.params["session"])
                      if r["hop"] == "request-in" and r["body_base64"] is not None), None)
        if first is None:
            raise PageError(409, "console.exchange.no_bytes")
        outcome = resend.resend(self.parts.base_url(), self.parts.services(first["service_id"]),
                                base64.b64decode(first["body_base64"]))
        return self.exchange(view, outcome)

    # -- the AsyncChannel queue -----------------------------------------------------------------------

    def queue(self, view: View, notice: str | None = None, status: int = 200) -> Page:
        state = view.query.get("state") or None
        if state is not None and state not in STATES:
            raise PageError(400, "console.queue.bad_state", states=", ".join(STATES))
        messages = self.parts.queue.list(state=state, limit=JOURNAL_LIMIT)
        return self.page(view, "console_queue.html", status, messages=messages, states=STATES, state=state,
                         notice=notice, refused=status >= 400, ON_DELIVERY=ON_DELIVERY,
                         DELIVERED=DELIVERED)

    def queue_change(self, view: View) -> Page:
        signed = self.who(view, OPERATOR)
        message_id, action = view.params["message"], view.path[2]
        now = self.parts.clock()
        try:
            if action == "stop":
                changed = self.parts.queue.stop(message_id, now, f"stopped by {signed.name} in the console")
            else:
                changed = self.parts.queue.retry(message_id, now)
        except NotYours:
            raise PageError(404, "console.queue.none", message=message_id) from None
        except NotPending as refusal:
            return self.queue(view, str(refusal), 409)
        return self.queue(view, f"{changed.message_id}: {changed.state} ({changed.status_code})")

    # -- the PKI --------------------------------------------------------------------------------------

    def pki(self, view: View, notice: str | None = None, status: int = 200) -> Page:
        certificates = self.parts.pki.certificates() if self.parts.pki is not None else []
        issuers = sorted({(c["issuer_slug"], c["issuer"]) for c in certificates})
        return self.page(view, "console_pki.html", status, configured=self.parts.pki is not None,
                         certificates=certificates, issuers=issuers, reasons=REASONS, notice=notice,
                         refused=status >= 400)

    def revoke(self, view: View) -> Page:
        self.who(view, OPERATOR)
        if self.parts.pki is None:
            raise PageError(404, "console.pki.none")
        reason = view.form.get("reason") or "unspecified"
        try:
            record = self.parts.pki.revoke(view.params["serial"], reason)
        except KeyError:
            raise PageError(404, "console.pki.unknown", serial=view.params["serial"]) from None
        except ValueError as refusal:
            return self.pki(view, str(refusal), 409)
        return self.pki(view, f"revoked {record['serial']} ({record['reason']}, {record['revoked_at']})")

    def crl(self, view: View) -> Download:
        self.who(view)
        name = view.params["file"]
        slug = name[:-len(".crl")] if name.endswith(".crl") else ""
        if self.parts.pki is None or not slug:
            raise PageError(404, "console.pki.none")
        try:
            body = self.parts.pki.crl(slug)
        except KeyError:
            raise PageError(404, "console.pki.no_ca", slug=slug) from None
        return Download(body, "application/pkix-crl", f"{slug}.crl")

    # -- wiring ---------------------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        return [
            Route("GET", (), self.overview),
            Route("GET", ("login",), self.login_form),
            Route("POST", ("login",), self.login),
            Route("POST", ("logout",), self.logout),
            Route("GET", ("journal",), self.journal),
            Route("GET", ("exchanges", "{session}"), self.exchange),
            Route("GET", ("exchanges", "{session}", "{file}"), self.download),
            Route("POST", ("exchanges", "{session}", "resend"), self.resend),
            Route("GET", ("queue",), self.queue),
            Route("POST", ("queue", "{message}", "stop"), self.queue_change),
            Route("POST", ("queue", "{message}", "retry"), self.queue_change),
            Route("GET", ("faults",), self.faults),
            Route("GET", ("pki",), self.pki),
            Route("POST", ("pki", "{serial}", "revoke"), self.revoke),
            Route("GET", ("pki", "crl", "{file}"), self.crl),
            Route("GET", ("metrics",), self.metrics),
        ]

    @staticmethod
    def explain(error: Exception, view: View):
        if isinstance(error, SignInNeeded):
            if view.method != "GET":
                return PageError(401, "console.refused.signed_out")
            here = "/".join(view.path)
            return Redirect("login" + (f"?next={quote(here)}" if here else ""))
        if isinstance(error, Refused):
            return PageError(error.status, "console.refused.other", reason=str(error))
        return None


def console_pages(parts: ConsoleParts, *, secret: bytes) -> PagesResource:
    """The console's resource, to mount at /console/."""
    console = Console(parts)
    return PagesResource(mount=MOUNT, routes=console.routes(), template_dirs=[HERE / "templates"],
                         message_dirs=[HERE / "messages"], secret=secret, explain=console.explain,
                         languages=LANGUAGES)


def _next(target: str | None) -> str:
    """Where to go after signing in: a page of the console only (no other site, no scheme)."""
    target = target or ""
    if target.startswith(("/", "\\", ".")) or ":" in target or "//" in target:
        return ""
    return target


def _ms(started: str, finished: str) -> float:
    return (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds() * 1000
