"""What each refusal answers over HTTP, for pages and the API alike (docs/architecture.md, "Refusals").

The application layer says what a refusal means (store.application.refusal_kind);
this is the one place that turns that meaning into a status.
"""

from __future__ import annotations

from domain.errors import DomainError
from store.application import RefusalKind, StaleVersion, refusal_kind

# A form or body that cannot even be read as a command is 400 (web.forms.FormError,
# the API's schema checks); the rest is decided by what the refusal means.
MALFORMED = 400
STATUS: dict[RefusalKind, int] = {
    "invalid": 422,  # the request must change, whatever the order's state
    "conflict": 409,  # the request is sound; the order's current state refuses it
    "not_found": 404,
    "stale": 409,  # decided on an older version (an If-Match header makes it 412)
    "forbidden": 403,  # the actor's role may not
}
PRECONDITION_FAILED = 412


def status_of(error: DomainError | StaleVersion) -> int:
    return STATUS[refusal_kind(error)]
