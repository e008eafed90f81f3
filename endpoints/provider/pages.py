"""The clinic's workstation pages under `/clinic/` (docs/web.md): the employee's side of diagram 2 and
§9 of the regulation on screen, in Kazakh and Russian. Every action calls the same use case as the JSON
API (`desk.Desk`), so the two never disagree; this module only turns forms into its inputs and its
answers and refusals into pages.

  /login, /logout          process 1 (the lockout)
  /requests/new            process 2: the recipient's IIN; /requests/lookup: process 3, condition 1, process 4
  /requests                process 5: the form completed from ЖТ ММБ → /requests/{n}/sign, «қол қою»
  /requests?list=…         incoming, registered, refused, answered; «ашу» opens one (§9)
  /requests/{n}            its result: the coupon (process 8) or the refusal (process 7); .pdf and .xml
  /attachments             the attached population of the clinic's districts
"""
from __future__ import annotations

import re
from pathlib import Path

from twisted.web import resource, server

from endpoints.provider.config import REASONS
from endpoints.provider.desk import LISTS, Desk, DeskError, Session
from endpoints.provider.store import DRAFT
from gateway.web.pages.i18n import moment
from gateway.web.pages.resource import Download, Page, PageError, PagesResource, Redirect, Route, View

HERE = Path(__file__).resolve().parent
TOKEN_COOKIE = "clinic_session"
_SAFE_NEXT = re.compile(r"^[A-Za-z0-9_./=?&-]{0,200}$")
# DeskError code → the catalogue key of its page
REFUSALS = {
    "ATT-201": "clinic.refusal.not_in_registry", "REQUEST_NOT_FOUND": "clinic.refusal.not_found",
    "NO_COUPON": "clinic.refusal.no_coupon", "NOT_DECIDED": "clinic.refusal.not_decided",
    "ALREADY_DECIDED": "clinic.refusal.decided", "NOT_A_DRAFT": "clinic.refusal.decided",
    "REGISTRY_UNAVAILABLE": "clinic.refusal.registry_down", "COUPON_FONT_MISSING": "clinic.refusal.no_font",
    "BAD_REQUEST": "clinic.refusal.invalid", "FORBIDDEN": "clinic.refusal.forbidden",
}


