"""Request bodies read strictly: JSON types as the schema says, limits enforced, refusals explained.

Litestar converts a body loosely ("2" would do for 2); the API holds clients to
the schema instead, so each write decodes its body strictly before Litestar
does, in a before_request hook.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from litestar import Request

from web.api.explain import body_field
from web.api.problems import FieldError, http_problem, invalid

_LOCATION = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_MISSING = re.compile(r"^Object missing required field `(?P<name>[^`]+)`$")


def _value_at(document: Any, path: list[str]) -> Any:
    for key in path:
        if not isinstance(document, dict):
            return None
        document = document.get(key)
    return document


def field_error(body_type: type, document: Any, error: msgspec.ValidationError) -> FieldError:
    """The offending field of a body that decodes as JSON but breaks the schema, in words."""
    match = _LOCATION.match(str(error))
    assert match is not None
    message, location = match["message"], match["path"] or ""
    path = [key for key in re.split(r"\.|\[\d+\]", location) if key]
    missing = _MISSING.match(message)
    if missing:
        return FieldError(".".join([*path, missing["name"]]), f"The field {missing['name']} is required.")
    field = ".".join(path) or "body"
    refusal = body_field(body_type, field, _value_at(document, path))
    return FieldError(field, refusal.message if refusal else message)


def _whole_numbers(value: Any) -> Any:
    """JSON Schema counts 2.0 as an integer, so the API does too (2.5 stays a float, and refused)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _whole_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(item) for item in value]
    return value


def strict_body(
    body_type: type[msgspec.Struct], *, optional: bool = False
) -> Callable[[Request[Any, Any, Any]], Awaitable[None]]:
    """A before_request hook that refuses a body not exactly of `body_type`."""
    target: Any = body_type | None if optional else body_type

    async def check(request: Request[Any, Any, Any]) -> None:
        body = await request.body()
        if not body.strip():
            if optional:
                return
            raise http_problem(400, "This request needs a JSON body; the schema at /schema shows it.")
        try:
            document = msgspec.json.decode(body)
        except msgspec.DecodeError as error:  # also a number too large for a float, such as 1e309
            raise http_problem(400, f"The body is not valid JSON ({error}).") from None
        try:
            msgspec.convert(_whole_numbers(document), target, strict=True)
        except msgspec.ValidationError as error:
            raise invalid(422, [field_error(body_type, document, error)]) from None

    return check


def fingerprint(method: str, target: str, body: msgspec.Struct | None) -> str:
    """What identifies a request under an Idempotency-Key: method, target and body as decoded."""
    digest = hashlib.sha256(f"{method} {target}\n".encode())
    digest.update(b"" if body is None else msgspec.json.encode(body))
    return digest.hexdigest()
