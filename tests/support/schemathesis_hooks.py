"""Schemathesis hooks for runs against this API (schemathesis.toml loads them).

Schemathesis sends the same few header values again and again; the API refuses an
Idempotency-Key used before for another request (422), as the key's contract says.
A client gives each new request a key of its own, so a valid key is made unique here.
Reuse itself is tested in tests/e2e/test_api_idempotency.py.

A case that leaves out the credential (the token `-H` or the test supplies) is sent
as generated: any edit makes Schemathesis check the case again, find it valid, and
put the token back, so the missing-header check would see the 201 of a signed-in call.
Without a token the API answers 401 before it looks at the key.
"""

from __future__ import annotations

import re
from typing import Any
from uuid import uuid4

import schemathesis
from schemathesis.generation.meta import negated_parameters

VALID_KEY = re.compile(r"[\x21-\x7e]{1,255}")


@schemathesis.hook
def before_call(context: Any, case: schemathesis.Case, kwargs: dict[str, Any]) -> None:
    # `_meta`, not `meta`: reading `meta` would check the case again before it is sent.
    if any(name.lower() == "authorization" for name, _ in negated_parameters(case._meta)):
        return
    key = (case.headers or {}).get("Idempotency-Key")
    if isinstance(key, str) and VALID_KEY.fullmatch(key):
        case.headers["Idempotency-Key"] = f"{uuid4()}-{key}"[:255]
