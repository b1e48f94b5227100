"""Accounts of people: add one, change its role, disable it, set its password (admins only).

Every change is recorded in the access log with the admin who made it. A refused
change writes nothing and shows its reason beside the form it came from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from litestar import Controller, Request, get, post
from litestar.datastructures import FormMultiDict
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException, NotFoundException
from litestar.params import FromPath
from litestar.plugins.htmx import ClientRedirect, HTMXRequest
from litestar.response import Redirect, Template

from domain.access import ROLES, Actor, Role, check_account_name, check_binding, check_password
from domain.errors import CustomerForgottenError, InvalidInput
from domain.rules import check_customer_id
from store.access.access_log import AccessLog
from store.access.accounts import Account, Accounts, LastAdmin, NameTaken
from store.access.sessions import Sessions
from web.access import ADMINISTER, who
from web.signin import client_of


@dataclass(frozen=True)
class Problem:
    """Why a change was refused, and the form (`_problem.html`'s `form_name`) it is shown beside."""

    form: str
    message: str


class Refused(Exception):
    def __init__(self, form: str, message: str, status: int) -> None:
        super().__init__(message)
        self.problem, self.status = Problem(form, message), status


async def admin_of(request: Request[Any, Any, Any]) -> Actor:
    """The signed-in admin (the guard let nobody else in)."""
    actor = await who(request)
    if actor is None:
        raise NotAuthorizedException("Sign in first.")
    return actor


def field(form: FormMultiDict, name: str, *, strip: bool = True) -> str:
    value = form.get(name, "")
    if not isinstance(value, str):
        return ""
    return value.strip() if strip else value


def role_and_customer(form: FormMultiDict) -> tuple[Role, str | None]:
    """The role and the customer id it is bound to, by the domain's rules, or InvalidInput."""
    chosen = field(form, "role")
    role = next((r for r in ROLES if r == chosen), None)
    if role is None:
        raise InvalidInput(f"Choose a role: {', '.join(ROLES)}.")
    customer_id = field(form, "customer_id") or None
    check_binding(role, customer_id)
    if customer_id is not None:
        check_customer_id(customer_id)
    return role, customer_id


def described(role: Role, customer_id: str | None) -> str:
    return f"{role} of {customer_id}" if customer_id else role


P = ParamSpec("P")
T = TypeVar("T")


def checked(form_name: str, check: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`check(*args)`, its InvalidInput refused with 422 beside the form `form_name`."""
    try:
        return check(*args, **kwargs)
    except InvalidInput as error:
        raise Refused(form_name, error.message, 422) from None


class AccountsController(Controller):
    path = "/admin/accounts"
    opt = ADMINISTER

    async def _page(
        self,
        request: HTMXRequest,
        accounts: Accounts,
        *,
        problem: Problem | None = None,
        entered: dict[str, str] | None = None,
        done: str = "",
        status: int = 200,
    ) -> Template:
        context = {
            "accounts": await accounts.list(),
            "roles": ROLES,
            "me": (await admin_of(request)).id,
            "problem": problem,
            "entered": entered or {},
            "done": done,
        }
        name = "_accounts.html" if request.htmx else "admin_accounts.html"
        return Template(name, context=context, status_code=status)

    async def _changed(self, request: HTMXRequest, accounts: Accounts, done: str) -> Template | Redirect:
        if request.htmx:
            return await self._page(request, accounts, done=done)
        return Redirect("/admin/accounts", status_code=303)

    async def _found(self, accounts: Accounts, name: str) -> Account:
        account = await accounts.find(name)
        if account is None:
            raise NotFoundException(f"There is no account called {name}.")
        return account

    @get("/")
    async def list_accounts(self, request: HTMXRequest, accounts: NamedDependency[Accounts]) -> Template:
        return await self._page(request, accounts)

    @post("/")
    async def add_account(
        self,
        request: HTMXRequest,
        accounts: NamedDependency[Accounts],
        access_log: NamedDependency[AccessLog],
    ) -> Template | Redirect:
        form = await request.form()
        name, password = field(form, "username"), field(form, "password", strip=False)
        entered = {"username": name, "role": field(form, "role"), "customer_id": field(form, "customer_id")}
        try:
            checked("add-account", check_account_name, name)
            role, customer_id = checked("add-account", role_and_customer, form)
            checked("add-account", check_password, password)
            try:
                account = await accounts.add(name, role, password, customer_id)
            except (NameTaken, CustomerForgottenError) as error:
                raise Refused("add-account", str(error), 409) from None
        except Refused as refused:
            return await self._page(
                request, accounts, problem=refused.problem, entered=entered, status=refused.status
            )
        admin = await admin_of(request)
        detail = described(account.role, account.customer_id)
        await access_log.record("account added", admin, name, detail, client_of(request))
        return await self._changed(request, accounts, f"Account {name} added ({detail}).")

    @post("/{name:str}/role", status_code=200)
    async def change_role(
        self,
        request: HTMXRequest,
        accounts: NamedDependency[Accounts],
        access_log: NamedDependency[AccessLog],
        name: FromPath[str],
    ) -> Template | Redirect | ClientRedirect:
        before = await self._found(accounts, name)
        form_name = f"role-{name}"
        try:
            role, customer_id = checked(form_name, role_and_customer, await request.form())
            try:
                after = await accounts.set_role_leaving_an_admin(name, role, customer_id)
            except (LastAdmin, CustomerForgottenError) as error:
                raise Refused(form_name, str(error), 409) from None
        except Refused as refused:
            return await self._page(request, accounts, problem=refused.problem, status=refused.status)
        if after is None:
            raise NotFoundException(f"There is no account called {name}.")
        admin = await admin_of(request)
        was, now = described(before.role, before.customer_id), described(after.role, after.customer_id)
        await access_log.record("role changed", admin, name, f"{was} → {now}", client_of(request))
        if admin.id == str(after.account_id) and after.role != "admin":
            # These pages are no longer theirs; htmx loads the whole page rather than swap it in.
            return ClientRedirect("/orders") if request.htmx else Redirect("/orders", status_code=303)
        return await self._changed(request, accounts, f"{name} is now {now}.")

    @post("/{name:str}/disable")
    async def disable(
        self,
        request: HTMXRequest,
        accounts: NamedDependency[Accounts],
        access_log: NamedDependency[AccessLog],
        name: FromPath[str],
    ) -> Template | Redirect:
        account = await self._found(accounts, name)
        admin = await admin_of(request)
        try:
            if admin.id == str(account.account_id):
                raise Refused(
                    f"disable-{name}", "You cannot disable your own account; ask another admin.", 409
                )
            try:
                await accounts.disable_leaving_an_admin(name)
            except LastAdmin as error:
                raise Refused(f"disable-{name}", str(error), 409) from None
        except Refused as refused:
            return await self._page(request, accounts, problem=refused.problem, status=refused.status)
        await access_log.record("account disabled", admin, name, "its sessions ended", client_of(request))
        return await self._changed(request, accounts, f"{name} is disabled and signed out everywhere.")

    @post("/{name:str}/password")
    async def set_password(
        self,
        request: HTMXRequest,
        accounts: NamedDependency[Accounts],
        sessions: NamedDependency[Sessions],
        access_log: NamedDependency[AccessLog],
        name: FromPath[str],
    ) -> Template | Redirect:
        account = await self._found(accounts, name)
        password = field(await request.form(), "password", strip=False)
        try:
            checked(f"password-{name}", check_password, password)
        except Refused as refused:
            return await self._page(request, accounts, problem=refused.problem, status=refused.status)
        await accounts.set_password(name, password)
        admin, detail = await admin_of(request), ""
        if admin.id != str(account.account_id):
            # A password set by someone else ends the sessions begun with the old one.
            await sessions.end_all(str(account.account_id))
            detail = "its sessions ended"
        await access_log.record("password set", admin, name, detail, client_of(request))
        return await self._changed(request, accounts, f"The password of {name} is set.")
