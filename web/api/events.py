"""The whole event log for programs that follow it: /api/events."""

from __future__ import annotations

from typing import Annotated

from litestar import get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from store.application import Orders
from store.read.subscriptions import Checkpoint
from web.access import READ_LOG, WHO_MAY
from web.api.problems import responses
from web.api.schemas import LogPage
from web.api.views import event_view

# A transaction id (xid8) and a position (bigint), each short enough for its type.
CURSOR_PATTERN = r"^[0-9]{1,19}-[0-9]{1,18}$"


def cursor(checkpoint: Checkpoint) -> str:
    return f"{checkpoint.tx_id}-{checkpoint.position}"


def checkpoint(raw: str | None) -> Checkpoint:
    if not raw:
        return Checkpoint()
    tx_id, position = raw.split("-")
    return Checkpoint(int(tx_id), int(position))


@get(
    "/events",
    tags=["events"],
    responses=responses(400, 401, 403, 503),
    summary="The whole log, in commit order",
    description=WHO_MAY["read_log"],
    opt=READ_LOG,
)
async def event_log(
    orders: NamedDependency[Orders],
    after: Annotated[
        str | None,
        QueryParameter(
            pattern=CURSOR_PATTERN,
            description="The next_after of the page before; leave out to start at the beginning. "
            "Events appear in the order their transactions committed, so a reader that keeps "
            "next_after never misses one.",
        ),
    ] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
) -> LogPage:
    start = checkpoint(after)
    batch = await orders.log_page(start, limit + 1)
    page = batch[:limit]
    last = page[-1][1] if page else start
    return LogPage([event_view(event) for event, _ in page], cursor(last), len(batch) > limit)
