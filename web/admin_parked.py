"""Parked events and messages (admins only): what a subscription or the outbox relay set aside.

A parked stream can be retried (after a fix) or its failing event skipped; a
parked message retried or dropped. A skip or drop needs a reason, recorded
with the admin's name in the parking log; a refused request changes nothing.
"""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Template

from domain.errors import InvalidInput
from domain.rules import check_set_aside_reason
from store.operations import Operations
from store.read.parking import NotParked, Resumed
from web.access import ADMINISTER
from web.admin_accounts import Problem, admin_of, field

PAGE = "/admin/parked"


def _message_id(text: str) -> int:
    """The id of a parked message as a form gives it; anything else names no message (-1)."""
    return int(text) if text.isascii() and text.isdigit() and len(text) < 19 else -1


def _resumed(subscription: str, order: str, outcome: Resumed) -> str:
    applied = f"{outcome.applied} held event{'s' * (outcome.applied != 1)} applied"
    if outcome.parked_again is not None:
        again = outcome.parked_again
        return (
            f"Order {order} for {subscription}: {applied}; {again.event_type} v{again.version} "
            f"failed again and stays parked: {again.error}"
        )
    return f"Order {order} for {subscription}: {applied}; it is no longer parked."


async def parked_context(operations: Operations) -> dict[str, object]:
    """What `_parked.html` shows, for a page that includes it."""
    return {
        "parked": await operations.parking.parked(),
        "messages": await operations.parked_messages.parked(),
    }


class ParkedController(Controller):
    path = PAGE
    opt = ADMINISTER

    async def _page(
        self,
        request: HTMXRequest,
        operations: Operations,
        *,
        status: int = 200,
        problem: Problem | None = None,
        done: str = "",
    ) -> Template:
        context = await parked_context(operations) | {"problem": problem, "done": done}
        name = "_parked.html" if request.htmx else "parked.html"
        return Template(name, context=context, status_code=status)

    async def _answer(self, request: HTMXRequest, operations: Operations, done: str) -> Template | Redirect:
        if request.htmx:
            return await self._page(request, operations, done=done)
        return Redirect(PAGE, status_code=303)

    @get("/")
    async def parked(self, request: HTMXRequest, operations: NamedDependency[Operations]) -> Template:
        return await self._page(request, operations)

    @post("/retry")
    async def retry_stream(
        self, request: HTMXRequest, operations: NamedDependency[Operations]
    ) -> Template | Redirect:
        form = await request.form()
        subscription, order = field(form, "subscription"), field(form, "order")
        try:
            outcome = await operations.parking.retry(subscription, order, await admin_of(request))
        except NotParked as error:
            return await self._page(request, operations, status=404, problem=Problem("parked", str(error)))
        return await self._answer(request, operations, _resumed(subscription, order, outcome))

    @post("/skip")
    async def skip_event(
        self, request: HTMXRequest, operations: NamedDependency[Operations]
    ) -> Template | Redirect:
        form = await request.form()
        subscription, order = field(form, "subscription"), field(form, "order")
        reason = field(form, "reason", strip=False)
        try:
            parked = await operations.parking.find(subscription, order)
            check_set_aside_reason(reason)
            outcome = await operations.parking.skip(subscription, order, await admin_of(request), reason)
        except NotParked as error:
            return await self._page(request, operations, status=404, problem=Problem("parked", str(error)))
        except InvalidInput as error:
            problem = Problem(f"skip:{subscription}:{order}", error.message)
            return await self._page(request, operations, status=422, problem=problem)
        skipped = f"{parked.event_type} v{parked.version} skipped. "
        return await self._answer(request, operations, skipped + _resumed(subscription, order, outcome))

    @post("/messages/retry")
    async def retry_message(
        self, request: HTMXRequest, operations: NamedDependency[Operations]
    ) -> Template | Redirect:
        form = await request.form()
        try:
            message = await operations.parked_messages.retry(
                _message_id(field(form, "notification")), await admin_of(request)
            )
        except NotParked as error:
            return await self._page(request, operations, status=404, problem=Problem("parked", str(error)))
        return await self._answer(request, operations, f"Message {message.id} is queued for delivery again.")

    @post("/messages/drop")
    async def drop_message(
        self, request: HTMXRequest, operations: NamedDependency[Operations]
    ) -> Template | Redirect:
        form = await request.form()
        notification = _message_id(field(form, "notification"))
        reason = field(form, "reason", strip=False)
        parked = {m.id for m in await operations.parked_messages.parked()}
        try:
            if notification not in parked:
                raise NotParked(f"Message {field(form, 'notification')[:20]} is not parked.")
            check_set_aside_reason(reason)
            await operations.parked_messages.drop(notification, await admin_of(request), reason)
        except NotParked as error:
            return await self._page(request, operations, status=404, problem=Problem("parked", str(error)))
        except InvalidInput as error:
            problem = Problem(f"drop:{notification}", error.message)
            return await self._page(request, operations, status=422, problem=problem)
        return await self._answer(request, operations, f"Message {notification} is dropped.")
