"""The app's settings: one typed value, built at the edge (web/cli) and handed to create_app.

`from_environment` reads them from a mapping of variables; only web/cli passes
it the process's environment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

import msgspec

from store.database import SessionLimits
from store.log.snapshots import DEFAULT_EVERY
from store.read.parking import OUTBOX_RETRY, SUBSCRIPTION_RETRY, RetryPolicy
from store.workflows.expiry import DEFAULT_DRAFT_EXPIRY
from web.logs import LOG_FORMATS, LogFormat
from web.ratelimit import RateLimit, parse_limit

TEN_YEARS = 10 * 365 * 24 * 3600
DEFAULT_SHUTDOWN_SECONDS = 10.0
N = TypeVar("N", int, float)


class SettingsError(ValueError):
    """A variable whose value makes no sense; the message names it."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """What an app instance needs to know.

    An empty `database_url` means the `orders` command starts an embedded
    PostgreSQL; an empty `csrf_secret` means it uses the secret made once per
    database. `create_app` needs both filled in.
    """

    database_url: str = ""
    csrf_secret: str = ""
    pool_size: int = 10
    subscriptions: bool = True  # run this instance's candidates for the subscription runners
    write_limit: RateLimit | None = None  # each client's writes; None: unlimited
    allowed_hosts: tuple[str, ...] = ()  # Host headers answered, with the port; (): any
    draft_expiry: float = DEFAULT_DRAFT_EXPIRY  # seconds a draft may stay untouched
    snapshot_every: int = DEFAULT_EVERY  # events between an order's snapshots
    session_idle_minutes: float = 120.0  # a session ends after this long without a request
    session_hours: float = 12.0  # and this long after its sign-in, whatever happens
    # The horizon (store/horizon.py): the server ends what holds it, and the admin page warns.
    idle_in_transaction_seconds: float = 60.0  # an app connection idle in a transaction is closed
    statement_seconds: float = 60.0  # an app statement is cancelled
    horizon_warning_seconds: float = 30.0  # events unseen by catch-up readers this long: a warning
    subscription_retry: RetryPolicy = SUBSCRIPTION_RETRY  # tries of a failing event before it is parked
    outbox_retry: RetryPolicy = OUTBOX_RETRY  # tries of an undeliverable message before it is parked
    shutdown_seconds: float = DEFAULT_SHUTDOWN_SECONDS  # in-flight requests' time to finish at a stop
    page_cache_mb: float = 32.0  # rendered pages kept per process (web/render_cache.py); 0: none
    development: bool = False  # templates re-read when their files change, and no page cache
    log_format: LogFormat = "text"  # "json": one JSON object per line (web/logs.py)
    metrics_folder: str | None = None  # prometheus-client's multiprocess folder, when workers share one
    replica_urls: tuple[str, ...] = ()  # streaming standbys for page and API reads (store/replicas.py)
    replica_max_lag_seconds: float = 30.0  # a replica further behind is skipped
    replica_wait_seconds: float = 1.0  # a read after its own write waits this long, then reads the primary
    # The master key of customers' personal data (store/personal/master.py): a key file, else one
    # derived from ORDERS_SECRET (never from the secret kept in the database); neither: one for
    # this process alone, which no other can open (tests).
    master_key_file: str = ""
    master_secret: str = ""

    def session_limits(self) -> SessionLimits:
        return SessionLimits(
            idle_in_transaction=self.idle_in_transaction_seconds, statement=self.statement_seconds
        )


def from_environment(environ: Mapping[str, str], *, write_limit: str | None = None) -> Settings:
    """The settings the variables give; `write_limit` is the limit when ORDERS_WRITE_LIMIT is unset."""
    return Settings(
        database_url=environ.get("DATABASE_URL", ""),
        csrf_secret=environ.get("ORDERS_SECRET", ""),
        write_limit=_write_limit(environ.get("ORDERS_WRITE_LIMIT", write_limit)),
        allowed_hosts=tuple(
            host.strip() for host in environ.get("ORDERS_ALLOWED_HOSTS", "").split(",") if host.strip()
        ),
        draft_expiry=_draft_expiry(environ.get("ORDERS_DRAFT_EXPIRY_SECONDS", "")),
        snapshot_every=_snapshot_every(environ.get("ORDERS_SNAPSHOT_EVERY", "")),
        session_idle_minutes=_positive(environ, "ORDERS_SESSION_IDLE_MINUTES", 120.0),
        session_hours=_positive(environ, "ORDERS_SESSION_HOURS", 12.0),
        idle_in_transaction_seconds=_positive(environ, "ORDERS_IDLE_IN_TRANSACTION_SECONDS", 60.0),
        statement_seconds=_positive(environ, "ORDERS_STATEMENT_TIMEOUT_SECONDS", 60.0),
        horizon_warning_seconds=_positive(environ, "ORDERS_HORIZON_WARNING_SECONDS", 30.0),
        subscription_retry=_retry(environ, "ORDERS_RETRY", SUBSCRIPTION_RETRY),
        outbox_retry=_retry(environ, "ORDERS_OUTBOX_RETRY", OUTBOX_RETRY),
        shutdown_seconds=_positive(environ, "ORDERS_SHUTDOWN_SECONDS", DEFAULT_SHUTDOWN_SECONDS),
        page_cache_mb=_page_cache_mb(environ.get("ORDERS_PAGE_CACHE_MB", "")),
        development=environ.get("ORDERS_DEVELOPMENT", "").strip().lower() in {"1", "true", "yes", "on"},
        log_format=_log_format(environ.get("ORDERS_LOG_FORMAT", "").strip() or "text"),
        metrics_folder=environ.get("PROMETHEUS_MULTIPROC_DIR") or None,
        replica_urls=tuple(
            url.strip() for url in environ.get("ORDERS_REPLICA_URLS", "").split(",") if url.strip()
        ),
        replica_max_lag_seconds=_positive(environ, "ORDERS_REPLICA_MAX_LAG_SECONDS", 30.0),
        replica_wait_seconds=_positive(environ, "ORDERS_REPLICA_WAIT_SECONDS", 1.0),
        master_key_file=_master_key_file(environ),
        master_secret="" if _master_key_file(environ) else environ.get("ORDERS_SECRET", ""),
    )


def _log_format(raw: str) -> LogFormat:
    for known in LOG_FORMATS:
        if raw == known:
            return known
    raise SettingsError(f"ORDERS_LOG_FORMAT must be {' or '.join(LOG_FORMATS)}, not {raw!r}")


def _master_key_file(environ: Mapping[str, str]) -> str:
    """ORDERS_MASTER_KEY_FILE; "" when ORDERS_SECRET is set instead; else master.key in the data folder."""
    key_file = environ.get("ORDERS_MASTER_KEY_FILE", "").strip()
    if not key_file and environ.get("ORDERS_SECRET", ""):
        return ""
    folder = Path(environ.get("ORDERS_DATA_DIR", "") or ".data")
    return str(Path(key_file).resolve() if key_file else folder.resolve() / "master.key")


def _retry(environ: Mapping[str, str], prefix: str, default: RetryPolicy) -> RetryPolicy:
    """`<prefix>_ATTEMPTS` (1 to 1000) and `<prefix>_BACKOFF_SECONDS` (the first pause, then doubling)."""
    raw = environ.get(f"{prefix}_ATTEMPTS", "").strip()
    attempts = _number(raw, default.attempts, int)
    if attempts is None or not 1 <= attempts <= 1000:
        raise SettingsError(f"{prefix}_ATTEMPTS must be a whole number from 1 to 1000, not {raw!r}")
    backoff = _positive(environ, f"{prefix}_BACKOFF_SECONDS", default.backoff)
    return RetryPolicy(attempts, backoff, max(backoff, default.max_backoff))


def _page_cache_mb(raw: str) -> float:
    megabytes = _number(raw, 32.0, float)
    if megabytes is None or not 0 <= megabytes <= 65536:
        raise SettingsError(f"ORDERS_PAGE_CACHE_MB must be a number of megabytes, 0 or more, not {raw!r}")
    return megabytes


def _positive(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name, "").strip()
    value = _number(raw, default, float)
    if value is None or not 0 < value < TEN_YEARS:
        raise SettingsError(f"{name} must be a number more than 0, not {raw!r}")
    return value


def _write_limit(raw: str | None) -> RateLimit | None:
    try:
        return parse_limit(raw)
    except ValueError as error:
        raise SettingsError(f"ORDERS_WRITE_LIMIT: {error}") from None


def _draft_expiry(raw: str) -> float:
    seconds = _number(raw, DEFAULT_DRAFT_EXPIRY, float)
    if seconds is None:
        raise SettingsError(f"ORDERS_DRAFT_EXPIRY_SECONDS must be a number of seconds, not {raw!r}")
    if not 0 < seconds < TEN_YEARS:
        raise SettingsError("ORDERS_DRAFT_EXPIRY_SECONDS must be more than 0 and less than ten years")
    return seconds


def _snapshot_every(raw: str) -> int:
    every = _number(raw, DEFAULT_EVERY, int)
    if every is None or every < 1:
        raise SettingsError(f"ORDERS_SNAPSHOT_EVERY must be a whole number of events, 1 or more, not {raw!r}")
    return every


def _number(raw: str, default: N, parse: Callable[[str], N]) -> N | None:
    """The number `raw` spells: `default` when it is blank, None when it is not a number."""
    if not raw.strip():
        return default
    try:
        return parse(raw)
    except ValueError:
        return None
