"""A workflow runner on its own: `python -m tests.support.runner_process DATABASE_URL`.

Runs the notification workflow and the outbox relay, as an app instance
would, so that a test can kill the whole process at any moment.
"""

from __future__ import annotations

import asyncio
import sys

from store.database import connect_pool
from store.log.event_store import EventStore
from store.read.subscriptions import SubscriptionRunner
from store.workflows.outbox import OUTBOX_CHANNEL, CustomerNotifications, LogSender, Relay
from store.workflows.runners import LeaderLoop


async def main(url: str) -> None:
    pool = await connect_pool(url, min_size=1, max_size=4)
    store = EventStore(pool)
    relay = Relay(store.pool, LogSender(), batch_size=20, send_timeout=1.0)
    jobs = [
        SubscriptionRunner(url, pool, CustomerNotifications(), batch_size=20, lock_retry=0.05),
        LeaderLoop(url, "outbox_relay", relay.deliver_due, channel=OUTBOX_CHANNEL, lock_retry=0.05),
    ]
    await asyncio.gather(*(job.run() for job in jobs))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
