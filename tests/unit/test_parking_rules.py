"""The retry policies' settings and the rule for a skip's or drop's reason."""

from __future__ import annotations

import pytest

from domain.rules import InvalidSetAsideReason, check_set_aside_reason
from store.read.parking import OUTBOX_RETRY, SUBSCRIPTION_RETRY, RetryPolicy
from web.settings import SettingsError, from_environment


def test_the_defaults_park_after_five_tries_of_an_event_and_ten_of_a_message() -> None:
    settings = from_environment({})
    assert settings.subscription_retry == SUBSCRIPTION_RETRY == RetryPolicy(5, 1.0, 30.0)
    assert settings.outbox_retry == OUTBOX_RETRY == RetryPolicy(10, 2.0, 3600.0)
    assert [SUBSCRIPTION_RETRY.delay(n) for n in (1, 2, 3, 4, 5, 6, 7)] == [1, 2, 4, 8, 16, 30, 30]


def test_the_variables_set_the_tries_and_the_first_pause() -> None:
    settings = from_environment(
        {
            "ORDERS_RETRY_ATTEMPTS": "3",
            "ORDERS_RETRY_BACKOFF_SECONDS": "0.5",
            "ORDERS_OUTBOX_RETRY_ATTEMPTS": "1",
        }
    )
    assert settings.subscription_retry == RetryPolicy(3, 0.5, 30.0)
    assert settings.outbox_retry.attempts == 1


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ORDERS_RETRY_ATTEMPTS", "0"),
        ("ORDERS_RETRY_ATTEMPTS", "many"),
        ("ORDERS_OUTBOX_RETRY_BACKOFF_SECONDS", "-1"),
    ],
)
def test_a_bad_value_is_refused_with_its_name(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        from_environment({name: value})


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("", "Give a reason, 1 to 500 characters (this one has 0)"),
        ("  \n ", "Give a reason"),
        ("x" * 501, "(this one has 501)"),
        ("bell\x07", "must not contain control characters"),
        ("esc\x1b[31m", "must not contain control characters"),
    ],
)
def test_a_reason_must_say_something_in_at_most_500_characters_without_controls(
    reason: str, message: str
) -> None:
    with pytest.raises(InvalidSetAsideReason, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_set_aside_reason(reason)


def test_a_reason_may_break_lines() -> None:
    check_set_aside_reason("Written by release 2.0.\nFixed by hand in the shop's books.")
