"""The states this process last appended, so a command can decide without reading the stream first."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from domain.order import Order

# How long a state is kept after its append: the hint pays off when the next command on the
# order follows soon (a clerk adding items one after another); later, a read costs one query.
# Bounded in age as well as in number, so the memory it holds levels off within minutes of a
# steady load, not after hours, and a placed order's shipping address is not held for longer.
KEEP_SECONDS = 120.0


class RecentStates:
    """The state after this process's latest append to each of the streams it wrote last.

    A hint, never the truth: other processes append too. A command decided on
    a hint appends with the hint's version as the expected one, so a stream
    that moved on elsewhere refuses the append and is read afresh.

    At most `size` states, none older than `seconds`; a cancelled order's is not
    kept, since every command on it is refused and a refusal on a hint is decided
    again on a fresh read.
    """

    def __init__(
        self, size: int = 10_000, seconds: float = KEEP_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.size, self.seconds, self.clock = size, seconds, clock
        self._states: OrderedDict[str, tuple[Order, float]] = OrderedDict()  # oldest append first

    def __len__(self) -> int:
        return len(self._states)

    def get(self, stream_id: str) -> Order | None:
        kept = self._states.get(stream_id)
        if kept is None:
            return None
        if self.clock() - kept[1] > self.seconds:
            del self._states[stream_id]
            return None
        return kept[0]

    def put(self, stream_id: str, state: Order) -> None:
        known = self._states.get(stream_id)
        if known is not None and known[0].version >= state.version:
            return  # a racing append of this process got further
        if state.status == "cancelled":
            self._states.pop(stream_id, None)
            return
        now = self.clock()
        self._states[stream_id] = (state, now)
        self._states.move_to_end(stream_id)
        self._drop_old(now)

    def forget(self, stream_id: str) -> None:
        self._states.pop(stream_id, None)

    def _drop_old(self, now: float) -> None:
        """Drop from the oldest end: past the size, or kept longer than `seconds`."""
        states = self._states
        while states:
            oldest = next(iter(states.values()))
            if len(states) <= self.size and now - oldest[1] <= self.seconds:
                return
            states.popitem(last=False)
