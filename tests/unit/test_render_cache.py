"""The render cache: bounded by entries and bytes, least recently used out first, filled in per request."""

from __future__ import annotations

import re
from uuid import UUID

import pytest

from web.render_cache import (
    COMMAND_ID_PLACEHOLDER,
    CSRF_PLACEHOLDER,
    FRAGMENT_PLACEHOLDER,
    RenderCache,
    command_ids,
    fill,
    prepare,
)
from web.settings import SettingsError, from_environment


def test_the_least_recently_used_entry_goes_first_when_the_entries_are_full() -> None:
    cache = RenderCache(max_entries=2)
    cache.put(("page", 1), (b"one",))
    cache.put(("page", 2), (b"two",))
    assert cache.get(("page", 1)) == (b"one",)  # now the most recent
    cache.put(("page", 3), (b"three",))
    assert cache.get(("page", 2)) is None
    assert cache.get(("page", 1)) == (b"one",)
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.entries) == (2, 1, 2)
    assert stats.by_kind == {"page": (2, 1)}
    assert stats.hit_rate == pytest.approx(2 / 3)


def test_the_bytes_held_stay_under_the_bound() -> None:
    cache = RenderCache(max_bytes=40_000)
    for n in range(100):
        cache.put(("page", n), (b"x" * 5_000,))
    stats = cache.stats()
    assert stats.bytes <= 40_000
    assert 0 < stats.entries < 8
    assert cache.get(("page", 99)) is not None
    cache.put(("huge",), (b"x" * 20_000,))  # more than a quarter of the bound: not kept
    assert cache.get(("huge",)) is None


def test_pages_share_their_placeholders_and_the_estimate_counts_their_text() -> None:
    # A page has a placeholder per form: kept once for every page, not once per form and page.
    form = f'<form><i value="{CSRF_PLACEHOLDER}"><i value="{COMMAND_ID_PLACEHOLDER}"></form>'
    one, other = prepare(form * 20), prepare("<p>other</p>" + form)
    assert {id(part) for part in one[1::2]} == {id(part) for part in other[1::2]}
    cache = RenderCache()
    cache.put(("page", 1), one)
    text = sum(len(part) for part in one[::2])
    assert text < cache.stats().bytes < text + 2_500  # its text, pieces and entry; placeholders not again


def test_a_cache_of_no_bytes_keeps_nothing() -> None:
    cache = RenderCache(max_bytes=0)
    cache.put(("page",), (b"html",))
    assert cache.get(("page",)) is None
    assert cache.stats().entries == 0


def test_fill_puts_the_token_in_and_a_fresh_command_id_in_each_form() -> None:
    form = f'<i value="{COMMAND_ID_PLACEHOLDER}">'
    html = f'<i value="{CSRF_PLACEHOLDER}">{form}{form}'
    filled = fill(prepare(html), 'a"b').decode()
    assert 'value="a&#34;b"' in filled
    ids = re.findall(r'value="([0-9a-f-]{36})"', filled)
    assert len(ids) == 2
    assert ids[0] != ids[1]
    assert all(UUID(i).version == 4 for i in ids)
    assert ids != re.findall(r'value="([0-9a-f-]{36})"', fill(prepare(html), "t").decode())


@pytest.mark.parametrize(
    "fragment",
    ["plain text", f"<b>{COMMAND_ID_PLACEHOLDER}</b>", f"{CSRF_PLACEHOLDER}<i>{COMMAND_ID_PLACEHOLDER}</i>x"],
)
def test_fill_puts_a_fragment_into_its_shell_and_fills_both(fragment: str) -> None:
    shell = (
        f"<head>{CSRF_PLACEHOLDER}</head><main>{FRAGMENT_PLACEHOLDER}</main><i>{COMMAND_ID_PLACEHOLDER}</i>"
    )
    filled = fill(prepare(shell), "tok", prepare(fragment)).decode()
    expected = shell.replace(FRAGMENT_PLACEHOLDER, fragment).replace(CSRF_PLACEHOLDER, "tok")
    ids = re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", filled)
    assert len(ids) == expected.count(COMMAND_ID_PLACEHOLDER) == len(set(ids))
    assert re.sub(r"[0-9a-f-]{36}", COMMAND_ID_PLACEHOLDER, filled) == expected


def test_a_page_is_kept_and_sent_as_utf8_and_a_piece_of_text_as_text() -> None:
    cache = RenderCache()
    html = f"<p>Thé “café” · 5 €</p><i>{COMMAND_ID_PLACEHOLDER}</i>"
    cache.put(("page",), prepare(html))
    cache.put(("row",), "<td>Thé</td>")
    prepared = cache.get(("page",))
    assert prepared is not None
    body = fill(prepared, "t")
    assert body.decode().startswith("<p>Thé “café” · 5 €</p><i>")
    assert cache.get_text(("row",)) == "<td>Thé</td>"
    assert cache.get_text(("page",)) is None


def test_command_ids_are_version_4_uuids_as_uuid4_writes_them() -> None:
    ids = command_ids(2000)
    assert len(set(ids)) == 2000
    parsed = [UUID(i) for i in ids]
    assert all(
        u.version == 4 and u.variant == "specified in RFC 4122" and str(u) == i
        for u, i in zip(parsed, ids, strict=True)
    )
    # Every variant digit occurs (8, 9, a, b), as from uuid4.
    assert {i[19] for i in ids} == set("89ab")
    assert command_ids(0) == []


def test_the_page_cache_setting() -> None:
    assert from_environment({}).page_cache_mb == 32.0
    assert from_environment({"ORDERS_PAGE_CACHE_MB": "0"}).page_cache_mb == 0.0
    assert from_environment({"ORDERS_DEVELOPMENT": "1"}).development is True
    with pytest.raises(SettingsError, match="ORDERS_PAGE_CACHE_MB"):
        from_environment({"ORDERS_PAGE_CACHE_MB": "lots"})
