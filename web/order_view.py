"""What the order page shows at a version, rendered once per version and filled in per request.

An order at a version never changes, so the HTML of its page (or of a partial
of it) is kept in the app's `RenderCache` (web/render_cache.py) under a key of
everything it depends on, and pages answer `If-None-Match` with 304 while the
order stays at that version.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable
from typing import Any, get_args

from litestar import MediaType, Request
from litestar.exceptions import ClientException
from litestar.response import Response
from litestar.utils.scope.state import ScopeState
from markupsafe import Markup

from domain.access import Action, Actor, may
from domain.order import initial_state
from store.application import Orders
from web import forms
from web.access import stream_head
from web.forms import FormError
from web.presentation import timeline
from web.render_cache import (
    COMMAND_ID_PLACEHOLDER,
    CSRF_PLACEHOLDER,
    FRAGMENT_PLACEHOLDER,
    Prepared,
    RenderCache,
    fill,
    prepare,
)

# Streams up to this long show their whole timeline; longer ones a window around the version.
FULL_TIMELINE = 60
WINDOW = 20
PLAY_SPEEDS = {"slow": 1500, "normal": 700, "fast": 250}
ACTIONS: tuple[Action, ...] = get_args(Action)
# The browser keeps the page but asks each time whether it is still the one (a 304 if so).
REVALIDATE = {"cache-control": "private, no-cache", "vary": "HX-Request, HX-Target"}


def parse_order_id(raw: str) -> str:
    try:
        return forms.order_id(raw)
    except FormError as error:
        raise ClientException(error.message) from None


def order_filter(raw: str | None) -> str | None:
    """The order a list is narrowed to: none when the field is blank."""
    return parse_order_id(raw.strip()) if raw and raw.strip() else None


async def order_context(
    orders: Orders, order_id: str, version: int | None = None, *, latest: int | None = None, **extra: Any
) -> dict[str, Any]:
    """The page's context; OrderNotFound or VersionNotFound when there is nothing to show.

    One fold: the timeline's states are the page's, the one at the version shown among them.
    """
    if latest is None:
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


def render_cache(request: Request[Any, Any, Any]) -> RenderCache:
    cache: RenderCache = request.app.state.render_cache
    return cache


def permissions(request: Request[Any, Any, Any]) -> tuple[bool, ...]:
    """What the signed-in role may do: all a cached fragment may depend on of who asks."""
    actor: Actor | None = request.scope.get("actor")  # type: ignore[assignment]
    return tuple(actor is not None and may(actor, action) for action in ACTIONS)


def csrf_token(request: Request[Any, Any, Any]) -> str:
    token = ScopeState.from_scope(request.scope).csrf_token
    return token if isinstance(token, str) else ""


def render_fragment(request: Request[Any, Any, Any], template: str, context: dict[str, Any]) -> str:
    """`template` rendered with placeholders for what is per request (see render_cache.fill)."""
    engine = request.app.template_engine
    assert engine is not None
    return str(
        engine.get_template(template).render(
            **context,
            request=request,
            csrf_token=lambda: CSRF_PLACEHOLDER,
            new_command_id=lambda: COMMAND_ID_PLACEHOLDER,
        )
    )


def etag(request: Request[Any, Any, Any], shown: int, latest: int, *depends: Hashable) -> str:
    """A weak ETag (each answer has fresh command ids) of all a page depends on.

    The versions, the templates, the variant asked for, who is signed in (the page's header
    names them) and their CSRF token (the forms carry it).
    """
    return f'W/"{shown}-{latest}-{digest(request, depends)}"'


def digest(request: Request[Any, Any, Any], depends: tuple[Hashable, ...]) -> str:
    """What an ETag says of everything else a page depends on (see `etag`)."""
    raw = repr((request.app.state.templates_version, depends, signed_in(request), csrf_token(request)))
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def signed_in(request: Request[Any, Any, Any]) -> tuple[str, str, str, str | None] | None:
    """Who the page's header names: all a page's shell depends on of who asks."""
    actor: Actor | None = request.scope.get("actor")  # type: ignore[assignment]
    return (actor.id, actor.name, actor.role, actor.customer_id) if actor else None


def not_modified(request: Request[Any, Any, Any], tag: str) -> bool:
    """Whether `If-None-Match` names `tag` (weak comparison, RFC 9110 13.1.2)."""
    asked = request.headers.get("if-none-match")
    if not asked:
        return False
    opaque = tag.removeprefix("W/")
    return any(t.strip() == "*" or t.strip().removeprefix("W/") == opaque for t in asked.split(","))


async def order_page(
    request: Request[Any, Any, Any],
    orders: Orders,
    order_id: str,
    version: int | None = None,
    *,
    fragment: str,
    page: str | None,
    play: str | None = None,
    latest: int | None = None,
    **extra: Hashable,
) -> Response[Any]:
    """The order (now, or at `version`) as `fragment`, inside `page` unless None (a partial).

    Asks the database for the latest version only (unless the caller just did: `latest`), and
    for the events when the fragment is not cached yet. `extra` goes into the fragment's
    context, so into its key too.
    """
    if latest is None:
        latest = await latest_version(request, orders, order_id, has=version)
    shown = latest if version is None else version
    extras = tuple(sorted(extra.items()))
    cache = render_cache(request)
    # What is shipped to (personal) reads ERASED once the customer is forgotten: a page rendered
    # before, or a browser's copy of it, must not be served after.
    erased = await customer_erased(orders, cache, order_id)
    tag = etag(request, shown, latest, fragment, page, order_id, play, extras, erased)
    headers = {**REVALIDATE, "etag": tag}
    if request.method == "GET" and not_modified(request, tag):
        return Response(None, status_code=304, headers=headers)
    state = request.app.state
    key = (
        fragment,
        order_id,
        shown,
        latest,
        play,
        extras,
        erased,
        permissions(request),
        state.templates_version,
    )
    html = cache.get(key)
    if html is None:
        context = await order_context(orders, order_id, version, latest=latest, play=play, **extra)
        html = prepare(render_fragment(request, fragment, context))
        cache.put(key, html)
    return respond(request, html, page, {"order_id": order_id, "latest": latest, "shown": shown}, headers)


async def latest_version(
    request: Request[Any, Any, Any], orders: Orders, order_id: str, *, has: int | None = None
) -> int:
    """The order's latest version: as the guard read it with the session (web/access.ORDER_PAGE),
    else asked now."""
    head = stream_head(request, order_id)
    if head is None:
        return await orders.latest_version(order_id, has=has)
    return await orders.known_version(order_id, head, has=has)


async def customer_erased(orders: Orders, cache: RenderCache, order_id: str) -> bool:
    """Whether the order's customer is forgotten (their key gone); an order's customer never changes."""
    customer_id = cache.customer_of(order_id)
    if customer_id is None:
        customer_id = (await orders.summary(order_id)).customer_id
        cache.remember_customer(order_id, customer_id)
    return await orders.customer_erased(customer_id)


def render_order(
    request: Request[Any, Any, Any], context: dict[str, Any], fragment: str, page: str | None, status: int
) -> Response[Any]:
    """A one-off rendering of the order (a refused form's answer, with its message and values)."""
    html = prepare(render_fragment(request, fragment, context))
    page_context = {
        "order_id": context["order"].order_id,
        "latest": context["latest"],
        "shown": context["shown"],
    }
    return respond(request, html, page, page_context, {}, status)


def respond(
    request: Request[Any, Any, Any],
    html: Prepared,
    page: str | None,
    page_context: dict[str, Any],
    headers: dict[str, str],
    status: int = 200,
) -> Response[Any]:
    """`html` filled in for this request, inside `page` (its shell, also rendered once) unless None."""
    token = csrf_token(request)
    body = fill(html, token) if page is None else fill(shell(request, page, page_context), token, html)
    return Response(body, media_type=MediaType.HTML, status_code=status, headers=headers)


def shell(request: Request[Any, Any, Any], page: str, page_context: dict[str, Any]) -> Prepared:
    """`page` (base.html and what the page adds around its fragment) with a placeholder for the
    fragment, rendered once per context and signed-in account."""
    cache = render_cache(request)
    key = (
        "shell",
        page,
        tuple(sorted(page_context.items())),
        signed_in(request),
        request.app.state.templates_version,
    )
    prepared = cache.get(key)
    if prepared is None:
        context = {**page_context, "fragment": Markup(FRAGMENT_PLACEHOLDER)}  # noqa: S704 (no user text)
        prepared = prepare(render_fragment(request, page, context))
        cache.put(key, prepared)
    return prepared
