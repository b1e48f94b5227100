"""The states this process last appended, so a command can decide without reading the stream first."""

from __future__ import annotations

from collections import OrderedDict

from domain.order import Order


class RecentStates:
    """The state after this process's latest append to each of the streams it wrote last.

    A hint, never the truth: other processes append too. A command decided on
    a hint appends with the hint's version as the expected one, so a stream
    that moved on elsewhere refuses the append and is read afresh.
    """

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._states: OrderedDict[str, Order] = OrderedDict()

    def get(self, stream_id: str) -> Order | None:
        state = self._states.get(stream_id)
        if state is not None:
            self._states.move_to_end(stream_id)
        return state

    def put(self, stream_id: str, state: Order) -> None:
        known = self._states.get(stream_id)
        if known is not None and known.version >= state.version:
            return  # a racing append of this process got further
        self._states[stream_id] = state
        self._states.move_to_end(stream_id)
        if len(self._states) > self.size:
            self._states.popitem(last=False)

    def forget(self, stream_id: str) -> None:
        self._states.pop(stream_id, None)
