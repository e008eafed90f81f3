"""`OperatorOnly`: a resource of the operator API, served once `OperatorAuth` lets the caller in."""
from __future__ import annotations

import logging

from twisted.web import resource, server

from gateway.operators import REALM, OperatorAuth, Refused
from gateway.web.resources import _json

log = logging.getLogger("shep.operators")
_CHALLENGES = [f'Basic realm="{REALM}", charset="UTF-8"'.encode(), f'Bearer realm="{REALM}"'.encode()]


class OperatorOnly(resource.Resource):
    """Wraps a leaf resource: 401/403 (JSON, logged) unless the caller may act as `role`."""

    isLeaf = True

    def __init__(self, wrapped: resource.Resource, auth: OperatorAuth, role: str, run_in_pool):
        super().__init__()
        self.wrapped = wrapped
        self.auth = auth
        self.role = role
        self.run_in_pool = run_in_pool

    def render(self, request: server.Request):
        proxied = request.getHeader(b"forwarded") is not None or request.getHeader(b"x-forwarded-for") is not None
        try:
            credentials = self.auth.check(request.getHeader(b"authorization"), request.getClientAddress().host,
                                          proxied)
        except Refused as refusal:
            return self._refuse(request, refusal)
        if credentials is None:
            request.shep_operator = None
            return self.wrapped.render(request)
        # PBKDF2 is slow on purpose: off the reactor thread.
        deferred = self.run_in_pool(self.auth.verify, credentials, self.role, request.getClientAddress().host)
        deferred.addCallbacks(lambda operator: self._serve(request, operator.name), self._refused,
                              errbackArgs=(request,))
        deferred.addCallback(self._write, request).addErrback(self._failed, request)
        return server.NOT_DONE_YET

    def _serve(self, request: server.Request, name: str):
        if request._disconnected:
            return server.NOT_DONE_YET
        request.shep_operator = name
        try:
            return self.wrapped.render(request)
        except resource.UnsupportedMethod as unsupported:
            request.setHeader(b"Allow", b", ".join(unsupported.allowedMethods))
            return _json(request, {"error": f"method {request.method.decode('ascii', 'replace')} not allowed"}, 405)

    def _refused(self, failure, request: server.Request) -> bytes:
        failure.trap(Refused)
        return self._refuse(request, failure.value)

    @staticmethod
    def _write(body, request: server.Request) -> None:
        # NOT_DONE_YET: the wrapped resource finishes the request itself.
        if body is not server.NOT_DONE_YET and not request._disconnected:
            request.write(body)
            request.finish()

    @staticmethod
    def _failed(failure, request: server.Request) -> None:
        log.error("unhandled failure: %s", failure.getTraceback())
        if not request._disconnected:
            request.setResponseCode(500)
            request.finish()

    def _refuse(self, request: server.Request, refusal: Refused) -> bytes:
        log.warning("operator API refused %s %s from %s: %s", request.method.decode("ascii", "replace"),
                    request.path.decode("utf-8", "replace"), request.getClientAddress().host, refusal,
                    extra={"status": refusal.status, "client": request.getClientAddress().host})
        if refusal.status == 401:
            request.responseHeaders.setRawHeaders(b"www-authenticate", _CHALLENGES)
        return _json(request, {"error": str(refusal), "status": refusal.status}, refusal.status)
