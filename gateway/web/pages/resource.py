"""`PagesResource`: a party's HTML pages on twisted.web.

A party gives its routes (method, path pattern, handler), its template and catalogue folders, and a
hook turning its own refusals into pages. Each request: the language (`?lang=`, cookie, Kazakh), the
browser session and its CSRF token (every POST must carry it), the form read from the body; the handler
runs in a thread (the use cases block) and answers a `Page`, a `Redirect` or a `Download`. Whatever
goes wrong is a page in the chosen language with its reason: never a traceback.
"""
from __future__ import annotations

import logging
import mimetypes
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import jinja2
from twisted.internet import threads
from twisted.web import resource, server

from gateway.web.pages import forms, i18n, security
# The body as the site buffered it, bounded (a twisted.web helper, not the message bus).
from gateway.web.body import read_body

log = logging.getLogger("shep.web.pages")
HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
MESSAGES = HERE / "messages"
STATIC = HERE / "static"
HTML = b"text/html; charset=utf-8"
MAX_FORM = 256 * 1024
LANG_COOKIE = "lang"
YEAR = 365 * 24 * 3600


@dataclass(frozen=True)
class Page:
    template: str
    context: dict = field(default_factory=dict)
    status: int = 200


@dataclass(frozen=True)
class Redirect:
    """303 See Other to a path under the party's mount ("requests/EGOV-000001")."""
    to: str


@dataclass(frozen=True)
class Download:
    body: bytes
    content_type: str
    filename: str


class PageError(Exception):
    """A refusal shown as the error page: HTTP status, a catalogue key and its parameters."""

    def __init__(self, status: int, key: str, *, detail: str | None = None, **params):
        super().__init__(key)
        self.status = status
        self.key = key
        self.detail = detail
        self.params = params


@dataclass
class View:
    """What a handler sees of the request, and the cookies it sets."""
    method: str
    path: list[str]
    params: dict[str, str]
    query: dict[str, str]
    form: forms.Form
    lang: str
    mount: str
    secure: bool
    cookies: dict[str, str]
    session_id: str
    client: str = ""  # the TCP peer's address
    proxied: bool = False  # a Forwarded or X-Forwarded-For header came with it
    t: Callable[..., str] = lambda key, **params: key  # the catalogue in the page's language
    set_cookies: list[str] = field(default_factory=list)

    def cookie(self, name: str) -> str | None:
        return self.cookies.get(name)

    def set_cookie(self, name: str, value: str, *, max_age: int | None = None, path: str | None = None) -> None:
        self.cookies[name] = value
        self.set_cookies.append(security.cookie(name, value, path=path or self.mount, secure=self.secure,
                                                max_age=max_age))

    def clear_cookie(self, name: str, *, path: str | None = None) -> None:
        self.cookies.pop(name, None)
        self.set_cookies.append(security.cookie(name, "", path=path or self.mount, secure=self.secure, max_age=0))

    def rotate_session(self) -> None:
        """A new browser session (and CSRF token) at login and logout."""
        self.session_id = security.new_session_id()
        self.set_cookie(security.SESSION_COOKIE, self.session_id, path="/")

    def url(self, path: str = "") -> str:
        return self.mount + path


Handler = Callable[[View], "Page | Redirect | Download"]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: tuple[str, ...]  # "{name}" matches one segment, handed to the handler in view.params
    handler: Handler

    def match(self, path: Sequence[str]) -> dict[str, str] | None:
        if len(path) != len(self.pattern):
            return None
        params = {}
        for expected, segment in zip(self.pattern, path, strict=True):
            if expected.startswith("{"):
                if not segment:
                    return None
                params[expected.strip("{}")] = segment
            elif expected != segment:
                return None
        return params


