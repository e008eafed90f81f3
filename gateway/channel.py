"""What both channels share: the inbound request and the reply, journal records of a hop, refusals,
and the bookkeeping (metrics, the log line) around every request."""
from __future__ import annotations

import logging

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Awaitable, Callable

from gateway.context import Environment, MessageContext, Verdict
from gateway.faults import CATALOGUE, Fault
from gateway.journal import Journal, JournalEntry
from gateway.logs import message_logger
from gateway.metrics import Metrics
from gateway.pipeline import HEAD, run_checks
from gateway.security.wss import sign_envelope
from gateway.shapes import Shape
from gateway.soap import fault_envelope

GATEWAY = "gateway"
# Answered late (gateway.lockout_delay_seconds): a guesser's connection waits, the work pool does not.
_GUESSES = {spec.code for spec in CATALOGUE.values()
            if spec.name in ("SENDER_PASSWORD_INVALID", "SENDER_LOCKED_OUT", "ADDRESS_LOCKED_OUT")}


@dataclass
class Reply:
    status: int
    body: bytes
    fault_code: str | None = None
    session_id: str | None = None


@dataclass
class Inbound:
    raw: bytes
    content_type: str | None
    body_too_large: bool = False
    method: str = "POST"
    wss_endpoint: bool = False
    client_address: str | None = None
    address: str = ""  # the path it came to (/bip-sync/, /bip-async/, …): a metrics label


class Channel:
    """Base of SyncChannel and AsyncChannel: `handle` wraps a channel's own `_process` coroutine."""

    name = "channel"
    shapes: dict[str, Shape] = {}
    default_fault: str = ""  # the fault element used before the operation is known

    def __init__(self, env: Environment, journal: Journal, metrics: Metrics, run_in_pool: Callable[..., Any]):
        self.env = env
        self.journal = journal
        self.metrics = metrics
        self.run_in_pool = run_in_pool

    async def handle(self, inbound: Inbound) -> Reply:
        start = time.perf_counter()
        ctx = MessageContext(env=self.env, raw=inbound.raw, method=inbound.method,
                             content_type=inbound.content_type, body_too_large=inbound.body_too_large,
                             wss_endpoint=inbound.wss_endpoint, client_address=inbound.client_address,
                             received_at=self.env.clock(), shapes=self.shapes)
        log = message_logger(f"shep.{self.name}", ctx.session_id)
        try:
            reply = await self._process(ctx)
        except Exception:
            log.exception("internal error")
            reply = await self._internal_error(ctx)
        if reply.fault_code in _GUESSES:
            await self.env.sleep(self.env.settings.lockout_delay_seconds)
        reply.session_id = ctx.session_id
        total = time.perf_counter() - start
        self.metrics.observe_request(inbound.address or self.name, ctx.service.id if ctx.service else None,
                                     reply.fault_code, total)
        # A fault is what an operator looks for: a warning, its code in the line and in the fault_code field.
        log.log(logging.WARNING if reply.fault_code else logging.INFO,
                f"{ctx.shape.name if ctx.shape else 'request'} answered"
                + (f" with fault {reply.fault_code}" if reply.fault_code else ""), extra={
            "service_id": ctx.info.service_id if ctx.info else None,
            "sender_id": ctx.info.sender_id if ctx.info else None,
            "message_id": ctx.info.message_id if ctx.info else None,
            "fault_code": reply.fault_code, "ms": round(total * 1000, 2)})
        return reply

    async def _process(self, ctx: MessageContext) -> Awaitable[Reply]:
        raise NotImplementedError

    async def authenticate(self, ctx: MessageContext) -> Reply | None:
        """HEAD in the work pool, then a password not verified before hashed in the password pool: guesses never
        hold the work pool, where senders verified before are served. The refusal, if HEAD refuses."""
        refused = await self.run_in_pool(self._head, ctx)
        if refused is None and ctx.password_to_verify is not None:
            ctx.password_valid = await self.env.passwords.verify_apart(*ctx.password_to_verify)
        return refused

    def _head(self, ctx: MessageContext) -> Reply | None:
        try:
            run_checks(HEAD, ctx, self.metrics.observe_check)
        except Fault as fault:
            return self.refuse(ctx, fault, [self.entry("request-in", ctx, fault=fault)])
        return None

    def seal(self, ctx: MessageContext, raw: bytes) -> bytes:
        """What the gateway sends: signed with its own certificate when the exchange is a signed one."""
        signed = ctx.signer_cert is not None or ctx.wss_endpoint or (
            ctx.service is not None and ctx.service.require_transport_signature)
        if not signed:
            return raw
        identity = self.env.security.signing
        return sign_envelope(raw, identity.key, identity.certificate, key_info=identity.key_info)

    def refuse(self, ctx: MessageContext, fault: Fault, entries: list[JournalEntry]) -> Reply:
        """The fault envelope for the operation, journalled with the hops that led to it."""
        reply, hop = self.refusal(ctx, fault)
        self.journal.append_many([*entries, hop])
        return reply

    def refusal(self, ctx: MessageContext, fault: Fault) -> tuple[Reply, JournalEntry]:
        """The fault envelope for the operation, and its response-out hop."""
        element = ctx.shape.fault if ctx.shape else self.default_fault
        body = fault_envelope(fault, ctx.session_id, element)
        reply = Reply(fault.spec.http_status, body, fault.code)
        return reply, self.entry("response-out", ctx, body=body, started=self.env.clock(), frm=GATEWAY,
                                 to=ctx.info.sender_id if ctx.info else None, status=reply.status,
                                 fault=fault, verdicts=[])

    async def _internal_error(self, ctx: MessageContext) -> Reply:
        fault = Fault("INTERNAL_ERROR", f"see the gateway log for session {ctx.session_id}")
        try:
            return await self.run_in_pool(self.refuse, ctx, fault, [self.entry("request-in", ctx, fault=fault)])
        except Exception:
            message_logger(f"shep.{self.name}", ctx.session_id).exception(
                "the journal could not record an internal error")
            element = ctx.shape.fault if ctx.shape else self.default_fault
            return Reply(fault.spec.http_status, fault_envelope(fault, ctx.session_id, element), fault.code)

    def entry(self, hop: str, ctx: MessageContext, **details) -> JournalEntry:
        return journal_entry(hop, ctx, **details)


def journal_entry(hop: str, ctx: MessageContext, *, body: bytes | None = None, started: datetime | None = None,
                  frm: str | None = None, to: str | None = None, status: int | None = None,
                  fault: Fault | None = None, verdicts: list[Verdict] | None = None) -> JournalEntry:
    """The journal record of one hop of the message in `ctx` (its bytes unless `body` is given)."""
    info = ctx.info
    inbound = hop.endswith("-in")
    return JournalEntry(
        hop=hop,
        direction="in" if inbound else "out",
        from_party=frm if frm else (info.sender_id if info else None),
        to_party=to if to else GATEWAY,
        service_id=info.service_id if info else None,
        message_id=info.message_id if info else None,
        correlation_id=info.correlation_id if info else None,
        session_id=ctx.session_id,
        started_at=started or ctx.received_at,
        finished_at=ctx.env.clock(),
        verdicts=[v.as_dict() for v in (ctx.verdicts if verdicts is None else verdicts)],
        fault_code=fault.code if fault else None,
        http_status=status,
        body=ctx.raw if body is None else body,
        deviations=[d.what for d in ctx.deviations] if inbound else [],
    )
