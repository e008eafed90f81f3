"""The check runner and the ordered checks of each hop, visible in one place.

A check is a plain function `check(ctx) -> None` that passes or raises a catalogue `Fault`;
adding a check is adding one function and one line below.
"""
from __future__ import annotations

import time
from typing import Callable

from gateway.context import MessageContext, Verdict
from gateway.faults import Fault
from gateway.checks.envelope import (
    check_envelope, check_provider_envelope, check_provider_status, limit_xml_depth, parse_xml, parse_provider_answer,
    tolerate_client_variations)
from gateway.checks.exchange import read_expiry, resolve_exchange
from gateway.checks.limits import limit_body_size, require_content_type, require_post
from gateway.checks.payload import (
    validate_request_payload, validate_response_payload)
from gateway.checks.replay import check_message_date, reject_replay
from gateway.checks.schema import (
    read_request_info, validate_request_schema, validate_response_schema)
from gateway.checks.sender import authenticate_sender, authorize_sender, enforce_strict_mode, identify_sender
from gateway.checks.service import lookup_service
from gateway.shapes import ASYNC_GET_MESSAGES, ASYNC_GET_STATUS, ASYNC_NOTIFY, ASYNC_SEND
from gateway.checks.signature import (
    bind_certificate_to_sender, require_transport_signature, validate_certificate, verify_payload_signature,
    verify_provider_signature, verify_transport_signature)

# Every request, on either channel, starts the same way: transport, parsing, signature, envelope, schema,
# who sends it. A password not verified before is then hashed away from the work pool (Channel.authenticate)
# and checked by authenticate_sender, first of what follows.
HEAD = [
    require_post,
    limit_body_size,
    require_content_type,
    parse_xml,
    limit_xml_depth,
    verify_transport_signature,
    check_envelope,
    tolerate_client_variations,
    validate_request_schema,
    read_request_info,
    identify_sender,
]
# The signer's certificate and the message's freshness.
_TRUST = [validate_certificate, bind_certificate_to_sender, check_message_date]

REQUEST_CHECKS = [
    *HEAD,
    authenticate_sender,
    lookup_service,
    authorize_sender,
    enforce_strict_mode,
    require_transport_signature,
    *_TRUST,
    reject_replay,
    validate_request_payload,
    verify_payload_signature,
]

# AsyncChannel: after HEAD, the checks of the operation found in the Body.
ASYNC_CHECKS = {
    ASYNC_SEND.operation: [
        authenticate_sender,
        lookup_service,
        authorize_sender,
        enforce_strict_mode,
        require_transport_signature,
        *_TRUST,
        reject_replay,
        read_expiry,
        resolve_exchange,
        validate_request_payload,
        verify_payload_signature,
    ],
    ASYNC_GET_MESSAGES.operation: [authenticate_sender, lookup_service, enforce_strict_mode,
                                   require_transport_signature, *_TRUST],
    ASYNC_NOTIFY.operation: [authenticate_sender, lookup_service, enforce_strict_mode, require_transport_signature,
                             *_TRUST],
    ASYNC_GET_STATUS.operation: [authenticate_sender, *_TRUST],
}

RESPONSE_CHECKS = [
    check_provider_status,
    parse_provider_answer,
    check_provider_envelope,
    verify_provider_signature,
    validate_response_schema,
    validate_response_payload,
]


def run_checks(checks: list[Callable[[MessageContext], None]], ctx: MessageContext,
               observe: Callable[[str, float], None] | None = None) -> None:
    """Run checks in order, recording each verdict with its timing; the first Fault stops the run."""
    for check in checks:
        ctx._detail = None
        before = len(ctx.deviations)
        start = time.perf_counter()
        try:
            check(ctx)
        except Fault as fault:
            elapsed = time.perf_counter() - start
            ctx.verdicts.append(Verdict(check.__name__, "fail", fault.data or fault.spec.name, elapsed * 1000))
            if observe:
                observe(check.__name__, elapsed)
            raise
        elapsed = time.perf_counter() - start
        verdict = "note" if len(ctx.deviations) > before else "pass"
        ctx.verdicts.append(Verdict(check.__name__, verdict, ctx._detail, elapsed * 1000))
        if observe:
            observe(check.__name__, elapsed)
