from tests.web.conftest import browser, client

__all__ = ["browser", "client"]
