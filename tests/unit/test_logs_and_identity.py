"""JSON log lines, the log format setting, and the name a leader's connection carries."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from store.leader import holder_of, holder_role
from store.tracing import correlated, request_id
from web.logs import JsonLines
from web.settings import SettingsError, from_environment


def line(record: logging.LogRecord) -> dict[str, object]:
    formatted = JsonLines().format(record)
    assert "\n" not in formatted
    parsed: dict[str, object] = json.loads(formatted)
    return parsed


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("orders.test", logging.WARNING, __file__, 1, message, args, None)
    made.__dict__.update(extra)
    return made


def test_a_line_is_one_object_with_the_ids_of_what_is_being_handled() -> None:
    plain = line(record("plain %s", "words"))
    assert plain.keys() == {"time", "level", "logger", "message"}
    assert (plain["level"], plain["logger"], plain["message"]) == ("WARNING", "orders.test", "plain words")
    token = request_id.set("req-1")
    try:
        with correlated("c0ffee00-0000-4000-8000-000000000000"):
            shown = line(record("two\nlines", order_id="o-1", ms=1.5))
    finally:
        request_id.reset(token)
    assert shown["message"] == "two\nlines"
    assert (shown["request_id"], shown["correlation_id"]) == ("req-1", "c0ffee00-0000-4000-8000-000000000000")
    assert (shown["order_id"], shown["ms"]) == ("o-1", 1.5)
    assert str(shown["time"]).endswith("+00:00")


def test_an_error_line_carries_its_traceback() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        failed = logging.LogRecord("orders.test", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    shown = line(failed)
    assert "ValueError: boom" in str(shown["exception"])


def test_the_log_format_is_text_unless_json_and_nothing_else() -> None:
    assert from_environment({}).log_format == "text"
    assert from_environment({"ORDERS_LOG_FORMAT": "json"}).log_format == "json"
    with pytest.raises(SettingsError, match="ORDERS_LOG_FORMAT must be text or json, not 'xml'"):
        from_environment({"ORDERS_LOG_FORMAT": "xml"})


def test_the_metrics_folder_comes_from_prometheus_multiproc_dir() -> None:
    assert from_environment({}).metrics_folder is None
    assert from_environment({"PROMETHEUS_MULTIPROC_DIR": "/tmp/m"}).metrics_folder == "/tmp/m"


def test_a_leaders_connection_names_its_instance_within_63_bytes() -> None:
    role = holder_role("subscription customer_summaries", "web-7d9f8b-x2k4p:4242")
    assert f"orders:{role}" == "orders:subscription customer_summaries@web-7d9f8b-x2k4p:4242"
    long = holder_role("subscription customer_summaries", "h" * 40 + ":1234567")
    assert len(f"orders:{long}".encode()) == 63
    assert holder_of(f"orders:{long}") == "h" * 40 + ":1234567"
    assert holder_of("psql") == "psql"
    assert holder_of("orders:subscription customer_summaries") == "orders:subscription customer_summaries"
