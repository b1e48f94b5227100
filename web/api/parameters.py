"""Path, query and header parameters of the API, and the response headers it documents."""

from __future__ import annotations

from typing import Annotated

from litestar.datastructures import ResponseHeader
from litestar.params import HeaderParameter, PathParameter

PathOrderId = Annotated[
    str, PathParameter(description="The order's id, a UUID.", schema_extra={"format": "uuid"})
]
# A header is a string or absent, never null: without this, an optional header is documented as
# oneOf [string, null], and clients (schemathesis among them) send the text "null".
NOT_NULL = {"oneOf": None, "type": "string"}
IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        schema_extra=NOT_NULL,
        description="Makes the write safe to retry: the same key with the same request gives the same "
        "answer and writes once; the same key with another request is refused (422).",
    ),
]
IfMatch = Annotated[
    str | None,
    HeaderParameter(
        name="If-Match",
        max_length=1000,
        schema_extra=NOT_NULL,
        description='"*", or the ETags of the order the client decided on, such as "3" (RFC 9110). '
        "Only a strong ETag of the order's current version matches; anything else, including a value "
        "that is not a list of ETags, gets 412.",
    ),
]
ETAG = ResponseHeader(name="ETag", description="The order's version, quoted.", documentation_only=True)
REPLAYED = ResponseHeader(
    name="Idempotent-Replayed",
    description="true when this is the answer first given to the same Idempotency-Key and request.",
    documentation_only=True,
)
LOCATION = ResponseHeader(name="Location", description="Where the new order is.", documentation_only=True)
NEXT_AFTER = "The next_after of the page before."
HOW_MANY = "How many to remove; the whole line when left out."
