"""API tokens (make one, its secret shown once; revoke one) and the access log, newest first (admins only)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Template

from domain.access import ROLES, check_account_name
from domain.errors import CustomerForgottenError, InvalidInput
from store.access.access_log import AccessLog
from store.access.tokens import NameTaken, Tokens
from web.access import ADMINISTER
from web.admin_accounts import Refused, admin_of, checked, described, field, role_and_customer
from web.signin import client_of

PAGE_SIZE = 50
LAST_ENTRY = 2**63 - 1  # the largest entry id PostgreSQL's bigint holds


def check_token_name(name: str) -> None:
    try:
        check_account_name(name)
    except InvalidInput:
        raise InvalidInput("A token name is 1 to 64 letters, digits, '.', '_', '@' or '-'.") from None


class TokensController(Controller):
    path = "/admin/tokens"
    opt = ADMINISTER

    async def _page(
        self, request: HTMXRequest, tokens: Tokens, status: int = 200, **context: Any
    ) -> Template:
        context = {"tokens": await tokens.list(), "roles": ROLES, "problem": None, "entered": {}} | context
        name = "_tokens.html" if request.htmx else "admin_tokens.html"
        return Template(name, context=context, status_code=status, headers={"Cache-Control": "no-store"})

    @get("/")
    async def list_tokens(self, request: HTMXRequest, tokens: NamedDependency[Tokens]) -> Template:
        return await self._page(request, tokens)

    @post("/")
    async def make_token(
        self, request: HTMXRequest, tokens: NamedDependency[Tokens], access_log: NamedDependency[AccessLog]
    ) -> Template:
        form = await request.form()
        name = field(form, "name")
        entered = {"name": name, "role": field(form, "role"), "customer_id": field(form, "customer_id")}
        admin = await admin_of(request)
        try:
            checked("make-token", check_token_name, name)
            role, customer_id = checked("make-token", role_and_customer, form)
            try:
                token, secret = await tokens.add(name, role, admin.name, customer_id)
            except (NameTaken, CustomerForgottenError) as error:
                raise Refused("make-token", str(error), 409) from None
        except Refused as refused:
            return await self._page(request, tokens, refused.status, problem=refused.problem, entered=entered)
        detail = described(token.role, token.customer_id)
        await access_log.record("token made", admin, name, detail, client_of(request))
        # The one answer that holds the secret: not stored anywhere, and not cached (no-store).
        return await self._page(request, tokens, made=token, secret=secret)

    @post("/{name:str}/revoke")
    async def revoke(
        self,
        request: HTMXRequest,
        tokens: NamedDependency[Tokens],
        access_log: NamedDependency[AccessLog],
        name: FromPath[str],
    ) -> Template | Redirect:
        token = await tokens.revoke(name)
        if token is None:
            raise NotFoundException(f"There is no token called {name}.")
        admin = await admin_of(request)
        await access_log.record("token revoked", admin, name, "", client_of(request))
        if request.htmx:
            return await self._page(request, tokens, done=f"The token {name} is revoked.")
        return Redirect("/admin/tokens", status_code=303)


class AccessLogController(Controller):
    path = "/admin/access-log"
    opt = ADMINISTER

    @get("/")
    async def access_log_page(
        self,
        request: HTMXRequest,
        access_log: NamedDependency[AccessLog],
        kind: FromQuery[str | None] = None,
        before: FromQuery[int | None] = None,
    ) -> Template:
        kinds = await access_log.kinds()
        chosen = kind if kind in kinds else None
        first = min(max(before, 0), LAST_ENTRY) if before is not None else None
        entries = await access_log.page(first, chosen, PAGE_SIZE + 1) if first != 0 else []
        context = {
            "entries": entries[:PAGE_SIZE],
            "next_before": entries[PAGE_SIZE - 1].entry_id if len(entries) > PAGE_SIZE else None,
            "kinds": kinds,
            "kind": chosen or "",
            "problem": None,
        }
        if request.htmx and request.htmx.target == "access-log":
            return Template("_access_log.html", context=context)
        return Template("access_log.html", context=context)
