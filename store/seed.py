"""Demo data: realistic customers and orders, so a new user has a history to explore.

`seed` registers its customers (made-up names, email addresses at example
domains, street addresses) and sends the orders' commands through the
application layer, now; `seed_history` decides the same kind of commands at
moments spread over past days and writes their events through the import's
path (store/log/importing.py), hash chains computed as the append computes
them: each new customer's registration shortly before their first order, their
details sealed with a key of their own (store/personal) as a registration
through the application layer seals them, and each placed order shipping to the
customer's sealed address.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import asyncpg

from domain.access import system_actor
from domain.customer import CustomerRegistered, RegisterCustomer, customer_stream
from domain.errors import DomainError
from domain.order import (
    AddItem,
    CancelOrder,
    Command,
    CreateOrder,
    Event,
    PlaceOrder,
    RemoveItem,
    decide,
    fold,
    initial_state,
)
from domain.serialization import StoredEvent, encode_event, event_type
from store.application import Envelope, Orders
from store.customers import CustomerRow, Customers
from store.log.event_store import Metadata, metadata_encoder
from store.log.importing import BATCH, LogEvent, write_events
from store.log.integrity import event_hash
from store.personal import Keyring, MasterKey

CATALOG = [
    ("TEA-GREEN", "Green tea, 100 g", 450),
    ("TEA-BLACK", "Assam black tea, 250 g", 790),
    ("CUP-STONE", "Stoneware cup", 1200),
    ("POT-CAST", "Cast-iron teapot", 4950),
    ("KETTLE-1", "Gooseneck kettle", 6900),
    ("SCALE-01", "Kitchen scale", 2499),
    ("FILTER-50", "Paper filters, 50", 399),
    ("HONEY-500", "Wildflower honey, 500 g", 899),
    ("BISC-ALM", "Almond biscuits", 349),
    ("TRAY-OAK", "Oak serving tray", 3800),
    ("MUG-BLUE", "Blue enamel mug", 1450),
    ("SPOON-SET", "Tea spoons, set of 4", 1299),
]
CURRENCIES = ["EUR", "EUR", "EUR", "USD", "GBP"]
REASONS = ["Customer changed their mind", "Out of stock", "Duplicate order", "Payment failed"]

# Made-up people: each customer id always gets the same name, email address and address.
FIRST_NAMES = [
    "Amara",
    "Bruno",
    "Chiara",
    "Dmitri",
    "Elif",
    "Farid",
    "Greta",
    "Hugo",
    "Ines",
    "Jonas",
    "Keiko",
    "Lars",
    "Maya",
    "Nils",
    "Olga",
    "Pavel",
    "Quinn",
    "Rosa",
    "Sven",
    "Tariq",
]
LAST_NAMES = [
    "Abbott",
    "Berger",
    "Costa",
    "Dubois",
    "Eriksen",
    "Fischer",
    "Garcia",
    "Horvat",
    "Ivanova",
    "Jansen",
    "Kowalski",
    "Lindqvist",
    "Moreau",
    "Novak",
    "Okafor",
    "Petrov",
    "Rossi",
    "Schmidt",
]
STREETS = [
    "Linden Street",
    "Harbour Road",
    "Mill Lane",
    "Station Road",
    "Orchard Way",
    "Church Street",
    "Bridge Street",
    "Park Avenue",
    "Meadow Close",
    "Castle Hill",
]
TOWNS = [
    "10115 Berlin",
    "75011 Paris",
    "1012 Amsterdam",
    "EH1 1YZ Edinburgh",
    "00184 Roma",
    "1050 Bruxelles",
    "8001 Zürich",
    "2100 København",
    "1010 Wien",
    "28004 Madrid",
]
EMAIL_DOMAINS = ["example.com", "example.org", "example.net"]

SEED_ACTOR = system_actor("seed")

Progress = Callable[[int, int], Awaitable[None]]


def person(customer_id: str) -> RegisterCustomer:
    """The made-up details of a seeded customer, the same for the same id."""
    pick = random.Random(customer_id)
    first, last = pick.choice(FIRST_NAMES), pick.choice(LAST_NAMES)
    email = f"{first}.{last}{pick.randint(1, 99)}@{pick.choice(EMAIL_DOMAINS)}".lower()
    address = f"{pick.randint(1, 180)} {pick.choice(STREETS)}\n{pick.choice(TOWNS)}"
    return RegisterCustomer(customer_id, f"{first} {last}", email, address)


def _plan(order_id: str, customer: str, edits: int) -> list[Command]:
    """The commands of one order: create, add some items, maybe remove, then a lifecycle ending."""
    commands: list[Command] = [CreateOrder(order_id, customer, random.choice(CURRENCIES))]
    on_order: list[str] = []
    for _ in range(edits):
        if on_order and random.random() < 0.25:
            commands.append(RemoveItem(order_id, random.choice(on_order), None))
            continue
        sku, name, price = random.choice(CATALOG)
        commands.append(AddItem(order_id, sku, name, price, random.randint(1, 3)))
        on_order.append(sku)
    ending = random.random()
    if ending < 0.55:
        commands.append(PlaceOrder(order_id))
        if ending < 0.1:
            commands.append(CancelOrder(order_id, random.choice(REASONS)))
    elif ending < 0.75:
        commands.append(CancelOrder(order_id, random.choice(REASONS)))
    return commands


async def seed(orders: Orders, count: int, progress: Progress, *, concurrency: int = 8) -> int:
    """Register customers and write `count` orders for them (a few long-lived ones with hundreds of
    edits); return the commands run. A customer registered before is kept as they are."""
    seeder = orders.acting_as(SEED_ACTOR)
    customers = [f"customer-{n:03d}" for n in range(max(3, count // 4))]
    for customer_id in customers:
        # Registered already (an earlier seed): kept; forgotten: their new orders are refused and skipped.
        with contextlib.suppress(DomainError):
            await seeder.register_customer(person(customer_id), Envelope(uuid4()))
    long_lived = max(1, count // 100)
    plans = [
        _plan(
            str(uuid4()),
            random.choice(customers),
            random.randint(300, 500) if i < long_lived else random.randint(1, 8),
        )
        for i in range(count)
    ]
    total = sum(len(plan) for plan in plans)
    done = 0
    queue = list(reversed(plans))

    async def worker() -> None:
        nonlocal done
        while queue:
            for command in queue.pop():
                # A remove of a line already gone, a line past 999: skipped, as a person would.
                with contextlib.suppress(DomainError):
                    await seeder.execute(command, Envelope(uuid4()))
                done += 1
                if done % 200 == 0:
                    await progress(done, total)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    await progress(done, total)
    return done


# ------------------------------------------------------------- a past to travel in

# Orders are created more around late morning and evening, less at night and at weekends.
HOUR_WEIGHTS = [1, 1, 1, 1, 1, 2, 3, 5, 8, 10, 12, 12, 11, 10, 9, 9, 9, 10, 12, 13, 12, 9, 5, 2]
WEEKDAY_WEIGHTS = [10, 10, 10, 10, 11, 7, 6]
# A draft untouched this long would have been expired (store/workflows/expiry.py): only
# the last days' orders are left as drafts.
DRAFTS_WITHIN = timedelta(days=5)


def _moment(now: datetime, days: int) -> datetime:
    """A plausible moment in the last `days` days, before `now`: weighted by weekday and hour of day."""
    while True:
        day = (now - timedelta(days=random.randrange(days))).date()
        hour = random.choices(range(24), HOUR_WEIGHTS)[0]
        moment = datetime(day.year, day.month, day.day, hour, tzinfo=UTC) + timedelta(
            seconds=random.uniform(0, 3600)
        )
        if moment <= now and random.random() * 11 < WEEKDAY_WEIGHTS[day.weekday()]:
            return moment


def _timed_plan(
    order_id: str, customer: str, now: datetime, days: int, ship_to: str = ""
) -> list[tuple[datetime, Command]]:
    """One order's commands, each at the moment a person would have sent it; none after `now`.

    A placed order ships to `ship_to` (the customer's address, sealed).
    """
    at = _moment(now, days)
    plan = [
        PlaceOrder(c.order_id, ship_to) if isinstance(c, PlaceOrder) else c
        for c in _plan(order_id, customer, random.randint(1, 8))
    ]
    if isinstance(plan[-1], AddItem | RemoveItem) and now - at > DRAFTS_WITHIN:
        plan.append(PlaceOrder(order_id, ship_to))  # an old draft was placed in the end
    timed: list[tuple[datetime, Command]] = []
    for command in plan:
        timed.append((at, command))
        if isinstance(command, PlaceOrder):
            at += timedelta(hours=random.uniform(1, 48))  # a cancel comes hours or days later
        else:
            at += timedelta(seconds=random.uniform(20, 600))
    return [(moment, command) for moment, command in timed if moment <= now]


def _events_of(timed: list[tuple[datetime, Command]]) -> list[tuple[datetime, Event, Metadata]]:
    """Decide each command on the state before it, as the command handler would."""
    state = initial_state
    out: list[tuple[datetime, Event, Metadata]] = []
    for at, command in timed:
        try:
            events = decide(command, state)
        except DomainError:
            continue  # a remove of a line already gone: skipped, as a person would
        state = fold(events, state)
        command_id = str(uuid4())
        metadata = Metadata(command_id, command_id, None, SEED_ACTOR.name, SEED_ACTOR.id, at.isoformat())
        out.extend((at, event, metadata) for event in events)
    return out


# jsonb's own printing of the texts: the hash chain covers them as PostgreSQL prints them.
_AS_STORED = """
SELECT d::jsonb::text, m::jsonb::text
FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS u(d, m, n) ORDER BY n
"""


async def _history_customers(
    pool: asyncpg.Pool, keyring: Keyring, count: int
) -> tuple[dict[str, str], dict[str, CustomerRegistered]]:
    """The customers a history orders for, each with their sealed address; and the registrations
    to write for those not registered yet (their keys made). Forgotten ones are left out."""
    rows: dict[str, CustomerRow | None] = {}
    customers = Customers(pool, keyring)
    for customer_id in (f"customer-{n:03d}" for n in range(max(3, count // 4))):
        rows[customer_id] = await customers.row(customer_id)
    addresses = {c: row.address for c, row in rows.items() if row is not None and row.status == "registered"}
    new: dict[str, CustomerRegistered] = {}
    for customer_id in (c for c, row in rows.items() if row is None):
        await keyring.create(customer_id)
        d = person(customer_id)
        new[customer_id] = keyring.sealed(
            customer_id, CustomerRegistered(customer_id, d.name, d.email, d.address)
        )
        addresses[customer_id] = new[customer_id].address
    return addresses, new


def _registration(
    at: datetime, event: CustomerRegistered
) -> tuple[datetime, str, int, StoredEvent, Metadata]:
    """A customer's registration in the history, at `at`."""
    command_id = str(uuid4())
    metadata = Metadata(command_id, command_id, None, SEED_ACTOR.name, SEED_ACTOR.id, at.isoformat())
    return at, customer_stream(event.customer_id), 1, event, metadata


async def seed_history(
    pool: asyncpg.Pool,
    count: int,
    days: int,
    progress: Progress,
    *,
    now: datetime | None = None,
    keyring: Keyring | None = None,
) -> int:
    """Write `count` orders spread over the past `days` days, through the import's path; return the events.

    `keyring` seals the new customers' details (without one, a master key of this call alone: the
    details are sealed and no one can open them, which is all a benchmark needs).
    """
    now = now or datetime.now(UTC)
    keyring = keyring or Keyring(pool, MasterKey.generate())
    addresses, new = await _history_customers(pool, keyring, count)
    stamped: list[tuple[datetime, str, int, StoredEvent, Metadata]] = []
    first_order: dict[str, datetime] = {}
    for _ in range(count):
        order_id, customer_id = str(uuid4()), random.choice(list(addresses))
        events = _events_of(_timed_plan(order_id, customer_id, now, days, addresses[customer_id]))
        stamped.extend((at, order_id, n, event, meta) for n, (at, event, meta) in enumerate(events, start=1))
        if events:
            first_order[customer_id] = min(events[0][0], first_order.get(customer_id, now))
    for customer_id, event in new.items():  # registered a little before their first order
        at = first_order.get(customer_id, now) - timedelta(minutes=random.uniform(5, 240))
        stamped.append(_registration(at, event))
    # Positions follow time, as if the orders had been written as they happened.
    stamped.sort(key=lambda s: (s[0], s[1], s[2]))
    await progress(0, len(stamped))
    chain = ChainHeads()
    done = 0
    async with pool.acquire() as conn, conn.transaction():

        async def log_events() -> AsyncIterator[tuple[int | None, LogEvent]]:
            nonlocal done
            for start in range(0, len(stamped), BATCH):
                part = stamped[start : start + BATCH]
                texts = await conn.fetch(
                    _AS_STORED,
                    [encode_event(s[3]).decode() for s in part],
                    [metadata_encoder.encode(s[4]).decode() for s in part],
                )
                for (at, order_id, version, event, _), (data, metadata) in zip(part, texts, strict=True):
                    yield None, chain.next(order_id, version, event, at, data, metadata)
                done += len(part)
                await progress(done, len(stamped))

        await write_events(conn, log_events(), notify_history=True)
    return len(stamped)


class ChainHeads:
    """Hashes a stream's events as the append does: each over its content and the hash before it."""

    def __init__(self) -> None:
        self.heads: dict[str, bytes] = {}

    def next(
        self, order_id: str, version: int, event: StoredEvent, at: datetime, data: str, metadata: str
    ) -> LogEvent:
        event_id = uuid4()
        type_name = event_type(event)
        digest = event_hash(
            self.heads.get(order_id),
            order_id,
            version,
            str(event_id),
            type_name,
            event.schema_version,
            data,
            metadata,
            at,
        )
        self.heads[order_id] = digest
        return LogEvent(
            None, order_id, version, event_id, type_name, event.schema_version, at, data, metadata, digest
        )
