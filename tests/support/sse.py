"""A small client of server-sent events: the events of a text/event-stream body."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx


class SSEEvent:
    def __init__(self, event_id: str | None, event: str | None, data: str) -> None:
        self.id, self.event, self.data = event_id, event, data


async def sse_events(response: httpx.Response) -> AsyncIterator[SSEEvent]:
    """Parse a text/event-stream body into events (comments are skipped)."""
    event_id: str | None = None
    event: str | None = None
    data: list[str] = []
    async for line in response.aiter_lines():
        if line == "":
            if data or event:
                yield SSEEvent(event_id, event, "\n".join(data))
            event_id, event, data = None, None, []
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "id":
                event_id = value
            elif field == "event":
                event = value
            elif field == "data":
                data.append(value)
