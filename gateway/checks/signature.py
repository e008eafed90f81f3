"""Signatures at every hop: the WS-Security transport signature and the payload EDS (ЭЦП).

Only verified content is processed after `verify_transport_signature`: the context's tree becomes
the one whose Body the signature was proven to cover.
"""
from __future__ import annotations

import functools

from lxml import etree

from gateway import contract as c
from gateway.context import MessageContext
from gateway.faults import Fault
from gateway.security import wss, xmldsig
from gateway.security.algorithms import SignatureError, short_name
from gateway.security.identity import subject_bin


def _fault(error: SignatureError) -> Fault:
    return Fault(error.name, error.detail)


def has_security_header(tree: etree._ElementTree) -> bool:
    header = tree.getroot().find(c.HEADER)
    return header is not None and header.find(f"{{{c.WSSE_NS}}}Security") is not None


@functools.lru_cache(maxsize=1024)
def _subject(cert) -> str:
    return cert.subject.rfc4514_string()


def _verify_envelope(ctx: MessageContext) -> None:
    security = ctx.env.security
    try:
        # ctx.tree is ctx.raw as parsed, not yet edited: what is verified is what is processed next.
        verified = wss.verify_envelope(ctx.raw, policy=security.policy, now=ctx.received_at,
                                       clock_skew=security.clock_skew, certificates=security.certificates.find,
                                       tree=ctx.tree)
    except SignatureError as error:
        raise _fault(error) from None
    ctx.tree = verified.tree
    ctx.signer_cert = verified.certificate
    ctx.note(f"signed by {_subject(verified.certificate)} ({short_name(verified.signature_method)})")


def verify_transport_signature(ctx: MessageContext) -> None:
    if ctx.tree.getroot().tag != c.ENVELOPE:
        return  # check_envelope says what is wrong with it
    if not has_security_header(ctx.tree):
        if ctx.wss_endpoint:
            raise Fault("SIGNATURE_MISSING", "this address (…-wss-…) takes WS-Security signed messages only")
        ctx.note("unsigned")
        return
    _verify_envelope(ctx)


def require_transport_signature(ctx: MessageContext) -> None:
    if ctx.signer_cert is None and ctx.service.require_transport_signature:
        raise Fault("SIGNATURE_MISSING", f"{ctx.service.id!r} requires a WS-Security signature")


def _validate(ctx: MessageContext, cert, what: str) -> None:
    try:
        result = ctx.env.security.validator.validate(cert, at=ctx.received_at, what=what)
    except SignatureError as error:
        raise _fault(error) from None
    ctx.note(f"{what}: chain of {len(result.chain)}, {result.revocation}")


def validate_certificate(ctx: MessageContext) -> None:
    if ctx.signer_cert is None:
        return
    _validate(ctx, ctx.signer_cert, "transport signature")


def _bind(security, participant, cert, what: str) -> None:
    """A participant signs with its pinned certificate, or with one carrying its BIN (OU=BIN…)."""
    if participant.certificate is not None:
        if cert != security.pinned[participant.certificate]:
            raise Fault("CERT_NOT_SENDERS", f"{what}: {participant.id!r} is pinned to another certificate")
        return
    if participant.bin is None:
        raise Fault("CERT_NOT_SENDERS", f"{what}: {participant.id!r} has no BIN or certificate in the registry")
    found = subject_bin(cert)
    if found != participant.bin:
        raise Fault("CERT_NOT_SENDERS", f"{what}: certificate BIN {found or 'none'}, "
                                        f"{participant.id!r} is BIN {participant.bin}")


def bind_certificate_to_sender(ctx: MessageContext) -> None:
    if ctx.signer_cert is not None:
        _bind(ctx.env.security, ctx.sender, ctx.signer_cert, "transport signature")


def _signed_document(data: etree._Element | None) -> bytes | None:
    """The document in `data` when it ends with a ds:Signature; None when there is none."""
    if data is None:
        return None
    # Most requests carry no EDS: tell that without extracting and re-parsing the document.
    if data.find(f".//{{{c.DS_NS}}}Signature") is None and c.DS_NS not in (data.text or ""):
        return None
    try:
        document = xmldsig.document_in_data(data)
        root = c.PARSER.parse(document).getroot()
    except (ValueError, etree.XMLSyntaxError):
        return None
    elements = [el for el in root if isinstance(el.tag, str)]
    return document if elements and elements[-1].tag == f"{{{c.DS_NS}}}Signature" else None


def verify_payload_signature(ctx: MessageContext) -> None:
    """Verified whenever present; required when the service says so."""
    document = _signed_document(ctx.operation.find(ctx.shape.data))
    if document is None:
        if ctx.service.require_payload_signature:
            raise Fault("PAYLOAD_SIGNATURE_MISSING", f"{ctx.service.id!r} requires a signed business document")
        ctx.note("unsigned")
        return
    try:
        verified = xmldsig.verify_document(document, policy=ctx.env.security.policy)
    except SignatureError as error:
        raise _fault(error) from None
    ctx.payload_signer_cert = verified.certificate
    ctx.note(f"payload signed by {_subject(verified.certificate)} ({short_name(verified.signature_method)})")
    _validate(ctx, verified.certificate, "payload signature")


def verify_provider_signature(ctx: MessageContext) -> None:
    """The provider's answer: verified when signed, required when the service asks for signatures."""
    try:
        if not has_security_header(ctx.tree):
            if ctx.service.require_transport_signature:
                raise Fault("SIGNATURE_MISSING", f"{ctx.service.id!r} requires the provider to sign its answer")
            ctx.note("unsigned")
            return
        _verify_envelope(ctx)
        _validate(ctx, ctx.signer_cert, "provider signature")
        answering = ctx.recipient_id or ctx.service.provider
        _bind(ctx.env.security, ctx.env.registry.participant(answering), ctx.signer_cert, "provider signature")
    except Fault as fault:
        raise Fault("PROVIDER_SIGNATURE_INVALID", fault.data, sub=fault) from None
    ctx.operation = next(el for el in ctx.tree.getroot().find(c.BODY) if isinstance(el.tag, str))
