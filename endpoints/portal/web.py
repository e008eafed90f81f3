"""The portal's JSON HTTP API under `/portal/api/` (docs/api.md), a twisted.web resource.

Every call runs in a thread (the use cases block on the database and on the gateway, which may be
served by this very reactor). Every answer is JSON; a refusal is `{"error": code, "message": …}`,
never a traceback.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Callable

from twisted.internet import threads
from twisted.web import resource, server

from endpoints.portal.model import PortalError
from endpoints.portal.results import Document
from endpoints.portal.service import Portal
from gateway.web.body import read_body

log = logging.getLogger("shep.portal")
JSON = b"application/json; charset=utf-8"
MAX_BODY = 64 * 1024  # a form or a PEM pair: far below the gateway site's own limit


@dataclass(frozen=True)
class Call:
    """What a route's action gets: the citizen (None on public routes), the request number, the input."""
    iin: str | None
    number: str | None
    body: dict
    query: dict
    token: str | None


@dataclass(frozen=True)
class Route:
    method: str
    path: tuple[str, ...]  # "*" is the request number
    action: Callable[[Portal, Call], dict]
    status: int = 200
    public: bool = False


ROUTES = (
    Route("POST", ("accounts",), lambda p, c: p.register(c.body), 201, public=True),
    Route("POST", ("session",), lambda p, c: p.login(c.body), public=True),
    Route("DELETE", ("session",), lambda p, c: p.logout(c.token)),
    Route("GET", ("services",), lambda p, c: {"services": p.services()}, public=True),
    Route("GET", ("me",), lambda p, c: p.profile(c.iin)),
    Route("GET", ("certificate",), lambda p, c: p.certificate(c.iin)),
    Route("PUT", ("certificate",), lambda p, c: p.replace_certificate(c.iin, c.body)),
    Route("GET", ("certificates",), lambda p, c: {"certificates": p.list_certificates(c.iin)}),
    Route("POST", ("certificates",),
          lambda p, c: p.add_certificate(c.iin, c.body, choose=c.body.get("choose") is not False), 201),
    Route("POST", ("certificates", "*", "choose"), lambda p, c: p.choose_certificate(c.iin, c.number)),
    Route("GET", ("requests",), lambda p, c: {"requests": p.list_requests(c.iin)}),
    Route("POST", ("requests",), lambda p, c: p.create_request(c.iin, c.body), 201),
    Route("POST", ("requests", "refresh"), lambda p, c: {"requests": p.refresh_all(c.iin)}),
    Route("GET", ("requests", "*"),
          lambda p, c: p.refresh(c.iin, c.number) if _flag(c.query, "refresh") else p.get_request(c.iin, c.number)),
    Route("POST", ("requests", "*", "sign"),
          lambda p, c: p.sign_request(c.iin, c.number, c.body.get("certificate"))),
    Route("POST", ("requests", "*", "refresh"), lambda p, c: p.refresh(c.iin, c.number)),
    Route("GET", ("requests", "*", "result"), lambda p, c: p.result(c.iin, c.number)),
    Route("GET", ("requests", "*", "result.xml"), lambda p, c: p.result_document(c.iin, c.number)),
    Route("GET", ("requests", "*", "coupon.pdf"), lambda p, c: p.result_pdf(c.iin, c.number)),
)


def _flag(query: dict, name: str) -> bool:
    return query.get(name, [""])[0].lower() in ("1", "true", "yes")


def _matches(pattern: tuple[str, ...], path: list[str]) -> bool:
    return len(pattern) == len(path) and all(p in ("*", s) for p, s in zip(pattern, path, strict=True))


