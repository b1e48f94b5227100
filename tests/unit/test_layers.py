"""The layering rules of docs/architecture.md ("Layers"), checked on the source."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

DOMAIN_MAY_IMPORT = sys.stdlib_module_names | {"msgspec", "domain"}
# Standard modules that would let the domain do I/O or be nondeterministic.
DOMAIN_MAY_NOT_IMPORT = {
    "asyncio",
    "http",
    "multiprocessing",
    "random",
    "secrets",
    "socket",
    "sqlite3",
    "ssl",
    "subprocess",
    "threading",
    "urllib",
}
STORE_MAY_NOT_IMPORT = {"web", "litestar", "jinja2"}
# Attribute or imported names that read a clock or make an id.
CLOCKS_AND_IDS = {"now", "utcnow", "today", "time_ns", "monotonic", "perf_counter", "uuid1", "uuid4"}
# Attribute or imported names that read the process's environment; only the `orders` command may.
ENVIRONMENT_READERS = {"environ", "environb", "getenv", "getenvb"}
READS_THE_ENVIRONMENT = "web/cli"


def sources(layer: str) -> list[Path]:
    return sorted((ROOT / layer).rglob("*.py"))


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def imports(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """(line, module) for every absolute import; a relative import stays inside its own package."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def clock_and_id_uses(tree: ast.Module) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and (
            node.attr in CLOCKS_AND_IDS
            or (node.attr == "time" and isinstance(node.value, ast.Name) and node.value.id == "time")
        ):
            yield node.lineno, f".{node.attr}"
        elif isinstance(node, ast.ImportFrom) and node.module in {"time", "datetime", "uuid"}:
            for alias in node.names:
                if alias.name in CLOCKS_AND_IDS or (node.module, alias.name) == ("time", "time"):
                    yield node.lineno, f"from {node.module} import {alias.name}"


def environment_reads(tree: ast.Module) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ENVIRONMENT_READERS:
            yield node.lineno, f".{node.attr}"
        elif isinstance(node, ast.ImportFrom) and node.module in {"os", "posix"}:
            for alias in node.names:
                if alias.name in ENVIRONMENT_READERS:
                    yield node.lineno, f"from {node.module} import {alias.name}"


def below_the_command() -> list[Path]:
    """Every module of domain, store and web but the `orders` command's."""
    command = ROOT / READS_THE_ENVIRONMENT
    return [
        path
        for layer in ("domain", "store", "web")
        for path in sources(layer)
        if path != command.with_suffix(".py") and command not in path.parents
    ]


def top_level(module: str) -> str:
    return module.partition(".")[0]


def test_there_is_a_domain_to_check() -> None:
    assert (ROOT / "domain" / "order.py").is_file()
    assert len(sources("domain")) >= 2


@pytest.mark.parametrize("path", sources("domain"), ids=name)
def test_the_domain_imports_only_the_standard_library_msgspec_and_itself(path: Path) -> None:
    offending = [
        f"{name(path)}:{line} imports {module}"
        for line, module in imports(parse(path))
        if top_level(module) not in DOMAIN_MAY_IMPORT or top_level(module) in DOMAIN_MAY_NOT_IMPORT
    ]
    assert not offending, (
        "domain/ may import only the standard library (no I/O), msgspec and domain: " + "; ".join(offending)
    )


@pytest.mark.parametrize("path", sources("store"), ids=name)
def test_the_store_never_imports_the_web(path: Path) -> None:
    offending = [
        f"{name(path)}:{line} imports {module}"
        for line, module in imports(parse(path))
        if top_level(module) in STORE_MAY_NOT_IMPORT
    ]
    assert not offending, "store/ may not import web, litestar or jinja2: " + "; ".join(offending)


@pytest.mark.parametrize("path", sources("domain"), ids=name)
def test_the_domain_never_reads_a_clock_or_makes_ids(path: Path) -> None:
    offending = [f"{name(path)}:{line} uses {what}" for line, what in clock_and_id_uses(parse(path))]
    assert not offending, "time and ids arrive on the command; the domain never makes them: " + "; ".join(
        offending
    )


@pytest.mark.parametrize("path", below_the_command(), ids=name)
def test_only_the_orders_command_reads_the_environment(path: Path) -> None:
    offending = [f"{name(path)}:{line} uses {what}" for line, what in environment_reads(parse(path))]
    assert not offending, "settings arrive as values from web/cli, the only reader of the environment: " + (
        "; ".join(offending)
    )


