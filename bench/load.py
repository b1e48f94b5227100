"""The HTTP load generator, run in its own process: keep-alive connections on raw asyncio sockets.

A browser's part, cheaply: it takes the CSRF cookie from a first GET, then either walks the
order workflow as form posts (create, three items, place; 303 each) or GETs one path over and
over. Prints "measuring" when the warm-up ends, then one JSON line: completed units, requests,
seconds, latencies, errors.

    python -m bench.load http://127.0.0.1:8000 workflow --connections 16 --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

import uvloop

ITEMS = (
    ("TEA-1", "Green tea", "3.50", "2"),
    ("CUP-7", "Tea cup", "12.00", "1"),
    ("POT-3", "Tea pot", "39.00", "1"),
)


@dataclass
class Tally:
    units: int = 0
    requests: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    first_error: str = ""


class UnexpectedResponse(Exception):
    pass


class Connection:
    """One keep-alive HTTP/1.1 connection that keeps the cookies it is given."""

    def __init__(self, host: str, port: int, tally: Tally) -> None:
        self.host, self.port, self.tally = host, port, tally
        self.cookies: dict[str, str] = {}
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, form: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str]]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        lines = [f"{method} {path} HTTP/1.1", f"host: {self.host}:{self.port}"]
        body = b""
        if form is not None:
            body = urlencode(form).encode()
            lines += ["content-type: application/x-www-form-urlencoded", f"content-length: {len(body)}"]
            if "csrftoken" in self.cookies:
                lines.append(f"x-csrftoken: {self.cookies['csrftoken']}")
        if self.cookies:
            lines.append("cookie: " + "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        started = time.perf_counter()
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in header_lines:
            if not line:
                continue
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "set-cookie":
                cookie, _, _ = value.partition(";")
                key, _, cookie_value = cookie.partition("=")
                self.cookies[key.strip()] = cookie_value.strip()
            headers[name] = value
        await self._read_body(headers)
        self.tally.latencies.append(time.perf_counter() - started)
        self.tally.requests += 1
        self.tally.statuses[str(status)] = self.tally.statuses.get(str(status), 0) + 1
        if headers.get("connection", "").lower() == "close":
            self.writer.close()
            self.reader = self.writer = None
        return status, headers

    async def _read_body(self, headers: dict[str, str]) -> None:
        assert self.reader is not None
        if "content-length" in headers:
            await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break

    async def expect(
        self, method: str, path: str, status: int, form: dict[str, str] | None = None
    ) -> dict[str, str]:
        got, headers = await self.request(method, path, form)
        if got != status:
            raise UnexpectedResponse(f"{method} {path}: {got}, expected {status}")
        return headers

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def workflow(connection: Connection) -> None:
    # bench.workload's CUSTOMER, whom the caller registered (bench/http.py).
    headers = await connection.expect(
        "POST", "/orders", 303, {"customer_id": "customer-42", "currency": "EUR"}
    )
    order = headers["location"]
    for sku, name, price, quantity in ITEMS:
        form = {"sku": sku, "name": name, "unit_price": price, "quantity": quantity}
        await connection.expect("POST", f"{order}/items", 303, form)
    await connection.expect("POST", f"{order}/place", 303, {})


async def user(
    host: str, port: int, scenario: str, path: str, deadline: float, tally: Tally, session: str
) -> None:
    connection = Connection(host, port, tally)
    if session:
        connection.cookies["session"] = session  # signed in, as every person using the pages is
    try:
        await connection.expect("GET", path, 200)  # the CSRF cookie, as a browser's first page
        while time.perf_counter() < deadline:
            try:
                if scenario == "workflow":
                    await workflow(connection)
                else:
                    await connection.expect("GET", path, 200)
                tally.units += 1
            except UnexpectedResponse as error:
                tally.errors += 1
                tally.first_error = tally.first_error or str(error)
            except (ConnectionError, asyncio.IncompleteReadError) as error:
                tally.errors += 1
                tally.first_error = tally.first_error or f"connection lost: {error!r}"
                connection.close()  # the next request opens a new socket, with the same cookies
    finally:
        connection.close()


async def load(
    url: str, scenario: str, path: str, connections: int, seconds: float, warmup: float, session: str = ""
) -> dict[str, object]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    if warmup > 0:
        warm = Tally()
        deadline = time.perf_counter() + warmup
        await asyncio.gather(
            *(user(host, port, scenario, path, deadline, warm, session) for _ in range(connections))
        )
    print("measuring", flush=True)  # the parent starts its own counters (and profilers) now
    tally = Tally()
    started, cpu_started = time.perf_counter(), time.process_time()
    deadline = started + seconds
    await asyncio.gather(
        *(user(host, port, scenario, path, deadline, tally, session) for _ in range(connections))
    )
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    latencies = sorted(tally.latencies)
    return {
        "units": tally.units,
        "requests": tally.requests,
        "seconds": elapsed,
        "p50_ms": 1000 * statistics.median(latencies) if latencies else 0.0,
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] if latencies else 0.0,
        "client_cpu": cpu / elapsed,
        "errors": tally.errors,
        "first_error": tally.first_error,
        "statuses": tally.statuses,
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load")
    parser.add_argument("url")
    parser.add_argument("scenario", choices=("workflow", "get"))
    parser.add_argument("--path", default="/orders", help="the page to GET (and the first GET of each user)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--session", default="", help="a signed-in session's cookie value")
    args = parser.parse_args()
    result = uvloop.run(
        load(args.url, args.scenario, args.path, args.connections, args.seconds, args.warmup, args.session)
    )
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
