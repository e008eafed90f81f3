"""Logs: one JSON object (or one text line) per line, on stdout or in a file; message-related lines carry the
sessionId. Human output (banners, errors) is on stderr, apart from them."""
from __future__ import annotations

import json
import logging
import logging.handlers
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


class TextFormatter(logging.Formatter):
    """One line for a person: time, level, logger, message, then the message fields as key=value."""

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")
        fields = "".join(f" {name}={getattr(record, name)}" for name in _FIELDS
                         if getattr(record, name, None) is not None)
        line = f"{moment} {record.levelname:<7} {record.name}: {record.getMessage()}{fields}"
        return line + ("\n" + self.formatException(record.exc_info) if record.exc_info else "")


FORMATS = {"json": JsonFormatter, "text": TextFormatter}
# Start-up logs wait here until the banner is out: a person sees the URLs first, the log still gets every line.
_held: logging.handlers.MemoryHandler | None = None


def configure(level: str = "INFO", fmt: str = "json", file: str | None = None, hold: bool = False) -> None:
    """Logs to `file` (appended) or stdout, as JSON lines or text; stderr is left to what a person reads.
    `hold`: keep the lines until `release()`."""
    global _held
    handler = logging.FileHandler(file, encoding="utf-8") if file else logging.StreamHandler(sys.stdout)
    handler.setFormatter(FORMATS[fmt]())
    root = logging.getLogger("shep")
    if hold:
        _held = logging.handlers.MemoryHandler(capacity=100_000, flushLevel=logging.CRITICAL + 1, target=handler)
        root.handlers[:] = [_held]
    else:
        root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    # Twisted's own events (listening ports, unhandled errors) go through the same handler.
    from twisted.logger import STDLibLogObserver, globalLogBeginner
    globalLogBeginner.beginLoggingTo([STDLibLogObserver(name="shep.twisted")], redirectStandardIO=False)


def release() -> None:
    """Write the held start-up lines and log straight to the destination from now on."""
    global _held
    if _held is not None:
        held, _held = _held, None
        logging.getLogger("shep").handlers[:] = [held.target]
        held.flush()
        held.close()


class _MessageLogger(logging.LoggerAdapter):
    def process(self, msg, kwargs):
        kwargs["extra"] = {**self.extra, **kwargs.get("extra", {})}
        return msg, kwargs


def message_logger(name: str, session_id: str) -> logging.LoggerAdapter:
    """A logger whose every line carries the sessionId (per-call extras are merged, not dropped)."""
    return _MessageLogger(logging.getLogger(name), {"session_id": session_id})
