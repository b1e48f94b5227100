"""A write through the JSON API: Idempotency-Key, If-Match or expected_version, handle, answer.

An Idempotency-Key is claimed with the fingerprint of its request before the
command runs, and becomes the command id (uuid5), so a retry is recognised by
the store even when the first attempt's answer was lost. The answer (a result
or a rule's refusal) is kept and replayed byte for byte.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4, uuid5

import msgspec
from litestar import Request, Response
from litestar.di import NamedDependency

from domain.errors import DomainError
from domain.order import Command
from store.application import Envelope, Orders, StaleVersion
from store.idempotency import Claim, IdempotencyKeys
from web.api.bodies import fingerprint
from web.api.problems import TYPE_PREFIX, ApiProblem, Problem, refused, stale
from web.api.schemas import WriteResult
from web.api.views import event_view, order_view

# Command ids made from Idempotency-Keys live in their own uuid5 namespace.
IDEMPOTENCY_NAMESPACE = UUID("5d1f3a52-9c1e-4b7a-8f0e-6a2b7c9d4e10")
_ENTITY_TAG = re.compile(r'(W/)?"([^"]*)"')


def etag(version: int) -> str:
    return f'"{version}"'


class StoredAnswer(msgspec.Struct, frozen=True):
    """An answer as its Idempotency-Key keeps it, to replay byte for byte (JSON, to the store opaque)."""

    status: int
    body: bytes
    etag: str | None = None
    location: str | None = None


class Write(msgspec.Struct, frozen=True):
    """What a write request asks for besides its command."""

    target: str
    body: msgspec.Struct | None = None
    if_match: str | None = None
    expected_version: int | None = None
    idempotency_key: str | None = None
    created: bool = False


def _if_match_versions(header: str) -> set[int] | None:
    """The versions an If-Match header accepts (strong comparison); None for "*".

    A value that lists no strong tag of a version (W/"2", "abc", 2) matches none: 412, as for any
    tag that does not match (RFC 9110, 13.1.1).
    """
    if header.strip() == "*":
        return None
    # Versions are PostgreSQL integers; a larger tag matches no order.
    return {
        int(opaque)
        for weak, opaque in _ENTITY_TAG.findall(header)
        if not weak and opaque.isdigit() and opaque.isascii() and len(opaque) <= 10 and int(opaque) < 2**31
    }


async def _expected_version(orders: Orders, order_id: str, write: Write) -> tuple[int | None, bool]:
    """The version to hold the command to, and whether it came from If-Match (412) or the body (409).

    If-Match is evaluated first; when it matches, an expected_version in the body still has to.
    """
    if not write.if_match:
        return write.expected_version, False
    versions = _if_match_versions(write.if_match)
    if versions is None:
        return write.expected_version, False
    if len(versions) == 1 and write.expected_version in (None, *versions):
        return versions.pop(), True
    summary = await orders.summary(order_id)
    if summary.version not in versions:
        raise stale(min(versions, default=0), summary.version, precondition=True)
    if write.expected_version is None:
        return summary.version, True
    return write.expected_version, write.expected_version == summary.version


class Writes:
    """What every write route runs its command through, injected as one dependency (`writes`)."""

    def __init__(
        self,
        request: Request[Any, Any, Any],
        orders: NamedDependency[Orders],
        keys: NamedDependency[IdempotencyKeys],
    ) -> None:
        self.request, self.orders, self.keys = request, orders, keys

    async def run(self, command: Command, write: Write) -> Response[WriteResult]:
        key = write.idempotency_key
        if key:
            claimed, claim = await claim_key(self.keys, key, self.request.method, write.target, write.body)
            if claim.answer is not None:
                return await _replay(self.orders, claim.answer)
        expected, precondition = await _expected_version(self.orders, command.order_id, write)
        # The command id is made from the key and the request, so that once the key is
        # forgotten (a day later) a retry still writes nothing, and a new request under
        # the same key is not taken for the old one.
        command_id = uuid5(IDEMPOTENCY_NAMESPACE, f"{key}\n{claimed}") if key else uuid4()
        try:
            result = await self.orders.execute(
                command, Envelope(command_id, expected, requested_at=datetime.now(UTC))
            )
        except StaleVersion as error:
            raise stale(error.expected_version, error.actual_version, precondition=precondition) from None
        except DomainError as error:
            problem = refused(error)
            if key:
                problem_body = msgspec.json.encode(problem.problem)
                await self.keys.answer(key, _encode(StoredAnswer(problem.problem.status, problem_body)))
            raise problem from None
        # The order the command wrote to: a retried create whose first answer was lost makes a
        # new order id, but its command id finds the order the first attempt made.
        order_id, last = result.order.order_id, result.last_version
        sealed = await self.orders.written(result, opened=False)
        location = f"/api/orders/{order_id}" if write.created else None
        status = 201 if write.created else 200
        if key:
            # Kept as stored, personal fields sealed (result.order is too): a replay opens them
            # then, so idempotency_keys never holds them in clear, nor shows them once forgotten.
            kept = WriteResult(order_view(result.order, last), last, [event_view(e) for e in sealed])
            body = msgspec.json.encode(kept)
            await self.keys.answer(key, _encode(StoredAnswer(status, body, etag(last), location)))
        events = await self.orders.opened_events_of(sealed)
        order = await self.orders.opened_order(result.order)
        answer = WriteResult(order_view(order, last), last, [event_view(e) for e in events])
        return _response(answer, status, etag(last), location)


async def claim_key(
    keys: IdempotencyKeys, key: str, method: str, target: str, body: Any
) -> tuple[str, Claim]:
    """Claim `key` for this request: its fingerprint and the claim (with the first answer, if
    kept); refused when the key was used for another request."""
    claimed = fingerprint(method, target, body)
    claim = await keys.claim(key, claimed)
    if claim.fingerprint != claimed:
        raise ApiProblem(
            Problem(
                f"{TYPE_PREFIX}idempotency-key-reused",
                "Idempotency-Key already used",
                422,
                "This Idempotency-Key was used for a different request. "
                "Nothing was changed; send a new key with a new request.",
            )
        )
    return claimed, claim


def _response(
    answer: WriteResult, status: int, tag: str | None, location: str | None, **extra: str
) -> Response[WriteResult]:
    headers = {"ETag": tag} if tag else {}
    if location:
        headers["Location"] = location
    return Response(answer, status_code=status, headers={**headers, **extra})


_encode = msgspec.json.Encoder().encode
_decode_answer = msgspec.json.Decoder(StoredAnswer).decode


async def _replay(orders: Orders, stored: bytes) -> Response[WriteResult]:
    """The answer a key got the first time, again, its personal fields opened now."""
    answer = _decode_answer(stored)
    replayed = {"Idempotent-Replayed": "true"}
    if answer.status >= 400:
        raise ApiProblem(msgspec.json.decode(answer.body, type=Problem), replayed)
    opened = await orders.opened_json(msgspec.json.decode(answer.body))
    result = msgspec.json.decode(msgspec.json.encode(opened), type=WriteResult)
    return _response(result, answer.status, answer.etag, answer.location, **replayed)
