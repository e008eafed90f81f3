"""Push delivery: the gateway calls participants' IAsyncChannelClient, retrying with exponential backoff.

A round claims due messages from the queue (leased, so a crash or a second process cannot lose or
double-handle them beyond at-least-once), pushes them concurrently, checks each answer with the same
response checks as a sync provider's, and records the outcome. Senders with a client endpoint are
told of final states through `changeMassageStatusNotification`.
"""
from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any, Callable

from twisted.internet import defer, task

from gateway.asyncchannel import wire
from gateway.asyncchannel.queue import ON_DELIVERY, AsyncQueue, QueuedMessage, RetryPolicy
from gateway.channel import GATEWAY, journal_entry
from gateway.context import Environment, MessageContext, MessageInfo, Verdict
from gateway.faults import Fault
from gateway.forward import Forwarder, ProviderAnswer
from gateway.journal import Journal
from gateway.pipeline import RESPONSE_CHECKS, run_checks
from gateway.registry import Participant
from gateway.security.wss import sign_envelope
from gateway.shapes import PUSH_SEND, PUSH_STATUS, Shape

log = logging.getLogger("shep.push")


class PushDelivery:
    def __init__(self, env: Environment, queue: AsyncQueue, journal: Journal, forwarder: Forwarder,
                 run_in_pool: Callable[..., Any], resolve_endpoint: Callable[[str], str], reactor):
        s = env.settings
        self.env = env
        self.queue = queue
        self.journal = journal
        self.forwarder = forwarder
        self.run_in_pool = run_in_pool
        self.resolve_endpoint = resolve_endpoint
        self.reactor = reactor
        self.policy = RetryPolicy(max_attempts=s.async_max_attempts, max_age=timedelta(seconds=s.async_max_age_seconds),
                                  base=s.async_retry_base_seconds, cap=s.async_retry_max_seconds)
        self._loop = task.LoopingCall(self.tick)
        self._loop.clock = reactor
        self._round: defer.Deferred | None = None
        self._woken = False
        self._rerun = False
        self._notices: set[defer.Deferred] = set()

    def start(self) -> None:
        self._loop.start(self.env.settings.async_push_interval_seconds, now=True)

    async def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()
        if self._round is not None:
            await self._round
        await defer.DeferredList(list(self._notices))

    def notify_later(self, message: QueuedMessage) -> None:
        """From a worker thread: send the sender's notification on the reactor, tracked for shutdown."""
        def start():
            notice = defer.Deferred.fromCoroutine(self.notify_sender(message))
            self._notices.add(notice)
            notice.addBoth(lambda _: self._notices.discard(notice))
        self.reactor.callFromThread(start)

    def wake(self) -> None:
        """A message was accepted: deliver it now rather than at the next interval."""
        if not self._woken:
            self._woken = True
            self.reactor.callLater(0, self.tick)

    def tick(self) -> defer.Deferred | None:
        if self._round is not None:
            self._rerun = self._woken  # a wake during a round asks for another one right after
            return None
        self._woken = False
        self._round = defer.Deferred.fromCoroutine(self._run_round())

        def done(result):
            self._round = None
            if self._rerun:
                self._rerun = False
                self.wake()
            return result

        self._round.addErrback(lambda failure: log.error("push round failed: %s", failure.getTraceback()))
        return self._round.addBoth(done)

    async def _run_round(self) -> None:
        s = self.env.settings
        lease = timedelta(seconds=s.async_push_timeout_seconds + 5)
        claimed = await self.run_in_pool(lambda: self.queue.claim_push(now=self.env.clock(), lease=lease,
                                                                        limit=s.async_push_batch))
        results = await defer.DeferredList([defer.Deferred.fromCoroutine(self._attempt(m)) for m in claimed],
                                           consumeErrors=True)
        outcomes = []
        for message, (ok, result) in zip(claimed, results, strict=True):
            if ok:
                outcomes.append((message, *result))
            else:  # the lease lapses and the message is tried again; say why it failed
                log.error("push of %s failed: %s", message.message_id, result.getTraceback())
        # The round's outcomes in one transaction: a write lock per round, not per message.
        updated = await self.run_in_pool(lambda: self.queue.push_outcomes(outcomes, now=self.env.clock(),
                                                                          policy=self.policy)) if outcomes else []
        await defer.DeferredList([defer.Deferred.fromCoroutine(self.notify_sender(m))
                                  for m in updated if m.state != ON_DELIVERY], consumeErrors=True)
        if len(claimed) == s.async_push_batch:
            self.wake()

    async def _attempt(self, message: QueuedMessage) -> tuple[str | None, list]:
        """One push: (error or None, the journal records of both hops)."""
        recipient = self.env.registry.participant(message.recipient_id)
        ctx = self._context(message, PUSH_SEND)
        outgoing = await self.run_in_pool(self._sealed, ctx, wire.push_send_message(message.message))
        return await self._exchange(ctx, recipient, outgoing)

    async def notify_sender(self, message: QueuedMessage) -> None:
        """Tell a sender with a client endpoint about a final state (once; getMessageStatus always answers)."""
        sender = self.env.registry.participant(message.sender_id)
        if sender is None or not sender.async_endpoint:
            return
        ctx = self._context(message, PUSH_STATUS, recipient=message.sender_id)
        error = (message.status_code, message.last_error) if message.last_error else None
        request = wire.push_status_notification(message_id=message.message_id, state=message.state,
                                                code=message.status_code, message=message.status_message,
                                                session_id=message.session_id, error=error)
        try:
            outgoing = await self.run_in_pool(self._sealed, ctx, request)
            _, entries = await self._exchange(ctx, sender, outgoing)
            await self.run_in_pool(self.journal.append_many, entries)
        except Exception:  # best effort: getMessageStatus stays the source of truth
            log.exception("status notification for %s failed", message.message_id)

    def _context(self, message: QueuedMessage, shape: Shape, recipient: str | None = None) -> MessageContext:
        info = MessageInfo(message_id=message.message_id, correlation_id=message.correlation_id,
                           service_id=message.service_id, message_date=None, route_id=None,
                           sender_id=message.sender_id, password=None, message_type=message.message_type)
        return MessageContext(env=self.env, raw=b"", session_id=message.session_id, info=info, shape=shape,
                              service=self.env.registry.service(message.service_id),
                              recipient_id=recipient or message.recipient_id, received_at=self.env.clock())

    def _sealed(self, ctx: MessageContext, raw: bytes) -> bytes:
        if ctx.service is None or not ctx.service.require_transport_signature:
            return raw
        identity = self.env.security.signing
        return sign_envelope(raw, identity.key, identity.certificate, key_info=identity.key_info)

    async def _exchange(self, ctx: MessageContext, participant: Participant | None, outgoing: bytes):
        """One call to a participant's client endpoint: (error or None, journal entries of both hops)."""
        started = self.env.clock()
        entries = [journal_entry("request-out", ctx, body=outgoing, started=started, frm=GATEWAY,
                                 to=ctx.recipient_id, verdicts=[])]
        if participant is None or not participant.async_endpoint:
            return "the recipient has no IAsyncChannelClient endpoint", entries
        secret = {wire.PUSH_SECRET_HEADER: participant.push_secret.encode()} if participant.push_secret else None
        try:
            answer = await self.forwarder.post(self.resolve_endpoint(participant.async_endpoint), outgoing,
                                               timeout=self.env.settings.async_push_timeout_seconds,
                                               max_bytes=self.env.settings.max_response_bytes, headers=secret)
        except Fault as fault:
            ctx.verdicts.append(Verdict("forward_to_provider", "fail", fault.data, 0.0))
            entries.append(journal_entry("response-in", ctx, body=b"", frm=ctx.recipient_id, fault=fault))
            return f"{fault.code}: {fault.data}", entries
        return await self.run_in_pool(self._check_answer, ctx, answer, entries)

    def _check_answer(self, ctx: MessageContext, answer: ProviderAnswer, entries: list):
        ctx.raw, ctx.http_status = answer.body, answer.status
        ctx.verdicts.append(Verdict("forward_to_provider", "pass", f"HTTP {answer.status}", answer.elapsed * 1000))
        fault = None
        try:
            run_checks(RESPONSE_CHECKS, ctx)
        except Fault as refused:
            fault = refused
        entries.append(journal_entry("response-in", ctx, frm=ctx.recipient_id, status=answer.status, fault=fault))
        if fault is not None:
            return f"{fault.code}: {fault.data}", entries
        if ctx.is_fault:
            info = ctx.operation.find(f"detail/{ctx.shape.fault}")
            reason = (" ".join(filter(None, (info.findtext("errorCode"), info.findtext("errorMessage"),
                                             info.findtext("errorData")))) if info is not None
                      else f"{ctx.operation.findtext('faultcode')} {ctx.operation.findtext('faultstring')}")
            return f"the receiver answered with a fault: {reason}", entries
        return None, entries
