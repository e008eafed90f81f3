"""The portal's pages under `/portal/` (docs/web.md): the citizen's side of diagram 1 on screen, §8 of
the regulation step by step, in Kazakh and Russian. Every action calls the same use case as the JSON
API (`service.Portal`), so the two never disagree; this module only turns forms into its inputs and its
answers and refusals into pages.

  /                          the service card («"online" қызметіне тапсырыс беру», call centre 1414)
  /register, /login, /logout (pre), process 1, condition 1 → process 2 (lockout)
  /requests/new              process 3: the form, «Сұрауды жіберу»
  /requests/{n}/sign         process 3: the EDS certificate chosen, what is signed; «қол қою» (condition 2, process 5)
  /requests, /requests/{n}   §8 step 8: IIN, request number, service type, status, deadline; «мәртебені жаңарту»
  /requests/{n}/result       «нәтижесін көру»: the coupon (or refusal), its signature; .xml and .pdf downloads
  /certificates              the citizen's EDS certificates: choose one, upload a .p12
"""
from __future__ import annotations

import re
from pathlib import Path

from twisted.web import resource

from endpoints.portal import attachment
from endpoints.portal.model import REFUSED, SERVICE_NAMES, PortalError
from endpoints.portal.service import Portal
from endpoints.portal.signer import REASONS_RU
from gateway.web.pages.i18n import moment
from gateway.web.pages.resource import Download, Page, PageError, PagesResource, Redirect, Route, View

HERE = Path(__file__).resolve().parent
TOKEN_COOKIE = "portal_session"
_SAFE_NEXT = re.compile(r"^[A-Za-z0-9_./-]{0,200}$")
ADDRESS = ("region", "city", "district", "street", "building", "flat")
CHILD = ("iin", "surname", "name", "patronymic")
EDS_KEYS = frozenset(f"portal.eds.{code}" for code in REASONS_RU)
DISTRICT_KINDS = frozenset(f"portal.district_kind.{kind}" for kind in ("therapeutic", "paediatric", "general"))
# PortalError code → (catalogue key of the refusal, HTTP status of its page)
REFUSALS = {
    "AUTH_REFUSED": "portal.refusal.auth", "ALREADY_REGISTERED": "portal.refusal.registered",
    "VALIDATION_FAILED": "portal.refusal.invalid", "REQUEST_NOT_FOUND": "portal.refusal.not_found",
    "NOT_A_DRAFT": "portal.refusal.not_a_draft", "RESULT_NOT_READY": "portal.refusal.not_ready",
    "NO_CERTIFICATE": "portal.refusal.no_certificate", "NO_COUPON": "portal.refusal.no_coupon",
    "UNKNOWN_SERVICE": "portal.refusal.unknown_service", "GATEWAY_REFUSED": "portal.refusal.gateway_refused",
    "GATEWAY_UNAVAILABLE": "portal.refusal.gateway_unavailable", "EDS_NOT_CONFIRMED": "portal.refusal.eds",
    "PERSON_NOT_FOUND": "portal.refusal.person_not_found", "UNDERAGE": "portal.refusal.underage",
    "REGISTRY_UNAVAILABLE": "portal.refusal.registry_unavailable",
}
# What ЖТ ММБ says of the IIN: the registration form again, with the reason.
_NOT_REGISTRABLE = frozenset({"PERSON_NOT_FOUND", "UNDERAGE"})