class PortalResource(resource.Resource):
    """Mounted as `/portal` (the gateway's site: `root.putChild(b"portal", PortalResource(portal))`)."""

    isLeaf = True

    def __init__(self, portal: Portal, *, run: Callable = threads.deferToThread):
        super().__init__()
        self.portal = portal
        self.run = run

    def render(self, request: server.Request):
        method = request.method.decode("ascii", "replace")
        path = [segment.decode("utf-8", "replace") for segment in request.postpath]
        if path and path[-1] == "":
            path.pop()
        authorization = (request.getHeader("authorization") or "").strip()
        scheme, _, token = authorization.partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else None
        body = read_body(request, MAX_BODY)
        query = {key.decode("utf-8", "replace"): [v.decode("utf-8", "replace") for v in values]
                 for key, values in request.args.items()}

        def write(answer: tuple[int, dict | list | Document, dict]) -> None:
            status, payload, headers = answer
            if request._disconnected:
                return
            request.setResponseCode(status)
            request.setHeader(b"Cache-Control", b"no-store")  # tokens and personal data
            for name, value in headers.items():
                request.setHeader(name.encode(), value.encode())
            if isinstance(payload, Document):  # the signed result or its PDF, as a file
                request.setHeader(b"Content-Type", payload.content_type.encode())
                request.setHeader(b"Content-Disposition", f'attachment; filename="{payload.filename}"'.encode())
                request.write(payload.body)
            else:
                request.setHeader(b"Content-Type", JSON)
                request.write(json.dumps(payload, ensure_ascii=False, indent=1).encode("utf-8") + b"\n")
            request.finish()

        def failed(failure) -> None:
            log.error("portal %s %s failed: %s", method, "/".join(path), failure.getTraceback())
            write((500, {"error": "INTERNAL_ERROR", "message": "Внутренняя ошибка портала"}, {}))

        self.run(self.dispatch, method, path, body, token, query).addCallbacks(write, failed)
        return server.NOT_DONE_YET

    def dispatch(self, method: str, path: list[str], body: bytes, token: str | None,
                 query: dict) -> tuple[int, dict | list, dict]:
        """(status, JSON, headers) for one call; runs in a thread."""
        try:
            return self._dispatch(method, path, body, token, query)
        except PortalError as error:
            headers = {}
            if error.status == 401:
                headers["WWW-Authenticate"] = 'Bearer realm="portal"'
            if "retry_after" in error.details:
                headers["Retry-After"] = str(error.details["retry_after"])
            return error.status, error.as_json(), headers

    def _dispatch(self, method, path, body, token, query):
        if path[:1] != ["api"]:
            raise PortalError(404, "NOT_FOUND", "The portal's API is under /portal/api/")
        path = path[1:]
        if not path:
            return 200, {"service": "portal", "routes": [f"{r.method} /portal/api/{'/'.join(r.path)}"
                                                         .replace("*", "{number}") for r in ROUTES]}, {}
        candidates = [route for route in ROUTES if _matches(route.path, path)]
        # Literal segments win over the request number ("requests/refresh").
        candidates.sort(key=lambda route: route.path.count("*"))
        route = next((r for r in candidates if r.method == method), None)
        if route is None:
            if candidates:
                allowed = ", ".join(sorted({r.method for r in candidates if r.path == candidates[0].path}))
                raise PortalError(405, "METHOD_NOT_ALLOWED", f"{method} is not allowed here; use {allowed}")
            raise PortalError(404, "NOT_FOUND", f"/portal/api/{'/'.join(path)}: no such resource")
        if body is None:
            raise PortalError(413, "BODY_TOO_LARGE", f"the request body is limited to {MAX_BODY} bytes")
        iin = None if route.public else self.portal.authenticate(token)
        number = path[route.path.index("*")] if "*" in route.path else None
        answer = route.action(self.portal, Call(iin, number, _json_object(body), query, token))
        return route.status, answer, {}


def _json_object(body: bytes) -> dict:
    if not body.strip():
        return {}
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise PortalError(400, "INVALID_JSON", "The body must be a JSON object (UTF-8)") from None
    if not isinstance(value, dict):
        raise PortalError(400, "INVALID_JSON", "The body must be a JSON object")
    return value
