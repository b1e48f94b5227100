"""Read models and subscriptions: where each stands, and a Rebuild button with live progress."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Template

from store.operations import Operations
from store.read.replay import READ_MODELS, RebuildInProgress
from store.read.status import job_holders
from web.access import ADMINISTER
from web.admin_parked import parked_context


async def _context(operations: Operations) -> dict[str, Any]:
    statuses = await operations.read_models()
    runners = {runner.projection.name: runner.state for runner in operations.runners}
    errors = {runner.projection.name: runner.error for runner in operations.runners if runner.error}
    rebuilding = any(s.rebuild_state == "running" for s in statuses)
    return {
        "statuses": statuses,
        "runners": runners,
        "errors": errors,
        "rebuilding": rebuilding,
        # The workflows and leader loops (templates/_leaders.html); the read models' rows name theirs.
        "jobs": await job_holders(operations.pool, frozenset({"workflow", "loop"})),
        "problem": None,
        "horizon": await operations.horizon(),  # templates/_horizon.html
    }


class AdminController(Controller):
    path = "/admin/projections"
    opt = ADMINISTER

    @get("/")
    async def projections(self, request: HTMXRequest, operations: NamedDependency[Operations]) -> Template:
        context = await _context(operations)
        if request.htmx and request.htmx.target == "horizon":  # _horizon.html refreshing itself
            return Template("_horizon.html", context=context)
        if request.htmx:
            return Template("_projections.html", context=context)
        context["verify_run"] = await operations.last_verify_run()
        context["replicas"] = request.app.state.get("replicas")  # templates/_replicas.html
        context |= await parked_context(operations)
        return Template("projections.html", context=context)

    @post("/{name:str}/rebuild")
    async def start_rebuild(self, operations: NamedDependency[Operations], name: FromPath[str]) -> Template:
        if name not in READ_MODELS:
            raise NotFoundException(f"There is no read model called {name}.")
        task = operations.start_rebuild(name)
        await asyncio.sleep(0.05)  # let it claim its lock and record its start
        context = await _context(operations)
        if task.done() and isinstance(task.exception(), RebuildInProgress):
            context["problem"] = f"{name} is already being rebuilt."
        return Template("_projections.html", context=context, status_code=409 if context["problem"] else 200)