class PortalPages:
    """The handlers: each reads the form, calls the Portal, and answers a page or a redirect."""

    def __init__(self, portal: Portal):
        self.portal = portal
        self.routes = (
            Route("GET", (), self.home),
            Route("GET", ("login",), self.login_form), Route("POST", ("login",), self.login),
            Route("GET", ("register",), self.register_form), Route("POST", ("register",), self.register),
            Route("POST", ("logout",), self.logout),
            Route("GET", ("requests",), self.requests), Route("POST", ("requests",), self.create),
            Route("POST", ("requests", "refresh"), self.refresh_all),
            Route("GET", ("requests", "new"), self.new),
            Route("GET", ("requests", "{number}"), self.status),
            Route("POST", ("requests", "{number}", "refresh"), self.refresh),
            Route("GET", ("requests", "{number}", "sign"), self.sign_form),
            Route("POST", ("requests", "{number}", "sign"), self.sign),
            Route("GET", ("requests", "{number}", "result"), self.result),
            Route("GET", ("requests", "{number}", "result.xml"), self.result_xml),
            Route("GET", ("requests", "{number}", "coupon.pdf"), self.coupon_pdf),
            Route("GET", ("certificates",), self.certificates),
            Route("POST", ("certificates",), self.upload),
            Route("POST", ("certificates", "{id}", "choose"), self.choose),
        )

    # -- helpers -------------------------------------------------------------------------------------

    def _citizen(self, view: View) -> dict:
        """The logged-in citizen's profile; a missing or expired login is PortalError UNAUTHENTICATED."""
        return self.portal.profile(self.portal.authenticate(view.cookie(TOKEN_COOKIE)))

    def _maybe_citizen(self, view: View) -> dict | None:
        try:
            return self._citizen(view)
        except PortalError:
            return None

    def _page(self, template: str, citizen: dict | None, status: int = 200, **context) -> Page:
        return Page(template, {"citizen": citizen, "service_name": SERVICE_NAMES, "reasons": attachment.REASONS,
                               "eds_codes": EDS_KEYS, "district_kinds": DISTRICT_KINDS, "refusal": None,
                               "refusal_params": {}, **context}, status)

    def _errors(self, view: View, error: PortalError) -> dict[str, str]:
        """The refused fields, keyed as the form names them, each with its hint in the page's language."""
        hints = {}
        for name in error.details.get("fields", {}):
            base = name.rpartition(".")[2]
            key = f"portal.field.{base}"
            try:
                hints[name] = view.t(key, min=self.portal.settings.password_min_length)
            except KeyError:
                hints[name] = view.t("portal.field.other")
        return hints

    # -- the service card, accounts ------------------------------------------------------------------

    def home(self, view: View):
        return self._page("home.html", self._maybe_citizen(view), service=self.portal.services()[0])

    def login_form(self, view: View, *, status: int = 200, refusal: str | None = None, params=None,
                   iin: str = ""):
        return self._page("login.html", None, status, refusal=refusal, refusal_params=params or {}, iin=iin,
                          next=self._next(view), registered=view.query.get("registered") == "1")

    def login(self, view: View):
        iin = view.form.get("iin").strip()
        try:
            session = self.portal.login({"iin": iin, "password": view.form.get("password")})
        except PortalError as error:
            if error.code == "ACCOUNT_LOCKED":
                return self.login_form(view, status=401, refusal="portal.refusal.locked", iin=iin,
                                       params={"attempts": self.portal.settings.lockout_attempts,
                                               "until": moment(error.details["locked_until"])})
            if error.code in ("AUTH_REFUSED", "VALIDATION_FAILED"):
                return self.login_form(view, status=401 if error.code == "AUTH_REFUSED" else 400,
                                       refusal=REFUSALS[error.code], iin=iin)
            raise
        view.rotate_session()
        view.set_cookie(TOKEN_COOKIE, session["token"], max_age=self.portal.settings.session_minutes * 60)
        return Redirect(self._next(view))

    def _next(self, view: View) -> str:
        wanted = view.form.get("next") or view.query.get("next", "")
        return wanted if _SAFE_NEXT.match(wanted) and not wanted.startswith("/") and ".." not in wanted else ""

    def register_form(self, view: View, *, status: int = 200, refusal: str | None = None, errors=None):
        return self._page("register.html", None, status, refusal=refusal, errors=errors or {},
                          values=view.form.fields, min_password=self.portal.settings.password_min_length)

    def register(self, view: View):
        form = view.form
        body = {"iin": form.get("iin").strip(), "password": form.get("password"), "surname": form.text("surname"),
                "name": form.text("name"), "patronymic": form.text("patronymic")}
        if form.text("birth_date"):
            body["birth_date"] = form.text("birth_date")
        try:
            self.portal.register(body)
        except PortalError as error:
            if error.code in ("VALIDATION_FAILED", "ALREADY_REGISTERED") or error.code in _NOT_REGISTRABLE:
                return self.register_form(view, status=error.status, refusal=REFUSALS[error.code],
                                          errors=self._errors(view, error))
            raise
        return Redirect("login?registered=1")

    def logout(self, view: View):
        token = view.cookie(TOKEN_COOKIE)
        if token:
            self.portal.logout(token)
        view.clear_cookie(TOKEN_COOKIE)
        view.rotate_session()
        return Redirect("")

    # -- process 3: the form -------------------------------------------------------------------------

    def new(self, view: View, *, status: int = 200, errors=None, refusal: str | None = None):
        citizen = self._citizen(view)
        return self._page("form.html", citizen, status, service=self.portal.services()[0], errors=errors or {},
                          values=view.form.fields, refusal=refusal)

    def create(self, view: View):
        self._citizen(view)
        form = view.form
        body = {"service": "PHC_ATTACHMENT", "clinic_bin": form.get("clinic_bin").strip(),
                "district": form.text("district"), "reason": form.get("reason")}
        address = {name: form.text(f"address.{name}") for name in ADDRESS if form.text(f"address.{name}")}
        if address:
            body["address"] = address
        child = {name: form.text(f"child.{name}") for name in CHILD if form.text(f"child.{name}")}
        if child:
            body["child"] = child
        iin = self.portal.authenticate(view.cookie(TOKEN_COOKIE))
        try:
            created = self.portal.create_request(iin, body)
        except PortalError as error:
            if error.code == "VALIDATION_FAILED":
                return self.new(view, status=400, errors=self._errors(view, error), refusal=REFUSALS[error.code])
            raise
        return Redirect(f"requests/{created['number']}/sign")

    # -- process 3 (the certificate), condition 2, process 5 ---------------------------------------------

    def sign_form(self, view: View, *, status: int = 200):
        citizen = self._citizen(view)
        request = self.portal.get_request(citizen["iin"], view.params["number"])
        if request["status"] != "DRAFT":
            return Redirect(f"requests/{request['number']}")
        return self._page("sign.html", citizen, status, request=request,
                          certificates=self.portal.list_certificates(citizen["iin"]))

    def sign(self, view: View):
        citizen = self._citizen(view)
        number = view.params["number"]
        try:
            self.portal.sign_request(citizen["iin"], number, view.form.text("certificate"))
        except PortalError as error:
            if error.code == "EDS_NOT_CONFIRMED":  # process 4: the status screen with every reason
                return self._status_page(citizen, error.details["request"], status=422,
                                         refusal="portal.refusal.eds")
            raise
        return Redirect(f"requests/{number}")

    # -- the status screen ---------------------------------------------------------------------------

    def requests(self, view: View):
        citizen = self._citizen(view)
        return self._page("requests.html", citizen, requests=self.portal.list_requests(citizen["iin"]))

    def refresh_all(self, view: View):
        self.portal.refresh_all(self._citizen(view)["iin"])
        return Redirect("requests")

    def status(self, view: View):
        citizen = self._citizen(view)
        return self._status_page(citizen, self.portal.get_request(citizen["iin"], view.params["number"]))

    def _status_page(self, citizen: dict, request: dict, *, status: int = 200, refusal: str | None = None):
        if refusal is None and request["status"] == "ERROR" and request["reasons"]:
            refusal = "portal.refusal.eds" if any(r.get("code", "").startswith(("CERT_", "IIN_"))
                                                  for r in request["reasons"]) else "portal.refusal.gateway_refused"
        return self._page("status.html", citizen, status, request=request, refusal=refusal)

    def refresh(self, view: View):
        citizen = self._citizen(view)
        self.portal.refresh(citizen["iin"], view.params["number"])
        return Redirect(f"requests/{view.params['number']}")

    # -- the result ----------------------------------------------------------------------------------

    def result(self, view: View):
        citizen = self._citizen(view)
        answer = self.portal.result(citizen["iin"], view.params["number"])
        return self._page("result.html", citizen, answer=answer, request=answer["request"],
                          refused=answer["type"] == "REFUSAL" or answer["request"]["status"] == REFUSED)

    def result_xml(self, view: View):
        document = self.portal.result_document(self._citizen(view)["iin"], view.params["number"])
        return Download(document.body, "application/xml", document.filename)

    def coupon_pdf(self, view: View):
        document = self.portal.result_pdf(self._citizen(view)["iin"], view.params["number"])
        return Download(document.body, document.content_type, document.filename)

    # -- the citizen's certificates ------------------------------------------------------------------

    def certificates(self, view: View, *, status: int = 200, errors=None, refusal: str | None = None):
        citizen = self._citizen(view)
        return self._page("certificates.html", citizen, status, errors=errors or {}, refusal=refusal,
                          certificates=self.portal.list_certificates(citizen["iin"]),
                          uploaded=view.query.get("uploaded") == "1", next=self._next(view))

    def upload(self, view: View):
        citizen = self._citizen(view)
        upload = view.form.files.get("pkcs12")
        try:
            self.portal.add_certificate(citizen["iin"], {"pkcs12": upload.data if upload else b"",
                                                         "password": view.form.get("password") or None})
        except PortalError as error:
            if error.code == "VALIDATION_FAILED":
                return self.certificates(view, status=400, errors={"pkcs12": view.t("portal.field.pkcs12")},
                                         refusal=REFUSALS[error.code])
            raise
        back = self._next(view)
        return Redirect(back or "certificates?uploaded=1")

    def choose(self, view: View):
        citizen = self._citizen(view)
        self.portal.choose_certificate(citizen["iin"], view.params["id"])
        return Redirect(self._next(view) or "certificates")

    # -- refusals not handled above ------------------------------------------------------------------

    def explain(self, error: Exception, view: View):
        if not isinstance(error, PortalError):
            return None
        if error.code == "UNAUTHENTICATED":
            wanted = "/".join(view.path) if view.method == "GET" else ""
            return Redirect(f"login?next={wanted}" if wanted and _SAFE_NEXT.match(wanted) else "login")
        if error.code == "ACCOUNT_LOCKED":
            return PageError(401, "portal.refusal.locked", attempts=self.portal.settings.lockout_attempts,
                             until=moment(error.details.get("locked_until")))
        # The gateway's own fault code helps whoever reads the page to the call centre.
        codes = ", ".join(reason["code"] for reason in error.details.get("reasons", []) if reason.get("code"))
        return PageError(error.status, REFUSALS.get(error.code, "portal.refusal.other"),
                         detail=codes or (None if error.code in REFUSALS else error.message))


def portal_pages(portal: Portal, *, secret: bytes, api: resource.Resource | None = None, **options) -> PagesResource:
    """The portal's pages at `/portal/`, with the JSON API (`api`, a PortalResource) under `/portal/api/`."""
    pages = PortalPages(portal)
    return PagesResource(mount="/portal/", routes=pages.routes, template_dirs=[HERE / "templates"],
                         message_dirs=[HERE / "messages"], secret=secret, explain=pages.explain, fallback=api,
                         **options)
