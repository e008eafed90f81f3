"""The employee's side of the АЖО (diagram 2) as a JSON API under `/clinic/api/`, over the use cases of
`desk.py` (the pages call the same ones):

    POST /login                          process 1: {"iin", "password"} → {"token", …}; 401 when wrong
    GET  /persons/<iin>                  processes 2–3, condition 1: the person from ЖТ ММБ; 404 (process 4)
    POST /requests                       processes 2–4: {"iin", "reason", "districtNumber"?,
                                         "representativeIin"?} → 201 draft form completed from ЖТ ММБ;
                                         404 when the person is not there
    GET  /requests?list=…                incoming (every one) | registered | refused | answered, newest first
    POST /requests/<n>/sign              processes 5–8: the employee's EDS, registration, grounds, result
    GET  /requests/<n>                   the request and its result (n: E-… or the registration number)
    GET  /requests/<n>/coupon.pdf        process 8: the paper coupon
    GET  /requests/<n>/result.xml        the signed coupon or refusal
    GET  /register?iin=… | ?clinicBin=…  the register of attached population (РПН)

Every call but login carries `Authorization: Bearer <token>`; an employee sees their own clinic's
requests and register. Errors are {"error": {"code", "message", "messageKk"?, "detail"?}}.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date, datetime

from twisted.internet import threads
from twisted.web import resource, server

from gateway.web.body import read_body
from endpoints.provider.desk import Desk, DeskError, Session
from endpoints.provider.store import COMPLETED, REFUSED

log = logging.getLogger("shep.provider.api")
JSON = "application/json; charset=utf-8"


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    body: bytes


@dataclass(frozen=True)
class Call:
    """What a handler gets: the request as plain data (handlers run in threads, away from twisted's objects)."""
    method: str
    path: list[str]
    query: dict[str, str]
    body: bytes | None  # None: larger than the site accepts
    token: str | None


def _json(status: int, data) -> Reply:
    def default(value):
        if isinstance(value, (date, datetime)):
            return value.isoformat()
        raise TypeError(type(value).__name__)
    return Reply(status, JSON, json.dumps(data, ensure_ascii=False, indent=1, default=default).encode("utf-8"))


class ClinicApi(resource.Resource):
    isLeaf = True

    def __init__(self, desk: Desk, *, base_path: str = "/clinic/api"):
        super().__init__()
        self.desk = desk
        self.base_path = base_path.rstrip("/")

    # --- twisted side ---------------------------------------------------------------------------------

    def render(self, request: server.Request):
        auth = (request.getHeader(b"authorization") or b"").decode("latin-1")
        call = Call(method=request.method.decode("ascii", "replace"),
                    path=[segment.decode("utf-8", "replace") for segment in request.postpath if segment],
                    query={k.decode(): v[0].decode("utf-8", "replace") for k, v in request.args.items() if v},
                    body=read_body(request),
                    token=auth[7:].strip() if auth.lower().startswith("bearer ") else None)

        def write(reply: Reply) -> None:
            if request._disconnected:
                return
            request.setResponseCode(reply.status)
            request.setHeader(b"Content-Type", reply.content_type.encode())
            request.setHeader(b"Cache-Control", b"no-store")  # personal data
            request.write(reply.body)
            request.finish()

        def failed(failure) -> Reply:
            log.error("%s %s failed: %s", call.method, "/".join(call.path), failure.getTraceback())
            return _json(500, {"error": {"code": "INTERNAL_ERROR", "message": "Внутренняя ошибка АЖО"}})

        threads.deferToThread(self.handle, call).addErrback(failed).addCallback(write)
        return server.NOT_DONE_YET

    # --- routing ----------------------------------------------------------------------------------------

    def handle(self, call: Call) -> Reply:
        try:
            if call.body is None:
                raise DeskError(413, "BODY_TOO_LARGE", "тело запроса больше, чем принимает сервер",
                                "сұраныс денесі сервер қабылдайтыннан үлкен")
            return self._route(call)
        except DeskError as error:
            return _json(error.status, error.body())

    def _route(self, call: Call) -> Reply:
        path, method, desk = call.path, call.method, self.desk
        if path == ["login"] and method == "POST":
            body = self._body(call)
            return _json(200, desk.login(body.get("iin"), body.get("password")))
        session = desk.authenticate(call.token)
        if path == ["requests"] and method == "POST":
            return self.create(call, session)
        if path == ["requests"] and method == "GET":
            return _json(200, {"requests": desk.requests(session, call.query.get("list", "incoming"))})
        if len(path) == 2 and path[0] == "persons" and method == "GET":
            return _json(200, {"person": desk.lookup(session, path[1])})
        if path == ["register"] and method == "GET":
            return _json(200, {"attachments": desk.register(
                session, iin=call.query.get("iin"), clinic_bin=call.query.get("clinicBin"),
                active_only=call.query.get("active") == "1")})
        if len(path) in (2, 3) and path[0] == "requests":
            number, action = path[1], (path[2] if len(path) == 3 else None)
            if (action, method) == (None, "GET"):
                return self._shown(desk.show(session, number))
            if (action, method) == ("sign", "POST"):
                return self._shown(desk.sign(session, number))
            if (action, method) == ("coupon.pdf", "GET"):
                return Reply(200, "application/pdf", desk.coupon_pdf(session, number))
            if (action, method) == ("result.xml", "GET"):
                return Reply(200, "application/xml; charset=utf-8", desk.result_xml(session, number))
        raise DeskError(404, "NOT_FOUND", f"нет такого ресурса: {method} {self.base_path}/{'/'.join(path)}")

    def _body(self, call: Call) -> dict:
        try:
            body = json.loads(call.body or b"{}")
        except ValueError:
            raise DeskError(400, "BAD_REQUEST", "тело запроса должно быть JSON-объектом") from None
        if not isinstance(body, dict):
            raise DeskError(400, "BAD_REQUEST", "тело запроса должно быть JSON-объектом")
        return body

    def create(self, call: Call, session: Session) -> Reply:
        created = self.desk.create(session, self._body(call))
        number = created["requestNumber"]
        created["links"] = {"sign": f"{self.base_path}/requests/{number}/sign",
                            "self": f"{self.base_path}/requests/{number}"}
        return _json(201, created)

    def _shown(self, data: dict) -> Reply:
        number, links = data["number"], {}
        if data["status"] == COMPLETED:
            links["couponPdf"] = f"{self.base_path}/requests/{number}/coupon.pdf"
        if data["status"] in (COMPLETED, REFUSED):
            links["resultXml"] = f"{self.base_path}/requests/{number}/result.xml"
        return _json(200, {**data, "links": links})
