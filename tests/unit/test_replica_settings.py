"""Replicas as the variables name them, and WAL positions as clients carry them."""

from __future__ import annotations

import pytest

from store.replicas import lsn_text, parse_lsn
from web.settings import SettingsError, from_environment


def test_replica_urls_are_a_comma_separated_list_and_none_by_default() -> None:
    assert from_environment({}).replica_urls == ()
    urls = " postgresql://r1/orders, ,postgresql://r2/orders "
    settings = from_environment({"ORDERS_REPLICA_URLS": urls, "ORDERS_REPLICA_WAIT_SECONDS": "0.25"})
    assert settings.replica_urls == ("postgresql://r1/orders", "postgresql://r2/orders")
    assert settings.replica_wait_seconds == 0.25
    assert settings.replica_max_lag_seconds == 30.0


@pytest.mark.parametrize("name", ["ORDERS_REPLICA_WAIT_SECONDS", "ORDERS_REPLICA_MAX_LAG_SECONDS"])
@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_a_bad_bound_is_refused_with_its_name(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        from_environment({name: value})


def test_a_wal_position_reads_back_as_postgresql_spells_it() -> None:
    for text in ["0/0", "0/16B3748", "1A/FFFFFFFF", "FFFFFFFF/FFFFFFFF"]:
        position = parse_lsn(text)
        assert position is not None
        assert lsn_text(position) == text
    assert parse_lsn("0/16b3748") == parse_lsn("0/16B3748") == 0x16B3748
    assert parse_lsn("1/0") == 1 << 32


@pytest.mark.parametrize(
    "text", ["", "0", "/1", "1/", "0/G", "123456789/0", "0/1/2", "-1/0", "0x1/0", "+1/0", "1_0/0", " / "]
)
def test_anything_else_is_no_position(text: str) -> None:
    assert parse_lsn(text) is None
