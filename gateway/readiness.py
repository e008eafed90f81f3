"""Readiness (`GET /ready`): can this process serve messages now? Each probe answers "ok" or why not.

Liveness (`/health`) only says the process answers; a load balancer or an orchestrator asks `/ready`
before sending traffic.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Callable

from gateway.journal import Journal

log = logging.getLogger("shep.ready")
OK = "ok"


class Readiness:
    def __init__(self, journal: Journal, security: Callable[[], object | None], clock: Callable[[], datetime]):
        self.journal = journal
        self.security = security  # the GatewaySecurity once listen() has loaded it, else None
        self.clock = clock

    def store(self) -> str:
        """One indexed row of the gateway's own schema (the journal's head): the database answers and holds
        the tables, not merely accepts a connection. Blocking: run it in the work pool."""
        try:
            self.journal.size()
        except Exception as error:  # whatever the driver raises; the details go to the log, not the answer
            log.warning("readiness: the store cannot be read: %s", error)
            return f"unreachable ({type(error).__name__}; see the gateway log)"
        return OK

    def credentials(self) -> str:
        """The gateway's signing key and certificate are loaded, and the certificate is valid now."""
        security = self.security()
        if security is None:
            return "not loaded yet"
        certificate = security.signing.certificate
        now = self.clock()
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            return (f"the gateway certificate is not valid now (valid {certificate.not_valid_before_utc:%Y-%m-%d} "
                    f"to {certificate.not_valid_after_utc:%Y-%m-%d})")
        return OK
