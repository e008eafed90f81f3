"""Which service is called: lookup by serviceId and routeId, on the right channel."""
from __future__ import annotations

from gateway.context import MessageContext
from gateway.faults import Fault


def lookup_service(ctx: MessageContext) -> None:
    service_id = ctx.info.service_id
    service = ctx.env.registry.service(service_id)
    if service is None:
        raise Fault("SERVICE_UNKNOWN", f"serviceId {service_id!r}")
    route = ctx.info.route_id
    if route and route not in service.routes:
        raise Fault("ROUTE_UNKNOWN", f"routeId {route!r} for {service_id!r}")
    if service.channel != ctx.shape.channel:
        raise Fault("CHANNEL_MISMATCH", f"{service_id!r} is a {service.channel} service, "
                                        f"called on the {ctx.shape.channel} channel")
    ctx.service = service
