"""What is being handled now, for log lines and event metadata: a request's id and a correlation id.

The web sets both for each request (web/logs.py); the application layer
carries the correlation id into the command's events, and the outbox relay
sets the one of the event that caused the message it delivers. Context
variables: each request and each task sees its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from uuid import UUID

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)


def current_correlation() -> UUID | None:
    """The correlation id of what is being handled, if it is one (a UUID)."""
    value = correlation_id.get()
    if value is None:
        return None
    try:
        return UUID(value)
    except ValueError:
        return None


@contextmanager
def correlated(value: str | UUID | None) -> Iterator[None]:
    """Log lines written inside carry `value` as their correlation id (None: leave it as it is)."""
    if value is None:
        yield
        return
    token = correlation_id.set(str(value))
    try:
        yield
    finally:
        correlation_id.reset(token)
