"""Demo data: realistic orders through the real command handler, so a new user has a history to explore."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from uuid import uuid4

from domain.access import system_actor
from domain.errors import DomainError
from domain.order import AddItem, CancelOrder, Command, CreateOrder, PlaceOrder, RemoveItem
from store.application import Envelope, Orders

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

Progress = Callable[[int, int], Awaitable[None]]


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
    """Write `count` orders (a few long-lived ones with hundreds of edits); return the commands run."""
    seeder = orders.acting_as(system_actor("seed"))
    customers = [f"customer-{n:03d}" for n in range(max(3, count // 4))]
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
