"""Structured logs: one JSON object per line; message-related lines carry the sessionId."""
from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

_FIELDS = ("session_id", "service_id", "sender_id", "message_id", "fault_code", "hop", "ms", "status", "bytes",
           "client")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in _FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("shep")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    # Twisted's own events (listening ports, unhandled errors) go through the same handler.
    from twisted.logger import STDLibLogObserver, globalLogBeginner
    globalLogBeginner.beginLoggingTo([STDLibLogObserver(name="shep.twisted")], redirectStandardIO=False)


class _MessageLogger(logging.LoggerAdapter):
    def process(self, msg, kwargs):
        kwargs["extra"] = {**self.extra, **kwargs.get("extra", {})}
        return msg, kwargs


def message_logger(name: str, session_id: str) -> logging.LoggerAdapter:
    """A logger whose every line carries the sessionId (per-call extras are merged, not dropped)."""
    return _MessageLogger(logging.getLogger(name), {"session_id": session_id})
