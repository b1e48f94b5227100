"""The one place the tests build the app, so a change to create_app's signature touches one line."""

from __future__ import annotations

from typing import Any

from litestar import Litestar

from web.app import create_app


def make_app(database_url: str, **options: Any) -> Litestar:
    return create_app(database_url, **options)
