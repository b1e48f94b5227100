"""What an operator asks of the store beyond orders: is the database there, where each
read model stands, a rebuild, the last run of `orders verify`, who holds the horizon, and what
is parked."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import asyncpg

from store.database import ping
from store.horizon import Horizon, horizon
from store.log.verify_runs import VerifyRun, last_run
from store.personal import Keyring
from store.read.parking import Parking
from store.read.projections import PROJECTIONS
from store.read.replay import READ_MODELS, rebuild
from store.read.status import ReadModelStatus, read_model_status
from store.read.subscriptions import SubscriptionRunner
from store.workflows.parked_messages import ParkedMessages
from store.workflows.runners import workflows


class Operations:
    """The database's state for operators, and this instance's subscription runners."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        runners: Sequence[SubscriptionRunner] = (),
        *,
        horizon_warning: float = 30.0,
        keyring: Keyring | None = None,
    ) -> None:
        self.pool = pool
        self.runners = list(runners)
        self.horizon_warning = horizon_warning  # seconds of lag behind the horizon before it is "held"
        self.rebuilds: set[asyncio.Task[int]] = set()
        # Events subscriptions set aside; `keyring` seals the messages a retried notification writes.
        self.parking = Parking(pool, {**PROJECTIONS, **workflows(keyring)})
        self.parked_messages = ParkedMessages(pool)  # messages the outbox relay gave up on

    async def available(self) -> bool:
        return await ping(self.pool)

    async def read_models(self) -> list[ReadModelStatus]:
        return await read_model_status(self.pool)

    async def last_verify_run(self) -> VerifyRun | None:
        return await last_run(self.pool)

    async def horizon(self) -> Horizon:
        """How far the catch-up readers' horizon lags behind the head, and who holds it."""
        return await horizon(self.pool, warning_after=self.horizon_warning)

    def start_rebuild(self, name: str) -> asyncio.Task[int]:
        """Rebuild read model `name` (one of READ_MODELS) in the background; the app stops it on shutdown."""
        assert name in READ_MODELS, name
        task = asyncio.create_task(rebuild(self.pool, name))
        self.rebuilds.add(task)
        task.add_done_callback(self.rebuilds.discard)
        return task
