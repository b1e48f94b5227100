"""Log lines as JSON when asked (ORDERS_LOG_FORMAT=json), and each request's ids.

Every request gets a request id: its `X-Request-ID` header when that is well
formed (1 to 64 letters, digits, `.`, `_`, `-`), else a new UUID, echoed back
in the response's `X-Request-ID`. Its correlation id (`X-Correlation-ID` in
the response) is the request id when that is a UUID, else a new one; the application layer writes it into the
metadata of the events the request's command appends (store/tracing.py), and
the outbox relay logs a message with the correlation id of the event that
caused it. A JSON line is one object: time, level, logger, message, the
request and correlation ids when there are some, the fields a line was
logged with (`extra`), and the traceback of an error.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID, uuid4

from litestar.enums import ScopeType
from litestar.logging.config import LoggingConfig
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from store.tracing import correlation_id, request_id

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
REQUEST_ID = "x-request-id"
CORRELATION_ID = "x-correlation-id"
_WELL_FORMED = re.compile(r"[A-Za-z0-9._-]{1,64}")

# A LogRecord's own attributes; any other was given through `extra` and goes into the line.
# (uvicorn adds `color_message`, the message with terminal colours.)
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",
}


class JsonLines(logging.Formatter):
    """One JSON object per line, with the ids of the request (or message) being handled."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in (("request_id", request_id.get()), ("correlation_id", correlation_id.get())):
            if value is not None:
                line[name] = value
        for name, value in vars(record).items():
            if name not in _RECORD_FIELDS and not name.startswith("_"):
                line.setdefault(name, value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def logging_config(log_format: LogFormat) -> LoggingConfig:
    """Litestar's logging set-up (the root logger and its own, at INFO), in `log_format`; in JSON,
    uvicorn's loggers write through the same handler, and each command handled is a line.

    Litestar formats a line in the thread that logs it, before its queue, so
    the request's context variables are still there to be read.
    """
    if log_format == "json":
        # uvicorn's own lines too (it set up its loggers before it called the app's factory).
        uvicorn = {"handlers": ["queue_listener"], "propagate": False}
        return LoggingConfig(
            formatters={"standard": {"()": JsonLines}},
            loggers={"uvicorn": uvicorn, "uvicorn.access": uvicorn},
        )
    # In text, no line per command (store/application.py logs one at INFO): on a busy worker its
    # formatting and writing took a fifth of the CPU (bench/RESULTS.md, 3b). JSON logs are the ones
    # asked for to follow a command from its request to its events, so they keep it.
    return LoggingConfig(loggers={"orders.commands": {"level": "WARNING"}})


def request_ids(app: ASGIApp) -> ASGIApp:
    """The middleware giving each HTTP request its request and correlation ids (see the module)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        asked = _header(scope["headers"], _REQUEST_ID)
        if asked is not None and _WELL_FORMED.fullmatch(asked):
            rid = asked
            correlation = rid if _is_uuid(rid) else str(uuid4())
        else:
            rid = correlation = str(uuid4())
        ids = request_id.set(rid), correlation_id.set(correlation)
        added = [(_REQUEST_ID, rid.encode("latin-1")), (_CORRELATION_ID, correlation.encode("latin-1"))]

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                # As MutableScopeHeaders' assignment did: an earlier value of either goes.
                headers = [h for h in message.get("headers", ()) if h[0].lower() not in _OURS]
                message["headers"] = [*headers, *added]
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            request_id.reset(ids[0])
            correlation_id.reset(ids[1])

    return middleware


_REQUEST_ID, _CORRELATION_ID = REQUEST_ID.encode(), CORRELATION_ID.encode()
_OURS = (_REQUEST_ID, _CORRELATION_ID)


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    """The first value of the header `name` (lower case), as MutableScopeHeaders reads it."""
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _is_uuid(value: str) -> bool:
    try:
        UUID(value)
    except ValueError:
        return False
    return True
