"""Transport limits, checked before a byte is parsed."""
from __future__ import annotations

from gateway.context import MessageContext
from gateway.faults import Fault


def require_post(ctx: MessageContext) -> None:
    if ctx.method != "POST":
        raise Fault("METHOD_NOT_ALLOWED", f"method {ctx.method}; SendMessage is a POST (GET serves ?wsdl and ?xsd=)")


def limit_body_size(ctx: MessageContext) -> None:
    limit = ctx.env.settings.max_body_bytes
    # The HTTP layer stops buffering past the limit and flags the request.
    if ctx.body_too_large or len(ctx.raw) > limit:
        raise Fault("BODY_TOO_LARGE", f"limit is {limit} bytes")
    ctx.note(f"{len(ctx.raw)} bytes")


def require_content_type(ctx: MessageContext) -> None:
    media = (ctx.content_type or "").split(";", 1)[0].strip().lower()
    if media == "application/soap+xml":
        # SOAP 1.2's media type, which some clients send with a SOAP 1.1 envelope; a 1.2 envelope is
        # still refused, by check_envelope (VersionMismatch).
        ctx.deviate(f"Content-Type {ctx.content_type} (SOAP 1.2's media type) read as text/xml",
                    "UNSUPPORTED_CONTENT_TYPE")
    elif media != "text/xml":
        shown = ctx.content_type or "none"
        raise Fault("UNSUPPORTED_CONTENT_TYPE", f"Content-Type {shown}; SOAP 1.1 uses text/xml")
