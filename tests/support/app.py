"""The one place the tests build the app, so a change to create_app's signature touches one line."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from litestar import Litestar

from store.workflows.outbox import Sender
from web.app import create_app
from web.settings import Settings

# One master key for every app the tests build, so two apps on one database open each other's
# customer keys as two instances of a deployment do. Made on first use (store/personal/master.py).
TEST_MASTER_KEY = Path(tempfile.gettempdir()) / f"orders-tests-{os.getuid()}" / "master.key"


def make_app(database_url: str, *, notification_sender: Sender | None = None, **settings: Any) -> Litestar:
    """The app on `database_url`, with these settings (web/settings.py) in place of the defaults."""
    settings.setdefault("master_key_file", str(TEST_MASTER_KEY))
    if "allowed_hosts" in settings:
        settings["allowed_hosts"] = tuple(settings["allowed_hosts"])
    return create_app(
        Settings(database_url=database_url, **settings), notification_sender=notification_sender
    )
