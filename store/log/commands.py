"""Command handling: load the stream, decide, append. The one entry point for writes.

The load is skipped when this process made the stream's last append (the
store's `recent` states), and for a new order, whose stream is empty: the
append's version check makes a decision on a state that moved on elsewhere
fail, and it is then made again on a fresh read.
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import datetime
from uuid import UUID

import msgspec

from domain.access import Actor
from domain.errors import DomainError
from domain.order import (
    AddItem,
    Command,
    CreateOrder,
    Event,
    ItemAdded,
    ItemRemoved,
    Order,
    RemoveItem,
    decide,
    fold,
    initial_state,
)
from store import metrics
from store.log.event_store import AppendResult, ConcurrencyError, EventStore, Metadata
from store.log.snapshots import Snapshots

# Who wrote before there were accounts; tests of the handler alone write as this.
ANONYMOUS = Actor("anonymous", "anonymous", "system")

# A writer that asked for no version check is retried this often on a race,
# after a short random pause so that racing writers spread out.
RACE_RETRIES = 12


class CommandResult(msgspec.Struct, frozen=True):
    order: Order
    first_version: int
    last_version: int
    duplicate: bool


class StaleVersion(ConcurrencyError):
    """The client decided on an older version than the stream's; it carries the fresh order."""

    def __init__(self, stream_id: str, expected: int, order: Order) -> None:
        super().__init__(stream_id, expected, order.version)
        self.order = order


async def handle(
    store: EventStore,
    command: Command,
    *,
    command_id: UUID,
    expected_version: int | None = None,
    actor: Actor = ANONYMOUS,
    correlation_id: UUID | None = None,
    requested_at: datetime | None = None,
    snapshots: Snapshots | None = None,
    causation_id: str | None = None,
    merge: bool = False,
) -> CommandResult:
    """Handle a command exactly once per command id.

    A repeat of a command id already handled returns the first result and
    writes nothing, even when the command would now be refused (a double
    click on "place"). `expected_version`, when given, must be the stream's
    version, or StaleVersion is raised. With `merge`, a stream that moved on
    only through events that do not `conflict` with the command is decided on
    afresh instead, and a lost race for the append is retried the same way.
    """
    metadata = Metadata(
        command_id=str(command_id),
        correlation_id=str(correlation_id or command_id),
        causation_id=causation_id,
        actor=actor.name,
        actor_id=actor.id,
        requested_at=requested_at.isoformat() if requested_at else None,
    )
    for attempt in range(RACE_RETRIES + 1):
        # The first try decides on the state this process last appended, if it
        # has one: the append's version check keeps that honest. A refusal or a
        # version mismatch decided on it is decided again on a fresh read.
        state = store.recent.get(command.order_id) if attempt == 0 else None
        if state is None and attempt == 0 and isinstance(command, CreateOrder):
            # A new order's id was made for it just now: its stream is empty, so nothing to
            # read. A hint like the others; an id in use fails the append and is read then.
            state = initial_state
        hinted = state is not None
        if state is None:
            state = await _load(store, command.order_id, snapshots)
        seen = state.version if expected_version is None else expected_version
        if seen != state.version:
            if hinted:
                continue
            if not (merge and await _mergeable(store, command, seen, state.version)):
                stale = StaleVersion(command.order_id, seen, state)
                return await _repeat_or(store, command_id, stale)
        try:
            events: list[Event] = decide(command, state)
        except DomainError as error:
            if hinted:
                continue
            return await _repeat_or(store, command_id, error)
        new_state = fold(events, state)
        started = time.perf_counter()
        try:
            appended = await store.append(
                command.order_id, state.version, events, command_id, metadata, new_state
            )
        except ConcurrencyError:
            _appended("conflict", started)
            store.recent.forget(command.order_id)
            if (expected_version is not None and not merge and not hinted) or attempt == RACE_RETRIES:
                fresh = fold(await store.read_events(command.order_id))
                raise StaleVersion(command.order_id, seen, fresh) from None
            if not hinted:
                await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))  # jitter
            continue
        _appended("repeated" if appended.duplicate else "written", started, len(events))
        if appended.duplicate:
            return await _result(store, appended)
        if snapshots is not None:
            await snapshots.after_append(command.order_id, state.version, new_state)
        return CommandResult(new_state, appended.first_version, appended.last_version, False)
    raise AssertionError("unreachable")


def _appended(outcome: str, started: float, events: int = 0) -> None:
    metrics.APPEND_SECONDS.observe(time.perf_counter() - started)
    metrics.append_done(outcome)
    if outcome == "written":
        metrics.EVENTS_APPENDED.inc(events)


async def _load(store: EventStore, order_id: str, snapshots: Snapshots | None) -> Order:
    if snapshots is not None:
        state, _ = await snapshots.load(order_id)
        return state
    return fold(await store.read_events(order_id))


def conflicts(command: Command, unseen: list[Event]) -> bool:
    """Whether events the sender had not seen change what their command means.

    Adding or removing an item commutes with changes to other lines; placing
    and cancelling are decisions about the whole order, so any change the
    person did not see is theirs to look at first.
    """
    if not isinstance(command, AddItem | RemoveItem):
        return bool(unseen)
    return any(not isinstance(e, ItemAdded | ItemRemoved) or e.sku == command.sku for e in unseen)


async def _mergeable(store: EventStore, command: Command, seen: int, version: int) -> bool:
    if seen > version:
        return False
    unseen = await store.read_events(command.order_id, version, after_version=seen)
    return not conflicts(command, unseen)


async def _repeat_or(store: EventStore, command_id: UUID, error: Exception) -> CommandResult:
    previous = await store.find_command(command_id)
    if previous is None:
        raise error
    return await _result(store, previous)


async def _result(store: EventStore, appended: AppendResult) -> CommandResult:
    order = fold(await store.read_events(appended.stream_id, appended.last_version))
    return CommandResult(order, appended.first_version, appended.last_version, True)