class ClinicPages:
    """The handlers: each reads the form, calls the Desk, and answers a page, a redirect or a file."""

    def __init__(self, desk: Desk):
        self.desk = desk
        self.routes = (
            Route("GET", (), self.home),
            Route("GET", ("login",), self.login_form), Route("POST", ("login",), self.login),
            Route("POST", ("logout",), self.logout),
            Route("GET", ("requests", "new"), self.new),
            Route("POST", ("requests", "lookup"), self.lookup),
            Route("GET", ("requests",), self.lists), Route("POST", ("requests",), self.create),
            Route("GET", ("requests", "{number}"), self.show),
            Route("GET", ("requests", "{number}", "sign"), self.sign_form),
            Route("POST", ("requests", "{number}", "sign"), self.sign),
            Route("GET", ("requests", "{number}", "coupon.pdf"), self.coupon_pdf),
            Route("GET", ("requests", "{number}", "result.xml"), self.result_xml),
            Route("GET", ("attachments",), self.attachments),
        )

    # -- helpers -------------------------------------------------------------------------------------

    def _session(self, view: View) -> Session:
        """The logged-in employee; a missing or expired login is DeskError AUTH_REQUIRED (→ the login page)."""
        return self.desk.authenticate(view.cookie(TOKEN_COOKIE))

    @staticmethod
    def _page(template: str, session: Session | None, status: int = 200, **context) -> Page:
        return Page(template, {"session": session, "reasons": REASONS, "lists": tuple(LISTS), "refusal": None,
                               "refusal_params": {}, "errors": {}, **context}, status)

    @staticmethod
    def _next(view: View) -> str:
        wanted = view.form.get("next") or view.query.get("next", "")
        return wanted if _SAFE_NEXT.match(wanted) and not wanted.startswith("/") and ".." not in wanted else ""

    # -- process 1 -----------------------------------------------------------------------------------

    def home(self, view: View):
        return self._page("home.html", self._session(view))

    def login_form(self, view: View, *, status: int = 200, refusal: str | None = None, params=None, iin: str = ""):
        return self._page("login.html", None, status, refusal=refusal, refusal_params=params or {}, iin=iin,
                          next=self._next(view))

    def login(self, view: View):
        iin = view.form.get("iin").strip()
        try:
            answer = self.desk.login(iin, view.form.get("password"))
        except DeskError as error:
            if error.code == "ACCOUNT_LOCKED":
                return self.login_form(view, status=401, refusal="clinic.refusal.locked", iin=iin,
                                       params={"attempts": self.desk.config.lockout_attempts,
                                               "until": moment(error.detail["lockedUntil"])})
            if error.code == "AUTH_FAILED":
                return self.login_form(view, status=401, refusal="clinic.refusal.auth", iin=iin)
            raise
        view.rotate_session()
        view.set_cookie(TOKEN_COOKIE, answer["token"], max_age=answer["expiresIn"])
        return Redirect(self._next(view))

    def logout(self, view: View):
        self.desk.logout(view.cookie(TOKEN_COOKIE))
        view.clear_cookie(TOKEN_COOKIE)
        view.rotate_session()
        return Redirect("login")

    # -- processes 2–5 -------------------------------------------------------------------------------

    def new(self, view: View, *, status: int = 200, refusal: str | None = None, errors=None):
        return self._page("new.html", self._session(view), status, refusal=refusal, errors=errors or {},
                          iin=view.form.text("iin") or "")

    def lookup(self, view: View):
        session = self._session(view)
        iin = view.form.text("iin") or ""
        try:
            person = self.desk.lookup(session, iin)
        except DeskError as error:
            if error.code == "ATT-201":  # process 4
                return self.new(view, status=404, refusal=REFUSALS[error.code])
            if error.code == "BAD_REQUEST":
                return self.new(view, status=400, refusal=REFUSALS[error.code],
                                errors={"iin": view.t("clinic.field.iin")})
            raise
        return self._form(view, session, person)

    def _form(self, view: View, session: Session, person: dict, *, status: int = 200, errors=None):
        return self._page("form.html", session, status, person=person, errors=errors or {},
                          values=view.form.fields)

    def create(self, view: View):
        session = self._session(view)
        form = view.form
        body = {"iin": form.text("iin") or "", "reason": form.get("reason") or "FREE_CHOICE",
                "districtNumber": form.text("district") or None,
                "representativeIin": form.text("representative") or None}
        try:
            created = self.desk.create(session, body)
        except DeskError as error:
            if error.code == "BAD_REQUEST" and error.detail.get("field") != "iin":
                person = self.desk.lookup(session, body["iin"])
                name = {"representativeIin": "representative", "reason": "reason"}[error.detail["field"]]
                return self._form(view, session, person, status=400,
                                  errors={name: view.t(f"clinic.field.{name}")})
            raise
        return Redirect(f"requests/{created['requestNumber']}/sign")

    def sign_form(self, view: View):
        session = self._session(view)
        request = self.desk.show(session, view.params["number"])
        if request["status"] != DRAFT:
            return Redirect(f"requests/{request['number']}")
        return self._page("sign.html", session, request=request)

    def sign(self, view: View):
        done = self.desk.sign(self._session(view), view.params["number"])
        return Redirect(f"requests/{done['number']}")

    # -- §9: the lists and «ашу» ---------------------------------------------------------------------

    def lists(self, view: View):
        session = self._session(view)
        chosen = view.query.get("list", "incoming")
        return self._page("requests.html", session, chosen=chosen, requests=self.desk.requests(session, chosen))

    def show(self, view: View):
        session = self._session(view)
        return self._page("request.html", session, request=self.desk.show(session, view.params["number"]))

    def coupon_pdf(self, view: View):
        number = view.params["number"]
        return Download(self.desk.coupon_pdf(self._session(view), number), "application/pdf", f"coupon-{number}.pdf")

    def result_xml(self, view: View):
        number = view.params["number"]
        return Download(self.desk.result_xml(self._session(view), number), "application/xml", f"result-{number}.xml")

    def attachments(self, view: View):
        session = self._session(view)
        people = self.desk.register(session, clinic_bin=session.clinic.bin, active_only=True)
        districts = [(district, [p for p in people if p["district"] == district.number])
                     for district in session.clinic.districts]
        return self._page("attachments.html", session, districts=districts, total=len(people))

    # -- refusals not handled above ------------------------------------------------------------------

    def explain(self, error: Exception, view: View):
        if not isinstance(error, DeskError):
            return None
        if error.code == "AUTH_REQUIRED":
            wanted = "/".join(view.path) if view.method == "GET" else ""
            if wanted and view.query.get("list"):
                wanted += f"?list={view.query['list']}"
            return Redirect(f"login?next={wanted}" if wanted and _SAFE_NEXT.match(wanted) else "login")
        known = error.code in REFUSALS
        return PageError(error.status, REFUSALS.get(error.code, "clinic.refusal.other"),
                         detail=error.code if known else f"{error.code}: {error.message}")


class ClinicRoot(resource.Resource):
    """`/clinic`: its named children (`async`, `api`) as they are, every other path the pages."""

    def __init__(self, pages: PagesResource, children: dict[bytes, resource.Resource]):
        super().__init__()
        self.pages = pages
        for name, child in children.items():
            self.putChild(name, child)

    def getChild(self, path: bytes, request: server.Request) -> resource.Resource:
        request.postpath.insert(0, request.prepath.pop())  # the pages see their whole path
        return self.pages

    def render(self, request: server.Request):
        return self.pages.render(request)


def clinic_pages(desk: Desk, *, secret: bytes, **options) -> PagesResource:
    """The employees' pages at `/clinic/` (their JSON API stays a child of ClinicRoot under `/clinic/api/`)."""
    pages = ClinicPages(desk)
    return PagesResource(mount="/clinic/", routes=pages.routes, template_dirs=[HERE / "templates"],
                         message_dirs=[HERE / "messages"], secret=secret, explain=pages.explain, **options)
