"""What the order page shows at a version: the order, a window of its timeline, the slider."""

from __future__ import annotations

from typing import Any

from litestar.exceptions import ClientException

from domain.order import initial_state
from store.application import Orders
from web import forms
from web.forms import FormError
from web.presentation import timeline

# Streams up to this long show their whole timeline; longer ones a window around the version.
FULL_TIMELINE = 60
WINDOW = 20
PLAY_SPEEDS = {"slow": 1500, "normal": 700, "fast": 250}


def parse_order_id(raw: str) -> str:
    try:
        return forms.order_id(raw)
    except FormError as error:
        raise ClientException(error.message) from None


def order_filter(raw: str | None) -> str | None:
    """The order a list is narrowed to: none when the field is blank."""
    return parse_order_id(raw.strip()) if raw and raw.strip() else None


async def order_context(
    orders: Orders, order_id: str, version: int | None = None, **extra: Any
) -> dict[str, Any]:
    """The page's context; OrderNotFound or VersionNotFound when there is nothing to show."""
    latest = await orders.latest_version(order_id, has=version)
    shown = latest if version is None else version
    first, last = 1, latest
    if latest > FULL_TIMELINE:
        first, last = max(1, shown - WINDOW), min(latest, shown + WINDOW)
    before = initial_state
    if first > 1:
        before = await orders.state(order_id, first - 1)
    entries = timeline(await orders.events(order_id, last, after=first - 1), before)
    shown_entry = entries[shown - first]
    return {
        "order": shown_entry.state_after,
        "shown_entry": shown_entry,
        "entries": entries,
        "first": first,
        "last": last,
        "latest": latest,
        "shown": shown,
        "current": shown == latest,
        "problem": None,
        "values": {},
        "play": None,
        "play_speeds": PLAY_SPEEDS,
        **extra,
    }
