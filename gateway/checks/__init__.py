"""The gateway's checks, one module per family; `gateway.pipeline` orders them."""
