"""Domain errors: what a service refuses, and why, independent of any channel.

Each channel maps them: the HTTP API to problem+json (:mod:`konbit.api.problems`), the
SMS/USSD gateway to a reply in the sender's language, pages to a form error. ``code``
is a stable machine name a channel can translate; ``field`` names the input at fault.
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """A write or read the service refuses. ``status`` is the HTTP-like class of refusal."""

    status = 400
    code = "refused"

    def __init__(self, message: str, *, field: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details


class InvalidInput(ServiceError):
    """An input is out of range or malformed (names the field)."""

    status = 422
    code = "invalid_input"


class NotFound(ServiceError):
    """No such order, lot, consignment, job, request, organisation..."""

    status = 404
    code = "not_found"


class Forbidden(ServiceError):
    """The acting party may not do this: wrong role, or another organisation's resource."""

    status = 403
    code = "forbidden"


class Conflict(ServiceError):
    """The request conflicts with what is recorded (a phone already registered, ...)."""

    status = 409
    code = "conflict"


class IdempotencyConflict(Conflict):
    """The idempotency key was used before for another request (or one still running)."""

    code = "idempotency_conflict"


class OwnWallet(Conflict):
    """The sender keeps its own wallet: it signs itself (``POST /transactions/raw``)."""

    code = "own_wallet"


class ContractRefused(Conflict):
    """The contract would revert: the custom error's name and arguments."""

    code = "contract_refused"

    def __init__(self, error: str, args: dict[str, Any], message: str | None = None) -> None:
        super().__init__(message or f"the contract refused the call: {error}")
        self.error = error
        self.args_ = args


class BudgetSpent(ServiceError):
    """The organisation's gas sponsorship for the day is spent (``retry_after`` seconds)."""

    status = 429
    code = "gas_budget_spent"


class ChainUnavailable(ServiceError):
    """The chain node could not be asked (down, or it refused the request itself)."""

    status = 503
    code = "chain_unavailable"
