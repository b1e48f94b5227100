"""The application layer: the one door every use of orders goes through.

Pages, the JSON API, the workflows, the CLI and the seed all hold an `Orders`
and nothing else of the store's: commands go through `execute` (which always
loads from and takes snapshots), and reads through the queries below, which
raise the domain's own refusals (`OrderNotFound`, `VersionNotFound`) with one
message each. What a refusal means to a client is `refusal_kind`, said once
here for every entry point (docs/architecture.md, "Refusals"). Queries read
the primary, or a replica for a copy made by `reading_from_replicas`
(store/replicas.py); commands always go to the primary.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import datetime
from typing import Literal, TypeVar
from uuid import UUID

import asyncpg
import msgspec

from domain.access import Action, Actor, Forbidden, require, sees, system_actor
from domain.customer import (
    ChangeCustomerDetails,
    CustomerCommand,
    ForgetCustomer,
    RegisterCustomer,
    customer_stream,
)
from domain.errors import (
    CustomerForgottenError,
    CustomerNotFound,
    CustomerNotRegistered,
    DomainError,
    InvalidInput,
    NotFound,
    OrderNotFound,
    StateConflict,
    VersionNotFound,
)
from domain.order import Command, CreateOrder, Order, PlaceOrder, decide, initial_state
from domain.personal import ERASED
from store import metrics
from store.customers import CustomerRow, Customers
from store.log.commands import CommandResult, StaleVersion, handle
from store.log.event_store import EventStore, LogQuery, RecordedEvent
from store.log.export import export
from store.log.live import horizon_on
from store.log.notifier import Notifier
from store.log.pages import read_log_page, read_stream_page
from store.log.snapshots import DEFAULT_EVERY, Snapshots
from store.personal import Keyring, MasterKey, nested_owners
from store.read.read_model import (
    CustomerSummary,
    DaySales,
    OrderList,
    OrderQuery,
    OrderSummary,
    ReadModel,
    Summaries,
)
from store.read.subscriptions import Checkpoint
from store.replicas import REPLICA_FAILURES, ReadSide, Replicas
from store.tracing import correlated, current_correlation
from store.workflows.outbox import NotificationPage, NotificationQuery, Outbox, opened_notification

log = logging.getLogger("orders.commands")

__all__ = [
    "CommandResult",
    "CustomerView",
    "Envelope",
    "LogQuery",
    "NotificationQuery",
    "OrderAt",
    "OrderQuery",
    "Orders",
    "RefusalKind",
    "StaleVersion",
    "refusal_kind",
]

T = TypeVar("T")

RefusalKind = Literal["invalid", "conflict", "not_found", "stale", "forbidden"]


def refusal_kind(error: DomainError | StaleVersion) -> RefusalKind:
    """What a refusal means to whoever sent the command or query.

    invalid: a value breaks a rule whatever the order's state, so the request
    must change; conflict: the order's current state refuses a sound request;
    not_found: no such order or version; stale: the sender decided on a
    version the order has moved on from; forbidden: the actor's role may not.
    """
    if isinstance(error, StaleVersion):
        return "stale"
    if isinstance(error, Forbidden):
        return "forbidden"
    if isinstance(error, NotFound):
        return "not_found"
    if isinstance(error, StateConflict):
        return "conflict"
    assert isinstance(error, InvalidInput), f"{type(error).__name__} is not classified"
    return "invalid"


class Envelope(msgspec.Struct, frozen=True):
    """What a command carries besides its own fields: which attempt, against what, from whom.

    `command_id` makes a retry write nothing; `expected_version` (None: no
    check) refuses a decision taken on an older order, unless `merge` finds
    that nothing since touches what the command changes.
    """

    command_id: UUID
    expected_version: int | None = None
    merge: bool = False
    correlation_id: UUID | None = None
    causation_id: str | None = None
    requested_at: datetime | None = None


class OrderAt(msgspec.Struct, frozen=True):
    """The order as it was after `order.version` events; `latest` is its version now."""

    order: Order
    latest: int


class CustomerView(msgspec.Struct, frozen=True):
    """A customer as a person allowed to see them sees them: personal fields opened, or ERASED."""

    customer_id: str
    name: str
    email: str
    address: str
    status: str  # "registered" or "forgotten"
    version: int
    registered_at: datetime
    updated_at: datetime
    forgotten_reason: str | None = None

    @property
    def forgotten(self) -> bool:
        return self.status == "forgotten"


# Who acts when nobody in particular does: the CLI's own work, tests of the store.
SERVICE = system_actor("service")


def _shallow_copy(orders: Orders) -> Orders:
    """A copy sharing every attribute (copy.copy, without its generic machinery: one per request)."""
    copied = object.__new__(type(orders))
    copied.__dict__.update(orders.__dict__)
    return copied


def _reaching(order_id: str, latest: int, has: int | None) -> int:
    """`latest`, the order's version now; OrderNotFound for none, VersionNotFound below `has`."""
    if latest == 0:
        raise OrderNotFound(f"There is no order {order_id}.")
    if has is not None and has > latest:
        raise VersionNotFound(f"Order {order_id} has {latest} versions; there is no version {has}.")
    return latest


