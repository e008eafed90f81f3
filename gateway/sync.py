"""SyncChannel v10 `SendMessage` (синхронный канал ШЭП): the request hop, the forward, the answer hop.

XML work and store writes run in the dedicated pool (`run_in_pool`); only the forward itself runs
on the reactor. Every hop is journalled before the caller gets an answer.
"""
from __future__ import annotations

import time
from datetime import datetime
from typing import Any, Callable

from gateway.channel import GATEWAY, Channel, Reply
from gateway.context import Environment, MessageContext, Verdict
from gateway.faults import Fault
from gateway.forward import Forwarder, ProviderAnswer
from gateway.journal import Journal, JournalEntry
from gateway.metrics import Metrics
from gateway.pipeline import HEAD, REQUEST_CHECKS, RESPONSE_CHECKS, run_checks
from gateway.shapes import SYNC_SEND, SYNC_SHAPES
from gateway.logs import message_logger
from gateway.soap import drop_transport_signature, prepare_forward, serialize, stamp_answer
from gateway.store import UNAVAILABLE


class SyncChannel(Channel):
    name = "sync"
    shapes = SYNC_SHAPES
    default_fault = SYNC_SEND.fault

    def __init__(self, env: Environment, journal: Journal, metrics: Metrics, forwarder: Forwarder,
                 run_in_pool: Callable[..., Any], resolve_endpoint: Callable[[str], str]):
        super().__init__(env, journal, metrics, run_in_pool)
        self.forwarder = forwarder
        self.resolve_endpoint = resolve_endpoint

    async def _process(self, ctx: MessageContext) -> Reply:
        refused = await self.authenticate(ctx)
        if refused is not None:
            return refused
        accepted = await self.run_in_pool(self._accept, ctx)
        return accepted if isinstance(accepted, Reply) else await self._forward(ctx, accepted)

    # -- the request hop (pool thread) --------------------------------------------------------

    def _accept(self, ctx: MessageContext) -> Reply | bytes:
        # Answers held through an outage are recorded before a resend of their request is judged.
        self.journal.flush_held()
        start = time.perf_counter()
        try:
            run_checks(REQUEST_CHECKS[len(HEAD):], ctx, self.metrics.observe_check)
        except Fault as fault:
            return self.refuse(ctx, fault, [self.entry("request-in", ctx, fault=fault)])
        finally:
            self.metrics.hop_seconds.labels("request-in").observe(time.perf_counter() - start)
        if ctx.resend_of is not None:
            return self._recorded_outcome(ctx)
        prepare_forward(ctx.operation, ctx.shape.info, ctx.session_id)
        outgoing = self._outgoing(ctx, ctx.tree)
        # Durable before it leaves: the accepted request, what is sent to the provider, and its messageId.
        refused = self._record_accepted(ctx, [
            self.entry("request-in", ctx),
            self.entry("request-out", ctx, body=outgoing, started=self.env.clock(),
                       frm=GATEWAY, to=ctx.service.provider, verdicts=[]),
        ])
        return refused or outgoing

    def _record_accepted(self, ctx: MessageContext, entries: list[JournalEntry]) -> Reply | None:
        """Journal an accepted request's hops with its messageId; the refusal when a concurrent copy (or resend)
        was accepted first."""
        try:
            self.journal.append_many(entries, claim=ctx.replay_claim)
        except Fault as fault:
            return self.refuse(ctx, fault, [self.entry("request-in", ctx, fault=fault)])
        return None

    def _recorded_outcome(self, ctx: MessageContext) -> Reply:
        """A resend of a request whose sender got SHEP-299 after its provider answered: that answer, checked
        again, is the reply; the provider is not called twice."""
        session = ctx.resend_of.session_id
        recorded = self.journal.recorded_answer(session)
        if recorded is None:
            fault = Fault("MESSAGE_REPLAYED", f"messageId {ctx.info.message_id!r} was answered in session {session}, "
                                              "whose answer's bytes are not kept (gateway.journal_store_bytes)")
            return self.refuse(ctx, fault, [self.entry("request-in", ctx, fault=fault)])
        status, body = recorded
        return self._answer(ctx, ProviderAnswer(status, body, 0.0), self.env.clock(), recorded_in=session)

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
        return self.refuse(ctx, fault, [self._answer_entry(answer_ctx, fault)])

    def _answer(self, ctx: MessageContext, answer: ProviderAnswer, started: datetime,
                recorded_in: str | None = None) -> Reply:
        """The provider's answer checked and passed on; `recorded_in`: the session whose journal it comes from (a
        resend's), and the answer hop is not journalled again."""
        answer_ctx = self._answer_context(ctx, answer.body, answer.status, started)
        source = f"recorded in session {recorded_in}" if recorded_in else f"HTTP {answer.status}"
        answer_ctx.verdicts.append(Verdict("forward_to_provider", "pass", source, answer.elapsed * 1000))
        start = time.perf_counter()
        try:
            run_checks(RESPONSE_CHECKS, answer_ctx, self.metrics.observe_check)
        except Fault as fault:
            return self.refuse(ctx, fault, [self._answer_entry(answer_ctx, fault)])
        finally:
            self.metrics.hop_seconds.labels("response-in").observe(time.perf_counter() - start)
        stamp_answer(answer_ctx.operation, SYNC_SEND.answer_info, SYNC_SEND.fault, ctx.session_id)
        reply = Reply(500 if answer_ctx.is_fault else 200, self._outgoing(ctx, answer_ctx.tree),
                      "provider-fault" if answer_ctx.is_fault else None)
        if recorded_in:
            return self._record_accepted(ctx, [self.entry("request-in", ctx),
                                               self._reply_entry(ctx, reply, verdicts=answer_ctx.verdicts)]) or reply
        answer_hop = self._answer_entry(answer_ctx, None)
        try:
            self.journal.append_many([answer_hop, self._reply_entry(ctx, reply)])
        except UNAVAILABLE:
            return self._hold_answer(ctx, answer_hop)
        return reply

    def _hold_answer(self, ctx: MessageContext, answer_hop: JournalEntry) -> Reply:
        """The store failed after the provider answered: the sender gets SHEP-299, and the answer is kept to be
        recorded when the store is back, where a resend of the request finds it (reject_replay)."""
        fault = Fault("INTERNAL_ERROR", f"the store is unavailable; resend session {ctx.session_id}'s request "
                                        "under the same messageId once it is back")
        reply, refusal = self.refusal(ctx, fault)
        log = message_logger("shep.sync", ctx.session_id)
        if self.journal.hold([answer_hop, refusal]):
            log.error("the store failed after the provider answered: the answer is held until the store is back")
        else:
            log.error("the store failed after the provider answered, and too many hops are held: answer lost")
        return reply

    def _reply_entry(self, ctx: MessageContext, reply: Reply, verdicts: list[Verdict] | None = None) -> JournalEntry:
        return self.entry("response-out", ctx, body=reply.body, started=self.env.clock(), frm=GATEWAY,
                          to=ctx.sender.id, status=reply.status, verdicts=verdicts or [])

    def _outgoing(self, ctx: MessageContext, tree) -> bytes:
        """The previous hop's signature does not survive the gateway's edits: dropped, then maybe re-signed."""
        drop_transport_signature(tree)
        return self.seal(ctx, serialize(tree))

    def _answer_entry(self, answer_ctx: MessageContext, fault: Fault | None) -> JournalEntry:
        return self.entry("response-in", answer_ctx, fault=fault, frm=answer_ctx.service.provider,
                          to=GATEWAY, status=answer_ctx.http_status)
