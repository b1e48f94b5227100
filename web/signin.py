"""Signing in and out, and the one-time link that creates the first admin.

A session id is made at each sign-in (the one the browser had is ended), lives
only in an HttpOnly, SameSite=Lax cookie (Secure over HTTPS) and in the
database as its SHA-256.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from litestar import Controller, Request, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency, Provide
from litestar.enums import MediaType
from litestar.exceptions import NotFoundException
from litestar.params import FromQuery
from litestar.response import Redirect, Template

from domain.access import Actor, check_account_name, check_password
from domain.errors import InvalidInput
from store.access.access_log import AccessLog
from store.access.accounts import Accounts
from store.access.sessions import Sessions
from store.access.setup import SetupLinks
from store.access.throttle import Throttle
from store.metrics import SIGN_INS
from web.access import PUBLIC, SESSION_COOKIE, who

WRONG = "The name or the password is wrong."


def safe_next(raw: str | None) -> str:
    """Where to go after signing in: a path on this site only (never another host)."""
    if not raw or not raw.startswith("/") or raw.startswith("//") or "\\" in raw or raw.startswith("/login"):
        return "/orders"
    return raw


def client_of(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


@dataclass
class Doorway:
    """What signing in and out share: the posted form, the session table, the access log, the client."""

    request: Request[Any, Any, Any]
    sessions: NamedDependency[Sessions]
    access_log: NamedDependency[AccessLog]

    @property
    def client(self) -> str:
        return client_of(self.request)

    async def form(self) -> dict[str, str]:
        return {name: str(value) for name, value in (await self.request.form()).items()}

    async def record(self, kind: str, actor: Actor | None, subject: str | None, detail: str = "") -> None:
        await self.access_log.record(kind, actor, subject and subject[:200], detail, self.client)

    async def record_refusal(self, kind: str, accounts: Accounts, username: str, detail: str = "") -> None:
        """A failed or refused sign-in, under the name tried only if it is an account's. What was
        typed as a name may be a password, or the old name of an account a forget renamed (a
        person's name, perhaps): the append-only log must not keep it. The throttle has it for a day."""
        if username and await accounts.find(username) is not None:
            await self.record(kind, None, username, detail)
        else:
            await self.record(kind, None, None, ", ".join(filter(None, [detail, "no account by that name"])))

    async def enter(self, actor: Actor, to: str, kind: str, detail: str = "") -> Redirect:
        """A new session for `actor`, its cookie, and the way on; the browser's old session ends."""
        old = self.request.cookies.get(SESSION_COOKIE)
        if old:
            await self.sessions.end(old)  # a new id at every sign-in: a planted one is worth nothing
        session_id = await self.sessions.begin(actor.id)
        await self.record(kind, actor, actor.name, detail)
        secure = self.request.url.scheme == "https"
        cookie = Cookie(
            key=SESSION_COOKIE, value=session_id, httponly=True, samesite="lax", secure=secure, path="/"
        )
        return Redirect(to, status_code=303, cookies=[cookie])


class SignIn(Controller):
    opt = PUBLIC  # reaching the sign-in page needs no sign-in
    dependencies: Mapping[str, Provide] = {"doorway": Provide(Doorway, sync_to_thread=False)}

    @get("/login", media_type=MediaType.HTML)
    async def login_form(self, request: Request[Any, Any, Any], next: FromQuery[str | None] = None) -> Any:
        actor = await who(request)
        if actor is not None:
            return Redirect(safe_next(next), status_code=303)
        return Template("login.html", context={"next": safe_next(next), "problem": None, "username": ""})

    @post("/login", media_type=MediaType.HTML)
    async def login(
        self,
        doorway: NamedDependency[Doorway],
        accounts: NamedDependency[Accounts],
        throttle: NamedDependency[Throttle],
    ) -> Any:
        form = await doorway.form()
        # PostgreSQL text holds no NUL: such a name can be no account's, and is logged escaped.
        username = form.get("username", "").strip().replace("\x00", "\\x00")
        password = form.get("password", "")
        to, client = safe_next(form.get("next", "")), doorway.client

        def again(problem: str, status: int, **headers: str) -> Template:
            context = {"next": to, "problem": problem, "username": username}
            return Template("login.html", context=context, status_code=status, headers=headers)

        wait = await throttle.wait(username, client)
        if wait > 0:
            minutes = max(1, round(wait / 60))
            message = f"Too many failed sign-ins. Try again in {minutes} minute{'s' if minutes > 1 else ''}."
            await doorway.record_refusal("sign-in refused", accounts, username, "throttled")
            SIGN_INS.labels("throttled").inc()
            return again(message, 429, **{"Retry-After": str(int(wait) + 1)})
        account = await accounts.check_password(username, password) if username and password else None
        if account is None:
            await throttle.failed(username, client)
            await doorway.record_refusal("sign-in failed", accounts, username)
            SIGN_INS.labels("failed").inc()
            return again(WRONG, 401)
        SIGN_INS.labels("signed_in").inc()
        return await doorway.enter(account.actor, to, "signed in")

    @post("/logout")
    async def logout(self, doorway: NamedDependency[Doorway]) -> Redirect:
        form, actor = await doorway.form(), await who(doorway.request)
        session = doorway.request.cookies.get(SESSION_COOKIE)
        if actor is not None and form.get("everywhere"):
            await doorway.sessions.end_all(actor.id)
            await doorway.record("signed out everywhere", actor, actor.name)
        elif session:
            await doorway.sessions.end(session)
            if actor is not None:
                await doorway.record("signed out", actor, actor.name)
        response = Redirect("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @get("/setup")
    async def setup_form(
        self, setup_links: NamedDependency[SetupLinks], token: FromQuery[str] = ""
    ) -> Template:
        if not await setup_links.valid(token):
            raise NotFoundException("This set-up link is used or unknown; an admin exists already.")
        return Template("setup.html", context={"token": token, "problem": None, "username": ""})

    @post("/setup", media_type=MediaType.HTML)
    async def setup(self, doorway: NamedDependency[Doorway], setup_links: NamedDependency[SetupLinks]) -> Any:
        form = await doorway.form()
        token, username = form.get("token", ""), form.get("username", "").strip()
        password, again = form.get("password", ""), form.get("password_again", "")
        if not await setup_links.valid(token):
            raise NotFoundException("This set-up link is used or unknown; an admin exists already.")
        try:
            check_account_name(username)
            check_password(password)
            if password != again:
                raise InvalidInput("The two passwords differ.")
        except InvalidInput as error:
            context = {"token": token, "problem": error.message, "username": username}
            return Template("setup.html", context=context, status_code=422)
        account = await setup_links.first_admin(token, username, password)
        if account is None:
            raise NotFoundException("This set-up link is used or unknown; an admin exists already.")
        return await doorway.enter(account.actor, "/orders", "first admin created", "through the set-up link")