class Orders:
    """Every command and query on orders, as one actor may make them (`acting_as`).

    Each method checks the actor's role first (domain/access.py). A customer
    acts on their own orders only: any other order is not found, exactly as
    a missing one, so its existence does not leak.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        snapshot_every: int = DEFAULT_EVERY,
        notifier: Notifier | None = None,
        actor: Actor = SERVICE,
        replicas: Replicas | None = None,
        master: MasterKey | None = None,
    ) -> None:
        """`master` wraps the customers' keys (store/personal/master.py); without one, a key made
        for this instance alone, which no other process can open (tests of one process)."""
        self.actor = actor
        self._owned: set[str] = set()  # orders a customer actor was found to own (never changes)
        self.pool = pool
        self.store = EventStore(pool, notifier=notifier)
        self.snapshots = Snapshots(pool, every=snapshot_every)
        self.read_model = ReadModel(pool)
        self.summaries = Summaries(pool)
        self.outbox = Outbox(pool)
        self.keyring = Keyring(pool, master or MasterKey.generate())
        self.customers = Customers(pool, self.keyring)
        # Queries read through `_reads()`: the primary's side, unless `reading_from_replicas`.
        self.replicas = replicas
        self._primary = ReadSide(
            pool, self.store, self.snapshots, self.read_model, self.summaries, self.outbox
        )
        self._on_replicas = False
        self._after: int | None = None
        self._side: ReadSide | None = None

    def acting_as(self, actor: Actor) -> Orders:
        """The same service (stores, caches) for `actor`'s requests."""
        acting = _shallow_copy(self)
        acting.actor, acting._owned = actor, set()
        return acting

    def reading_from_replicas(self, after: int | None = None) -> Orders:
        """The same, with its queries on a replica (store/replicas.py) that has replayed WAL position
        `after` (the client's last write), or on the primary when none has within the wait.

        One choice for all the queries of this copy (one request), so a page never mixes two
        servers' states. Commands still go to the primary.
        """
        reading = _shallow_copy(self)
        reading._on_replicas, reading._after, reading._side = self.replicas is not None, after, None
        return reading

    async def _reads(self) -> ReadSide:
        if not self._on_replicas or self.replicas is None:
            return self._primary
        if self._side is None:
            self._side = await self.replicas.choose(self._after) or self._primary
        return self._side

    async def _read(self, query: Callable[[ReadSide], Awaitable[T]]) -> T:
        """`query` where this copy reads; on the primary, and from then on, if its replica fails it."""
        side = await self._reads()
        try:
            return await query(side)
        except REPLICA_FAILURES as error:
            if side is self._primary or self.replicas is None:
                raise
            self.replicas.failed(side, error)
            self._side = self._primary
            return await query(self._primary)

    async def _reach(self, order_id: str, action: Action = "read_orders") -> None:
        """Refuse an actor who may not do `action`, or a customer asking for another's order."""
        require(self.actor, action)
        if self.actor.is_customer and order_id not in self._owned:
            # One lookup per order and request: a page asks for the same order several times.
            row = await self._read(lambda r: r.read_model.get_order(order_id))
            if row is None or not sees(self.actor, row.customer_id):
                raise OrderNotFound(f"There is no order {order_id}.")
            self._owned.add(order_id)

    # ------------------------------------------------------------ commands

    async def execute(self, command: Command, envelope: Envelope) -> CommandResult:
        """Decide and append, exactly once per command id (store/log/commands.py), as the actor.

        A customer's new order is always their own, whatever customer id it names. Without a
        correlation id of its own, the command takes the one of what is being handled (the
        request's, store/tracing.py). Each command is counted (store/metrics.py) and logged.
        """
        correlation = envelope.correlation_id or current_correlation()
        started, outcome = time.perf_counter(), "error"
        with correlated(correlation):
            try:
                result = await self._execute(
                    command, msgspec.structs.replace(envelope, correlation_id=correlation)
                )
                outcome = "repeated" if result.duplicate else "accepted"
                return result
            except (DomainError, StaleVersion) as refused:
                outcome = refusal_kind(refused)
                raise
            finally:
                seconds = time.perf_counter() - started
                kind = type(command).__name__
                metrics.command_handled(kind, outcome, seconds)
                if log.isEnabledFor(logging.INFO):  # not in text logs (web/logs.py): no line to build
                    log.info(
                        "command %s on order %s: %s in %.1f ms",
                        *(kind, command.order_id, outcome, seconds * 1000),
                        extra={
                            "command": kind,
                            "order_id": command.order_id,
                            "outcome": outcome,
                            "ms": seconds * 1000,
                        },
                    )

    async def _execute(self, command: Command, envelope: Envelope) -> CommandResult:
        if isinstance(command, CreateOrder):
            require(self.actor, "write_orders")
            if self.actor.is_customer:
                command = msgspec.structs.replace(command, customer_id=self.actor.customer_id or "")
            # The command's own faults first (a blank customer id, an unknown currency), as the
            # domain words them; only a well-formed order is asked whether its customer is registered.
            decide(command, initial_state)
        else:
            await self._reach(command.order_id, "write_orders")
        try:
            command = await self._for_its_customer(command)
        except (CustomerNotRegistered, CustomerForgottenError):
            # A repeat of a command already handled answers as the first time (handle sees to
            # it), even when its customer has been forgotten since.
            if await self.store.find_command(envelope.command_id) is None:
                raise
        return await handle(
            self.store,
            command,
            command_id=envelope.command_id,
            expected_version=envelope.expected_version,
            actor=self.actor,
            correlation_id=envelope.correlation_id,
            causation_id=envelope.causation_id,
            requested_at=envelope.requested_at,
            snapshots=self.snapshots,
            merge=envelope.merge,
        )

    async def _for_its_customer(self, command: Command) -> Command:
        """A new order must be for a registered customer, not forgotten; placing one ships to
        their address as it is now, copied sealed (never in clear)."""
        if isinstance(command, CreateOrder):
            await self._registered(command.customer_id, "order for")
        elif isinstance(command, PlaceOrder):
            found = await self.customers.row_of_order(command.order_id)
            if found is not None:
                row = self._checked(*found, "place an order for")
                command = msgspec.structs.replace(command, ship_to=row.address)
        return command

    async def _registered(self, customer_id: str, doing: str) -> CustomerRow:
        """The customer's row, for a command about to act for them: registered, and not forgotten."""
        return self._checked(customer_id, await self.customers.row(customer_id), doing)

    @staticmethod
    def _checked(customer_id: str, row: CustomerRow | None, doing: str) -> CustomerRow:
        if row is None:
            raise CustomerNotRegistered(
                f"There is no customer {customer_id}: register them (with their shipping address) first."
            )
        if row.status == "forgotten":
            raise CustomerForgottenError(f"Customer {customer_id} was forgotten: you cannot {doing} them.")
        return row

    async def written(self, result: CommandResult, *, opened: bool = True) -> list[RecordedEvent]:
        """The events a command wrote (or, for a repeat, first wrote); sealed as stored unless `opened`."""
        first, last = result.first_version, result.last_version
        events = await read_stream_page(self.pool, result.order.order_id, first - 1, last - first + 1)
        return await self._opened_events(events) if opened else events

    async def opened_json(self, value: object) -> object:
        """A JSON-like value kept with its personal fields sealed (an API answer kept for an
        Idempotency-Key), opened for whoever is shown it: ERASED where the customer is forgotten."""
        await self._load_keys(nested_owners(value))
        return self.keyring.open_nested(value)

    # ------------------------------------------------------------ customers

    async def register_customer(self, command: RegisterCustomer, envelope: Envelope) -> CustomerView:
        """A new customer, with a key of their own; a customer account registers itself only."""
        require(self.actor, "write_orders")
        if self.actor.is_customer:
            command = msgspec.structs.replace(command, customer_id=self.actor.customer_id or "")
        return await self._customer_command(command, envelope)

    async def change_customer(self, command: ChangeCustomerDetails, envelope: Envelope) -> CustomerView:
        """New details (all three); a customer account changes its own only."""
        require(self.actor, "write_orders")
        if not sees(self.actor, command.customer_id):
            raise CustomerNotFound(f"There is no customer {command.customer_id}.")
        return await self._customer_command(command, envelope)

    async def forget_customer(self, command: ForgetCustomer, envelope: Envelope) -> CustomerView:
        """Delete the customer's key and record why (admins only): their personal data is erased
        everywhere it is sealed. Forgetting a forgotten customer changes nothing."""
        require(self.actor, "administer")
        return await self._customer_command(command, envelope)

    async def _customer_command(self, command: CustomerCommand, envelope: Envelope) -> CustomerView:
        kind = type(command).__name__
        started, outcome = time.perf_counter(), "error"
        correlation = envelope.correlation_id or current_correlation()
        with correlated(correlation):
            try:
                result = await self.customers.handle(
                    command, command_id=envelope.command_id, actor=self.actor, correlation_id=correlation
                )
                outcome = "accepted" if result.changed else "repeated"
            except DomainError as refused:
                outcome = refusal_kind(refused)
                raise
            finally:
                seconds = time.perf_counter() - started
                metrics.command_handled(kind, outcome, seconds)
                log.info(
                    "command %s on customer %s: %s in %.1f ms",
                    *(kind, command.customer_id, outcome, seconds * 1000),
                    extra={"command": kind, "customer_id": command.customer_id, "outcome": outcome},
                )
        return await self.customer(command.customer_id, primary=True)

    async def customer(self, customer_id: str, *, primary: bool = False) -> CustomerView:
        """The customer, opened for the actor (who may be that customer, or staff)."""
        require(self.actor, "read_orders")
        row = None
        if sees(self.actor, customer_id) and "\x00" not in customer_id:  # text holds no NUL: nobody
            if primary:
                row = await self.customers.row(customer_id)
            else:
                row = await self._read(lambda r: Customers(r.pool, self.keyring).row(customer_id))
        if row is None:
            raise CustomerNotFound(f"There is no customer {customer_id}.")
        return (await self._opened_rows([row]))[0]

    async def list_customers(
        self, after: str | None = None, limit: int = 50, prefix: str | None = None
    ) -> tuple[list[CustomerView], str | None]:
        """Customers newest first (staff only), keyset paged; `prefix` of the customer id.

        Names and addresses are sealed, so the database cannot search them; ids it can.
        """
        require(self.actor, "read_log")
        page = await self._read(lambda r: Customers(r.pool, self.keyring).page(after, limit, prefix))
        return await self._opened_rows(page.customers), page.next_after

    async def customer_events(self, customer_id: str) -> list[RecordedEvent]:
        """The customer's own events, oldest first, opened (who may: as for `customer`)."""
        require(self.actor, "read_orders")
        if not sees(self.actor, customer_id) or "\x00" in customer_id:
            raise CustomerNotFound(f"There is no customer {customer_id}.")
        stream = customer_stream(customer_id)
        events = await self._read(lambda r: read_stream_page(r.pool, stream, 0, 2**31 - 1))
        if not events:
            raise CustomerNotFound(f"There is no customer {customer_id}.")
        return await self._opened_events(events)

    async def customer_erased(self, customer_id: str) -> bool:
        """Whether the customer's key is gone: what is sealed with it reads ERASED."""
        await self._load_keys([customer_id])
        return self.keyring.erased(customer_id)  # a key wrapped by another master key is not erased

    # ------------------------------------------------------ opening

    async def _load_keys(self, customer_ids: Iterable[str]) -> None:
        """The customers' keys, read where this copy's queries read (a replica's copy of
        `customer_keys` serves while the primary is down)."""
        ids = list(customer_ids)
        await self._read(lambda r: self.keyring.load(ids, r.pool))

    async def _opened_rows(self, rows: list[CustomerRow]) -> list[CustomerView]:
        await self._load_keys(row.customer_id for row in rows)
        opened = self.keyring.open
        views = []
        for row in rows:
            if row.status == "forgotten":
                name = email = address = ERASED
            else:
                name, email, address = opened(row.name), opened(row.email), opened(row.address)
            views.append(
                CustomerView(
                    row.customer_id,
                    name,
                    email,
                    address,
                    row.status,
                    row.version,
                    row.registered_at,
                    row.updated_at,
                    row.forgotten_reason,
                )
            )
        return views

    async def opened_order(self, order: Order) -> Order:
        """An order a command returned (`CommandResult.order`), its personal fields opened."""
        return await self._opened_order(order)

    async def _opened_order(self, order: Order) -> Order:
        if not order.ship_to:
            return order
        await self._load_keys(self.keyring.owners([order]))
        return self.keyring.opened(order)

    async def opened_events_of(self, written: list[RecordedEvent]) -> list[RecordedEvent]:
        """The events a command of this actor wrote (`written(opened=False)`), opened."""
        return await self._opened_events(written)

    async def opened_events(self, events: list[RecordedEvent]) -> list[RecordedEvent]:
        """Events read elsewhere (the live feed's), opened for a reader of the log."""
        require(self.actor, "read_log")
        return await self._opened_events(events)

    async def _opened_events(self, events: list[RecordedEvent]) -> list[RecordedEvent]:
        """The events with their personal fields opened (ERASED where the key is gone)."""
        owners = self.keyring.owners(e.event for e in events)
        if not owners:
            return events
        await self._load_keys(owners)
        opened = self.keyring.opened
        return [msgspec.structs.replace(e, event=opened(e.event)) for e in events]

    # -------------------------------------------------------- one order

    async def latest_version(self, order_id: str, *, has: int | None = None) -> int:
        """The order's version now; VersionNotFound when it does not reach version `has`."""
        await self._reach(order_id)
        latest = await self._read(lambda r: r.store.stream_version(order_id))
        return _reaching(order_id, latest, has)

    async def known_version(self, order_id: str, latest: int, *, has: int | None = None) -> int:
        """`latest_version` when the version was read already, on the primary in the request's
        first round trip (web/access.py): the same checks, the same errors."""
        await self._reach(order_id)
        return _reaching(order_id, latest, has)

    async def version_at(self, order_id: str, moment: datetime) -> int:
        """The order's version as it stood at `moment`."""
        await self._reach(order_id)
        version = await self._read(lambda r: r.store.version_at(order_id, moment))
        if version == 0:
            await self.latest_version(order_id)
            raise VersionNotFound(
                f"Order {order_id} did not exist yet at {moment.isoformat()}: pick a later moment."
            )
        return version

    async def order_at(
        self, order_id: str, version: int | None = None, at: datetime | None = None
    ) -> OrderAt:
        """The order now, at a version, or as it was at a moment (from the nearest snapshot)."""
        if at is not None:
            version = await self.version_at(order_id, at)
        latest = await self.latest_version(order_id, has=version)
        order, _ = await self._read(lambda r: r.snapshots.load(order_id, version))
        return OrderAt(await self._opened_order(order), latest)

    async def state(self, order_id: str, version: int) -> Order:
        """The order after its first `version` events, for a version already known to exist."""
        await self._reach(order_id)
        order, _ = await self._read(lambda r: r.snapshots.load(order_id, version))
        return await self._opened_order(order)

    async def events(self, order_id: str, up_to: int | None = None, *, after: int = 0) -> list[RecordedEvent]:
        """The order's events after version `after`, up to `up_to` (default: all)."""
        await self._reach(order_id)
        return await self._opened_events(
            await self._read(lambda r: r.store.read_stream(order_id, up_to, after_version=after))
        )

    async def authors(self, order_id: str, after: int, up_to: int) -> list[str]:
        """Who made the order's changes after version `after`, up to `up_to`, by name."""
        await self._reach(order_id)
        return await self._read(lambda r: r.store.actors(order_id, after, up_to))

    async def event_page(self, order_id: str, after: int, limit: int) -> list[RecordedEvent]:
        """Up to `limit` of the order's events after version `after`."""
        await self._reach(order_id)
        events = await self._read(lambda r: read_stream_page(r.pool, order_id, after, limit))
        if not events and (
            after == 0 or not await self._read(lambda r: read_stream_page(r.pool, order_id, 0, 1))
        ):
            raise OrderNotFound(f"There is no order {order_id}.")
        return await self._opened_events(events)

    async def summary(self, order_id: str) -> OrderSummary:
        """The order's read-model row, never stale: the append that changes the order writes it."""
        require(self.actor, "read_orders")
        row = await self._read(lambda r: r.read_model.get_order(order_id))
        if row is None or not sees(self.actor, row.customer_id):
            raise OrderNotFound(f"There is no order {order_id}.")
        return row

    # -------------------------------------------------------- many orders

    async def list_orders(self, query: OrderQuery) -> OrderList:
        """Newest first, keyset paged, from the read model; a customer's list is of their orders."""
        require(self.actor, "read_orders")
        if self.actor.is_customer:
            query = msgspec.structs.replace(query, customer=self.actor.customer_id, exact=True)
        return await self._read(lambda r: r.read_model.list_orders(query))

    async def order_ids_of(self, customer_id: str) -> set[str]:
        require(self.actor, "read_orders")
        if not sees(self.actor, customer_id):
            return set()
        return await self._read(lambda r: r.read_model.order_ids_of(customer_id))

    async def customer_summary(self, customer_id: str) -> CustomerSummary | None:
        require(self.actor, "read_orders")
        if not sees(self.actor, customer_id):
            return None
        return await self._read(lambda r: r.summaries.customer_summary(customer_id))

    async def sales_by_day(self, days: int) -> list[DaySales]:
        require(self.actor, "read_log")
        return await self._read(lambda r: r.summaries.sales_by_day(days))

    async def notifications(self, query: NotificationQuery) -> tuple[NotificationPage, int]:
        """A page of notifications (recipients and bodies opened, ERASED once their customer is
        forgotten), and how many of the order's events still await theirs."""
        require(self.actor, "read_log")
        awaited, order_id = 0, query.order_id or ""
        if order_id:
            awaited = await self._read(lambda r: r.outbox.awaited(order_id))
        page = await self._read(lambda r: r.outbox.page(query))
        await self._load_keys({n.customer_id for n in page.notifications if n.recipient or n.body})
        opened = [await opened_notification(self.keyring, n) for n in page.notifications]
        shown = msgspec.structs.replace(page, notifications=[n for n in opened if n is not None])
        return shown, awaited

    # ------------------------------------------------------------ the log

    async def log_page(self, after: Checkpoint, limit: int) -> list[tuple[RecordedEvent, Checkpoint]]:
        """The whole log after `after`, in commit-safe order: a reader keeping the cursor misses nothing."""
        require(self.actor, "read_log")
        page = await self._read(lambda r: read_log_page(r.pool, after, limit))
        opened = await self._opened_events([event for event, _ in page])
        return [(event, at) for event, (_, at) in zip(opened, page, strict=True)]

    async def log_horizon(self) -> Checkpoint:
        """Where a page of the log ends and its live stream (read on the primary) takes over: the
        horizon of the server this copy reads. A replica's is behind the primary's, so what it has
        not replayed yet comes through the stream, not lost between the two servers."""
        require(self.actor, "read_log")
        return await self._read(lambda r: horizon_on(r.pool))

    async def read_log(self, query: LogQuery) -> list[RecordedEvent]:
        """Events newest first, for people reading the log."""
        require(self.actor, "read_log")
        return await self._opened_events(await self._read(lambda r: r.store.read_log(query)))

    async def export(self, fmt: str, order_id: str | None = None) -> AsyncIterator[bytes]:
        """The log (or one order's stream) as stored, streamed in chunks."""
        if order_id is None:
            require(self.actor, "read_log")
        else:
            await self._reach(order_id)
        return export((await self._reads()).pool, fmt, order_id)
