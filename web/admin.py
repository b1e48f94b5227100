"""Read models and subscriptions: where each stands, and a Rebuild button with live progress."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Template

from store.log.integrity import last_run
from store.read.replay import READ_MODELS, RebuildInProgress, rebuild
from store.read.status import read_model_status


async def _context(state: State) -> dict[str, Any]:
    statuses = await read_model_status(state.pool)
    runners = {runner.projection.name: runner.state for runner in state.runners}
    errors = {runner.projection.name: runner.error for runner in state.runners if runner.error}
    rebuilding = any(s.rebuild_state == "running" for s in statuses)
    return {
        "statuses": statuses,
        "runners": runners,
        "errors": errors,
        "rebuilding": rebuilding,
        "problem": None,
    }


class AdminController(Controller):
    path = "/admin/projections"

    @get("/")
    async def projections(self, request: HTMXRequest, state: State) -> Template:
        context = await _context(state)
        if request.htmx:
            return Template("_projections.html", context=context)
        return Template("projections.html", context={**context, "verify_run": await last_run(state.pool)})

    @post("/{name:str}/rebuild")
    async def start_rebuild(
        self, request: Request[Any, Any, Any], state: State, name: FromPath[str]
    ) -> Template:
        if name not in READ_MODELS:
            raise NotFoundException(f"There is no read model called {name}.")
        task = asyncio.create_task(rebuild(state.pool, name))
        state.rebuilds.add(task)
        task.add_done_callback(state.rebuilds.discard)
        await asyncio.sleep(0.05)  # let it claim its lock and record its start
        context = await _context(state)
        if task.done() and isinstance(task.exception(), RebuildInProgress):
            context["problem"] = f"{name} is already being rebuilt."
        return Template("_projections.html", context=context, status_code=409 if context["problem"] else 200)
