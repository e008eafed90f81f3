"""Request bodies on the gateway's site: bounded while they arrive, read the same way by every resource."""
from __future__ import annotations

import io

from twisted.web import server

DEFAULT_LIMIT = 10 * 1024 * 1024


class BoundedRequest(server.Request):
    """Stops buffering a body past the site's `max_body_bytes`, whether it comes with a Content-Length or
    chunked; `read_body` then answers None and the resource refuses it (the SOAP channels with BODY_TOO_LARGE)."""

    body_too_large = False

    def _limit(self) -> int:
        return getattr(self.channel.site, "max_body_bytes", DEFAULT_LIMIT)

    def gotLength(self, length):
        if length is not None and length > self._limit():
            self.body_too_large = True
            length = 0
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self.body_too_large:
            return
        if self.content.tell() + len(data) > self._limit():
            self.body_too_large = True
            self.content.close()  # a temporary file for a chunked body: free the disk now, not at collection
            self.content = io.BytesIO()
            return
        super().handleContentChunk(data)


def read_body(request: server.Request, limit: int | None = None) -> bytes | None:
    """The whole body, or None when it is larger than `limit` or than the site let `BoundedRequest` buffer.

    Twisted keeps a body in a BytesIO below 100,000 bytes and in a temporary file at or above it and when it
    is chunked, so only file methods work for both (a temporary file has no getvalue)."""
    if getattr(request, "body_too_large", False):
        return None
    content = request.content
    if content is None:
        return b""
    content.seek(0)
    body = content.read() if limit is None else content.read(limit + 1)
    return None if limit is not None and len(body) > limit else body