def test_the_orders_command_is_left_out_of_the_environment_scan_and_nothing_else() -> None:
    scanned = below_the_command()
    assert not [path for path in scanned if "cli" in path.relative_to(ROOT).parts]
    assert len(scanned) == sum(len(sources(layer)) for layer in ("domain", "store", "web")) - len(
        sources(READS_THE_ENVIRONMENT)
    )


@pytest.mark.parametrize("path", sources("web"), ids=name)
def test_every_web_module_parses(path: Path) -> None:
    parse(path)


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("import asyncpg", [(1, "asyncpg")]),
        ("from store.events import append", [(1, "store.events")]),
        ("if True:\n    import litestar.app as app", [(2, "litestar.app")]),
        ("from . import errors\nfrom .money import parse_amount", []),
    ],
)
def test_the_import_scan_sees_every_absolute_import(source: str, found: list[tuple[int, str]]) -> None:
    assert list(imports(ast.parse(source))) == found


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("import datetime\ndatetime.datetime.now()", ".now"),
        ("from datetime import datetime\ndatetime.utcnow()", ".utcnow"),
        ("import time\ntime.time()", ".time"),
        ("from time import time", "from time import time"),
        ("import uuid\nuuid.uuid4()", ".uuid4"),
        ("from uuid import uuid4", "from uuid import uuid4"),
    ],
)
def test_the_clock_and_id_scan_sees_what_it_looks_for(source: str, found: str) -> None:
    assert found in [what for _, what in clock_and_id_uses(ast.parse(source))]


def test_the_clock_and_id_scan_leaves_other_names_alone() -> None:
    source = "from datetime import datetime\nrecorded.time\nevent.timestamp\ndatetime.fromisoformat('x')"
    assert list(clock_and_id_uses(ast.parse(source))) == []


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("import os\nos.environ['DATABASE_URL']", ".environ"),
        ("import os\nos.environ.get('ORDERS_PORT', '8000')", ".environ"),
        ("import os\nos.getenv('ORDERS_SECRET')", ".getenv"),
        ("from os import environ", "from os import environ"),
        ("from os import getenv as env", "from os import getenv"),
    ],
)
def test_the_environment_scan_sees_what_it_looks_for(source: str, found: str) -> None:
    assert found in [what for _, what in environment_reads(ast.parse(source))]


def test_the_environment_scan_leaves_other_names_alone() -> None:
    source = "import os\nos.path.join('a', 'b')\nos.fdopen(1)\nsettings.environment\nfrom os import path"
    assert list(environment_reads(ast.parse(source))) == []


# The command handler and the modules the application layer wraps for the web.
HANDLER = "store.log.commands"
APPLICATION = ROOT / "store" / "application.py"


def handler_users(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """(line, what) for every import of the command handler's module or of a name from it."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == HANDLER:
            yield node.lineno, f"from {HANDLER} import {', '.join(a.name for a in node.names)}"
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module == "store.log"
            and "commands" in {a.name for a in node.names}
        ):
            yield node.lineno, "from store.log import commands"
        elif isinstance(node, ast.Import) and any(a.name == HANDLER for a in node.names):
            yield node.lineno, f"import {HANDLER}"


def application_code() -> list[Path]:
    """Every module of the service and its benchmarks, but the handler itself and the application layer."""
    paths = [*sources("domain"), *sources("store"), *sources("web"), *sources("bench")]
    return [p for p in paths if p != APPLICATION and p != ROOT / "store" / "log" / "commands.py"]


@pytest.mark.parametrize("path", application_code(), ids=name)
def test_only_the_application_layer_calls_the_command_handler(path: Path) -> None:
    offending = [f"{name(path)}:{line}: {what}" for line, what in handler_users(parse(path))]
    assert not offending, "commands go through store.application.Orders.execute: " + "; ".join(offending)


def test_the_application_layer_is_the_handlers_one_caller() -> None:
    assert [what for _, what in handler_users(parse(APPLICATION))], "store/application.py no longer uses it"
    assert APPLICATION not in application_code()


@pytest.mark.parametrize(
    "source",
    [
        "from store.log.commands import handle",
        "from store.log import commands",
        "import store.log.commands",
        "def f():\n    from store.log.commands import StaleVersion",
    ],
)
def test_the_handler_scan_sees_every_way_in(source: str) -> None:
    assert list(handler_users(ast.parse(source)))
