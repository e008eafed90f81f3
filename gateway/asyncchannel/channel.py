"""AsyncChannel v10 at `/bip-async/`: sendMessage, getMessages, getMessageStatus, sendDeliveryNotification.

Every request passes the same checks as the sync channel (`HEAD` + the operation's own list);
then the operation runs against the durable queue, in the worker pool, and is journalled with it.
"""
from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any, Callable

from gateway.asyncchannel import wire
from gateway.asyncchannel.push import PushDelivery
from gateway.asyncchannel.queue import ON_DELIVERY, STATUS, AsyncQueue, NotPending, NotYours, QueuedMessage
from gateway.channel import GATEWAY, Channel, Reply
from gateway.context import Environment, MessageContext, Verdict
from gateway.faults import Fault
from gateway.journal import Journal
from gateway.metrics import Metrics
from gateway.pipeline import ASYNC_CHECKS, run_checks
from gateway.shapes import ASYNC_GET_MESSAGES, ASYNC_GET_STATUS, ASYNC_NOTIFY, ASYNC_SEND, ASYNC_SHAPES


class AsyncChannel(Channel):
    name = "async"
    shapes = ASYNC_SHAPES
    default_fault = ASYNC_SEND.fault

    def __init__(self, env: Environment, journal: Journal, metrics: Metrics, run_in_pool: Callable[..., Any],
                 queue: AsyncQueue, push: PushDelivery):
        super().__init__(env, journal, metrics, run_in_pool)
        self.queue = queue
        self.push = push
        self.operations = {
            ASYNC_SEND.operation: self._send_message,
            ASYNC_GET_MESSAGES.operation: self._get_messages,
            ASYNC_GET_STATUS.operation: self._get_status,
            ASYNC_NOTIFY.operation: self._notify,
        }

    async def _process(self, ctx: MessageContext) -> Reply:
        reply = await self.authenticate(ctx) or await self.run_in_pool(self._run, ctx)
        if ctx.shape is ASYNC_SEND and reply.fault_code is None:
            self.push.wake()
        return reply

    def _run(self, ctx: MessageContext) -> Reply:
        try:
            run_checks(ASYNC_CHECKS[ctx.shape.operation], ctx, self.metrics.observe_check)
            return self.operations[ctx.shape.operation](ctx)
        except Fault as fault:
            return self.refuse(ctx, fault, [self.entry("request-in", ctx, fault=fault)])

    def _hops(self, ctx: MessageContext, body: bytes):
        return [self.entry("request-in", ctx),
                self.entry("response-out", ctx, body=body, started=self.env.clock(), frm=GATEWAY,
                           to=ctx.sender.id, status=200, verdicts=[])]

    # -- operations (pool thread) -----------------------------------------------------------------

    def _send_message(self, ctx: MessageContext) -> Reply:
        now = self.env.clock()
        message_id = str(uuid.uuid4())
        recipient = self.env.registry.participant(ctx.recipient_id)
        stored = wire.stored_message(ctx.operation, message_id=message_id, correlation_id=ctx.correlation_id,
                                     session_id=ctx.session_id)
        code, text = STATUS[ON_DELIVERY]
        message = QueuedMessage(
            message_id=message_id, correlation_id=ctx.correlation_id, service_id=ctx.service.id,
            message_type=ctx.info.message_type, sender_id=ctx.sender.id, recipient_id=ctx.recipient_id,
            delivery="push" if recipient and recipient.async_endpoint else "pull", state=ON_DELIVERY,
            status_code=code, status_message=text, session_id=ctx.session_id, created_at=now, updated_at=now,
            expires_at=ctx.expires_at, due_at=now, attempts=0, last_error=None, message=stored)
        body = self.seal(ctx, wire.send_message_response(message_id=message_id,
                                                            correlation_id=ctx.correlation_id,
                                                            session_id=ctx.session_id))
        # The journal speaks of the gateway's ids from here on.
        ctx.info.message_id, ctx.info.correlation_id = message_id, ctx.correlation_id
        self.queue.accept(message, self._hops(ctx, body), claim=ctx.replay_claim)
        return Reply(200, body)

    def _get_messages(self, ctx: MessageContext) -> Reply:
        settings = self.env.settings
        amount_text = ctx.operation.findtext("request/amount")
        amount = int(amount_text) if amount_text and int(amount_text) > 0 else settings.async_default_amount
        amount = min(amount, settings.async_max_amount)
        messages = self.queue.pull(ctx.sender.id, ctx.service.id, now=self.env.clock(),
                                   visibility=timedelta(seconds=settings.async_visibility_seconds),
                                   amount=amount, message_id=ctx.info.message_id,
                                   correlation_id=ctx.info.correlation_id)
        body = self.seal(ctx, wire.get_messages_response(session_id=ctx.session_id,
                                                         messages=[m.message for m in messages]))
        # Each handed-out message's transition is journalled by the queue; this records the call.
        ctx.verdicts.append(Verdict("pull_messages", "pass", f"{len(messages)} message(s): "
                                    f"{', '.join(m.message_id for m in messages) or 'none'}", 0.0))
        self.journal.append_many(self._hops(ctx, body))
        return Reply(200, body)

    def _get_status(self, ctx: MessageContext) -> Reply:
        try:
            message = self.queue.status(ctx.info.message_id or "", ctx.sender.id)
        except NotYours:
            raise Fault("ASYNC_MESSAGE_UNKNOWN", f"messageId {ctx.info.message_id!r} for {ctx.sender.id!r}") from None
        body = self.seal(ctx, wire.message_status_response(
            state=message.state, code=message.status_code, message=message.status_message,
            status_date=message.updated_at, session_id=ctx.session_id))
        self.journal.append_many(self._hops(ctx, body))
        return Reply(200, body)

    def _notify(self, ctx: MessageContext) -> Reply:
        status = ctx.operation.find("request/notification/deliveryStatus")
        accepted = status.findtext("receiveStatus") == wire.ACCEPTED
        resend = status.findtext("resendMessage") == wire.RESEND
        error = status.find("error")
        detail = None if error is None else f"{error.findtext('errorCode')}: {error.findtext('errorMessage')}"
        body = self.seal(ctx, wire.delivery_notification_response(session_id=ctx.session_id))
        try:
            message = self.queue.acknowledge(ctx.info.message_id, ctx.sender.id, accepted=accepted, resend=resend,
                                             now=self.env.clock(), error=detail, entries=self._hops(ctx, body))
        except NotYours:
            raise Fault("ASYNC_MESSAGE_UNKNOWN", f"messageId {ctx.info.message_id!r} for {ctx.sender.id!r}") from None
        except NotPending as exc:
            raise Fault("ASYNC_NOT_PENDING", str(exc)) from None
        if message.state != ON_DELIVERY:
            self.push.notify_later(message)
        return Reply(200, body)
