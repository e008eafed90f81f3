"""SyncChannel v10 `SendMessage` (синхронный канал ШЭП): the request hop, the forward, the answer hop.

XML work and store writes run in the dedicated pool (`run_in_pool`); only the forward itself runs
on the reactor. Every hop is journalled before the caller gets an answer.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from gateway.context import Environment, MessageContext, Verdict
from gateway.faults import Fault
from gateway.forward import Forwarder, ProviderAnswer
from gateway.journal import Journal, JournalEntry
from gateway.logs import message_logger
from gateway.metrics import Metrics
from gateway.pipeline import REQUEST_CHECKS, RESPONSE_CHECKS, run_checks
from gateway.security.wss import sign_envelope
from gateway.shapes import SYNC_SEND, SYNC_SHAPES
from gateway.soap import drop_transport_signature, fault_envelope, prepare_forward, serialize, stamp_answer

GATEWAY = "gateway"


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


class SyncChannel:
    def __init__(self, env: Environment, journal: Journal, metrics: Metrics, forwarder: Forwarder,
                 run_in_pool: Callable[..., Any], resolve_endpoint: Callable[[str], str]):
        self.env = env
        self.journal = journal
        self.metrics = metrics
        self.forwarder = forwarder
        self.run_in_pool = run_in_pool
        self.resolve_endpoint = resolve_endpoint

    async def send_message(self, inbound: Inbound) -> Reply:
        start = time.perf_counter()
        ctx = MessageContext(env=self.env, raw=inbound.raw, method=inbound.method,
                             content_type=inbound.content_type, body_too_large=inbound.body_too_large,
                             wss_endpoint=inbound.wss_endpoint, received_at=self.env.clock(), shapes=SYNC_SHAPES)
        log = message_logger("shep.sync", ctx.session_id)
        try:
            accepted = await self.run_in_pool(self._accept, ctx)
            if isinstance(accepted, Reply):
                reply = accepted
            else:
                reply = await self._forward(ctx, accepted)
        except Exception:
            log.exception("internal error while handling SendMessage")
            reply = await self._internal_error(ctx)
        reply.session_id = ctx.session_id
        total = time.perf_counter() - start
        self.metrics.hop_seconds.labels("total").observe(total)
        self.metrics.requests.labels("sync", self._label_service(ctx), self._label_sender(ctx),
                                     reply.fault_code or "").inc()
        log.info("SendMessage answered", extra={
            "service_id": ctx.info.service_id if ctx.info else None,
            "sender_id": ctx.info.sender_id if ctx.info else None,
            "message_id": ctx.info.message_id if ctx.info else None,
            "fault_code": reply.fault_code, "ms": round(total * 1000, 2)})
        return reply

    # -- the request hop (pool thread) --------------------------------------------------------

    def _accept(self, ctx: MessageContext) -> Reply | bytes:
        start = time.perf_counter()
        try:
            run_checks(REQUEST_CHECKS, ctx, self.metrics.observe_check)
        except Fault as fault:
            return self._refuse(ctx, fault, [self._entry("request-in", ctx, fault=fault)])
        finally:
            self.metrics.hop_seconds.labels("request-in").observe(time.perf_counter() - start)
        prepare_forward(ctx.operation, ctx.shape.info, ctx.session_id)
        outgoing = self._outgoing(ctx, ctx.tree)
        # Durable before it leaves: the accepted request and what is sent to the provider.
        self.journal.append_many([
            self._entry("request-in", ctx),
            self._entry("request-out", ctx, body=outgoing, started=self.env.clock(),
                        frm=GATEWAY, to=ctx.service.provider, verdicts=[]),
        ])
        return outgoing

    # -- the forward (reactor) ----------------------------------------------------------------

    async def _forward(self, ctx: MessageContext, outgoing: bytes) -> Reply:
        provider = self.env.registry.participant(ctx.service.provider)
        url = self.resolve_endpoint(provider.endpoint)
        started = self.env.clock()
        try:
            answer = await self.forwarder.post(url, outgoing, timeout=ctx.service.timeout_seconds,
                                               max_bytes=self.env.settings.max_response_bytes)
        except Fault as fault:
            return await self.run_in_pool(self._provider_failed, ctx, fault, started)
        self.metrics.hop_seconds.labels("provider").observe(answer.elapsed)
        return await self.run_in_pool(self._answer, ctx, answer, started)

    # -- the answer hop (pool thread) ---------------------------------------------------------

    def _answer_context(self, ctx: MessageContext, raw: bytes, status: int | None,
                        started: datetime) -> MessageContext:
        return MessageContext(env=self.env, raw=raw, received_at=started, session_id=ctx.session_id,
                              info=ctx.info, sender=ctx.sender, service=ctx.service, http_status=status,
                              wss_endpoint=ctx.wss_endpoint, shape=SYNC_SEND)

    def _provider_failed(self, ctx: MessageContext, fault: Fault, started: datetime) -> Reply:
        answer_ctx = self._answer_context(ctx, b"", None, started)
        elapsed = (self.env.clock() - started).total_seconds()
        answer_ctx.verdicts.append(Verdict("forward_to_provider", "fail", fault.data, elapsed * 1000))
        return self._refuse(ctx, fault, [self._answer_entry(answer_ctx, fault)])

    def _answer(self, ctx: MessageContext, answer: ProviderAnswer, started: datetime) -> Reply:
        answer_ctx = self._answer_context(ctx, answer.body, answer.status, started)
        answer_ctx.verdicts.append(Verdict("forward_to_provider", "pass",
                                           f"HTTP {answer.status}", answer.elapsed * 1000))
        start = time.perf_counter()
        try:
            run_checks(RESPONSE_CHECKS, answer_ctx, self.metrics.observe_check)
        except Fault as fault:
            return self._refuse(ctx, fault, [self._answer_entry(answer_ctx, fault)])
        finally:
            self.metrics.hop_seconds.labels("response-in").observe(time.perf_counter() - start)
        stamp_answer(answer_ctx.operation, SYNC_SEND.answer_info, SYNC_SEND.fault, ctx.session_id)
        reply = Reply(500 if answer_ctx.is_fault else 200, self._outgoing(ctx, answer_ctx.tree),
                      "provider-fault" if answer_ctx.is_fault else None)
        self.journal.append_many([
            self._answer_entry(answer_ctx, None),
            self._entry("response-out", ctx, body=reply.body, started=self.env.clock(), frm=GATEWAY,
                        to=ctx.sender.id, status=reply.status, verdicts=[]),
        ])
        return reply

    def _outgoing(self, ctx: MessageContext, tree) -> bytes:
        """What the gateway sends on: signed with its own certificate when the exchange is a signed one."""
        drop_transport_signature(tree)
        raw = serialize(tree)
        signed = ctx.signer_cert is not None or ctx.wss_endpoint or ctx.service.require_transport_signature
        if not signed:
            return raw
        identity = self.env.security.signing
        return sign_envelope(raw, identity.key, identity.certificate, key_info=identity.key_info)

    # -- refusals and the journal -------------------------------------------------------------

    def _refuse(self, ctx: MessageContext, fault: Fault, entries: list[JournalEntry]) -> Reply:
        body = fault_envelope(fault, ctx.session_id)
        reply = Reply(fault.spec.http_status, body, fault.code)
        entries.append(self._entry("response-out", ctx, body=body, started=self.env.clock(), frm=GATEWAY,
                                   to=ctx.info.sender_id if ctx.info else None, status=reply.status,
                                   fault=fault, verdicts=[]))
        self.journal.append_many(entries)
        return reply

    async def _internal_error(self, ctx: MessageContext) -> Reply:
        fault = Fault("INTERNAL_ERROR", f"see the gateway log for session {ctx.session_id}")
        try:
            return await self.run_in_pool(self._refuse, ctx, fault, [self._entry("request-in", ctx, fault=fault)])
        except Exception:
            message_logger("shep.sync", ctx.session_id).exception("the journal could not record an internal error")
            return Reply(fault.spec.http_status, fault_envelope(fault, ctx.session_id), fault.code)

    def _answer_entry(self, answer_ctx: MessageContext, fault: Fault | None) -> JournalEntry:
        return self._entry("response-in", answer_ctx, fault=fault, frm=answer_ctx.service.provider,
                           to=GATEWAY, status=answer_ctx.http_status)

    def _entry(self, hop: str, ctx: MessageContext, *, body: bytes | None = None,
               started: datetime | None = None, frm: str | None = None, to: str | None = None,
               status: int | None = None, fault: Fault | None = None,
               verdicts: list[Verdict] | None = None) -> JournalEntry:
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
            finished_at=self.env.clock(),
            verdicts=[v.as_dict() for v in (ctx.verdicts if verdicts is None else verdicts)],
            fault_code=fault.code if fault else None,
            http_status=status,
            body=ctx.raw if body is None else body,
            deviations=list(ctx.deviations) if inbound else [],
        )

    def _label_service(self, ctx: MessageContext) -> str:
        # Only registered names become label values: arbitrary input must not grow the series.
        return ctx.service.id if ctx.service else "unknown"

    def _label_sender(self, ctx: MessageContext) -> str:
        return ctx.sender.id if ctx.sender else "unknown"