def templates(folders: Iterable[Path]) -> jinja2.Environment:
    """Jinja2 over the party's templates, then the shared ones; autoescaping on, undefined names an error."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader([*map(str, folders), str(TEMPLATES)]),
                             autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["moment"] = i18n.moment
    return env


class PagesResource(resource.Resource):
    """A party's pages, mounted at `mount` ("/portal/"); `explain` turns a party's own exception into a
    PageError or a Page (None: not one of its own, a 500)."""

    isLeaf = True

    def __init__(self, *, mount: str, routes: Sequence[Route], template_dirs: Iterable[Path],
                 message_dirs: Iterable[Path], secret: bytes,
                 explain: Callable[[Exception, View], "PageError | Page | None"] = lambda error, view: None,
                 run: Callable = threads.deferToThread, fallback: resource.Resource | None = None,
                 languages: tuple[str, ...] = i18n.LANGUAGES):
        super().__init__()
        self.mount = mount
        self.routes = tuple(routes)
        self.env = templates(template_dirs)
        self.catalogue = i18n.Catalogue([MESSAGES, *message_dirs], languages)
        self.secret = secret
        self.explain = explain
        self.run = run
        # Paths under the mount that are not pages (the party's JSON API, say) go to this resource.
        self.fallback = fallback
        self.static = {path.name: path.read_bytes() for path in STATIC.iterdir() if path.is_file()}

    # -- twisted.web ---------------------------------------------------------------------------------

    def render(self, request: server.Request):
        path = [segment.decode("utf-8", "replace") for segment in request.postpath]
        if self.fallback is not None and path[:1] == ["api"]:
            return self.fallback.render(request)
        for name, value in security.HEADERS.items():
            request.setHeader(name, value)
        if len(path) == 2 and path[0] == "static" and request.method in (b"GET", b"HEAD"):
            return self._static(request, path[1])
        view, problem = self._view(request, path)

        def write(answer) -> None:
            if request._disconnected:
                return
            status, headers, body = answer
            request.setResponseCode(status)
            for value in view.set_cookies:
                request.responseHeaders.addRawHeader(b"Set-Cookie", value.encode("ascii"))
            for name, value in headers.items():
                request.setHeader(name, value)
            request.write(body)
            request.finish()

        def failed(failure) -> None:
            log.error("%s %s failed: %s", view.method, "/".join(path), failure.getTraceback())
            write(self._error_page(view, PageError(500, "web.error.internal")))

        self.run(self._answer, view, problem).addCallbacks(write, failed)
        return server.NOT_DONE_YET

    def _static(self, request: server.Request, name: str):
        body = self.static.get(name)
        if body is None:
            request.setResponseCode(404)
            request.setHeader("Content-Type", "text/plain; charset=utf-8")
            return b"not found\n"
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        request.setHeader("Content-Type", f"{kind}; charset=utf-8" if kind.startswith("text/") else kind)
        request.setHeader("Cache-Control", "public, max-age=3600")
        return body

    def _view(self, request: server.Request, path: list[str]) -> tuple[View, PageError | None]:
        """The View of this request, and the refusal it already earned (form, CSRF), if any."""
        cookies = {}
        for name in (security.SESSION_COOKIE, LANG_COOKIE):
            value = request.getCookie(name.encode())
            if value is not None:
                cookies[name] = value.decode("ascii", "replace")
        query = {key.decode("utf-8", "replace"): values[0].decode("utf-8", "replace")
                 for key, values in request.args.items()}
        asked = query.get("lang")
        view = View(method=request.method.decode("ascii", "replace"), path=path, params={}, query=query,
                    form=forms.Form(), lang=self.catalogue.choose(asked, cookies.get(LANG_COOKIE)), mount=self.mount,
                    secure=request.isSecure(), cookies=cookies, session_id=cookies.get(security.SESSION_COOKIE, ""),
                    client=getattr(request.getClientAddress(), "host", ""),
                    proxied=request.getHeader("forwarded") is not None
                    or request.getHeader("x-forwarded-for") is not None)
        view.t = lambda key, **params: self.catalogue.text(view.lang, key, **params)
        # The party's own cookies (its login, say) are read by name when it asks.
        for name, value in request.received_cookies.items():
            view.cookies.setdefault(name.decode("ascii", "replace"), value.decode("ascii", "replace"))
        if asked in self.catalogue.languages and asked != cookies.get(LANG_COOKIE):
            view.set_cookie(LANG_COOKIE, asked, max_age=YEAR, path="/")
        had_session = bool(view.session_id)
        if not had_session:
            view.rotate_session()
        if view.method != "POST":
            return view, None
        body = read_body(request, MAX_FORM)
        if body is None:
            return view, PageError(413, "web.error.too_large", limit=MAX_FORM // 1024)
        try:
            view.form = forms.parse(body, request.getHeader("content-type"), MAX_FORM)
        except forms.FormError as error:
            return view, PageError(400, "web.error.bad_form", detail=str(error))
        if not had_session or not security.csrf_valid(self.secret, view.session_id,
                                                      view.form.get(security.CSRF_FIELD)):
            return view, PageError(403, "web.error.csrf")
        return view, None

    # -- in a thread ---------------------------------------------------------------------------------

    def _answer(self, view: View, problem: PageError | None) -> tuple[int, dict, bytes]:
        try:
            if problem is not None:
                raise problem
            return self._result(view, self._dispatch(view))
        except PageError as error:
            return self._error_page(view, error)
        except Exception as error:  # the party's own refusals, explained; anything else is a 500
            explained = self.explain(error, view)
            if explained is None:
                raise
            if isinstance(explained, PageError):
                return self._error_page(view, explained)
            return self._result(view, explained)

    def _dispatch(self, view: View):
        path = view.path[:-1] if view.path and view.path[-1] == "" and len(view.path) > 1 else view.path
        path = [] if path == [""] else path
        matched = [(route, params) for route in self.routes if (params := route.match(path)) is not None]
        for route, params in matched:
            if route.method == view.method or (view.method == "HEAD" and route.method == "GET"):
                view.params = params
                return route.handler(view)
        if matched:
            raise PageError(405, "web.error.method")
        raise PageError(404, "web.error.not_found")

    def _result(self, view: View, result) -> tuple[int, dict, bytes]:
        if isinstance(result, Redirect):
            return 303, {"Location": view.url(result.to), "Cache-Control": "no-store"}, b""
        if isinstance(result, Download):
            return 200, {"Content-Type": result.content_type, "Cache-Control": "no-store",
                         "Content-Disposition": f"attachment; filename*=UTF-8''{quote(result.filename)}"}, result.body
        return result.status, {"Content-Type": HTML, "Cache-Control": "no-store"}, self.render_page(view, result)

    def render_page(self, view: View, page: Page) -> bytes:
        # The language switch re-opens this page (a form page also after its POST was refused).
        here = view.url("/".join(view.path))
        kept = "".join(f"&{quote(k)}={quote(v)}" for k, v in view.query.items() if k != "lang")
        context = {"lang": view.lang, "t": view.t, "url": view.url, "csrf_field": security.CSRF_FIELD,
                   "csrf_token": security.csrf_token(self.secret, view.session_id),
                   "languages": [(code, i18n.NAMES[code], f"{here}?lang={code}{kept}")
                                 for code in self.catalogue.languages],
                   "static": lambda name: view.url(f"static/{name}"), **page.context}
        return self.env.get_template(page.template).render(context).encode("utf-8")

    def _error_page(self, view: View, error: PageError) -> tuple[int, dict, bytes]:
        message = self.catalogue.text(view.lang, error.key, **error.params)
        page = Page("error.html", {"status": error.status, "message": message, "detail": error.detail},
                    error.status)
        status, headers, body = self._result(view, page)
        if error.status == 405:
            headers["Allow"] = ", ".join(sorted({r.method for r in self.routes if r.match(view.path) is not None}))
        return status, headers, body
