"""The grace period of a stop (ORDERS_SHUTDOWN_SECONDS, `serve --grace`): a bad value changes nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.support.embedded_serving import ORDERS, orders_env
from tests.support.servers import ROOT
from web.cli import orders
from web.settings import DEFAULT_SHUTDOWN_SECONDS, SettingsError, from_environment


def test_the_grace_period_is_ten_seconds_unless_the_variable_says_otherwise() -> None:
    assert from_environment({}).shutdown_seconds == DEFAULT_SHUTDOWN_SECONDS == 10
    assert from_environment({"ORDERS_SHUTDOWN_SECONDS": "2.5"}).shutdown_seconds == 2.5


@pytest.mark.parametrize("bad", ["soon", "0", "-1", "nan", "1e12"])
def test_a_grace_period_that_makes_no_sense_is_refused_by_name(bad: str) -> None:
    with pytest.raises(SettingsError, match="ORDERS_SHUTDOWN_SECONDS must be a number more than 0"):
        from_environment({"ORDERS_SHUTDOWN_SECONDS": bad})


@pytest.mark.parametrize("bad", ["0", "-3", "soon", "4000"])
def test_serve_refuses_a_bad_grace_flag_before_starting_anything(bad: str) -> None:
    result = CliRunner().invoke(orders, ["serve", "--grace", bad])
    assert result.exit_code == 2
    assert "Invalid value for '--grace'" in result.output


def test_serve_refuses_a_bad_grace_variable_with_one_line_and_starts_no_database(tmp_path: Path) -> None:
    env = orders_env(tmp_path, ORDERS_SHUTDOWN_SECONDS="soon")
    result = subprocess.run(
        [str(ORDERS), "serve"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert result.stderr == "orders: ORDERS_SHUTDOWN_SECONDS must be a number more than 0, not 'soon'\n"
    assert list(tmp_path.iterdir()) == []
