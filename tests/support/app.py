"""The one place the tests build the app, so a change to create_app's signature touches one line."""

from __future__ import annotations

from typing import Any

from litestar import Litestar

from store.workflows.outbox import Sender
from web.app import create_app
from web.settings import Settings


def make_app(database_url: str, *, notification_sender: Sender | None = None, **settings: Any) -> Litestar:
    """The app on `database_url`, with these settings (web/settings.py) in place of the defaults."""
    if "allowed_hosts" in settings:
        settings["allowed_hosts"] = tuple(settings["allowed_hosts"])
    return create_app(
        Settings(database_url=database_url, **settings), notification_sender=notification_sender
    )
