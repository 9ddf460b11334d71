"""Domain errors: each carries a stable code, an HTTP status and, where it helps, the fields at fault.

Domain code raises these; one handler in app.main renders them in the API's error shape.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str
    # The reason in Chinese, for the console (app.web.errors translates the English message otherwise).
    zh: str | None = None


class DomainError(Exception):
    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, *, fields: list[FieldError] | None = None, zh: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or []
        # The refusal in Chinese, for the console; the API keeps `message` (app.web.errors translates it otherwise).
        self.zh = zh


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Invalid(DomainError):
    status = 422
    code = "validation_error"

    @classmethod
    def field(cls, field: str, message: str, *, zh: str | None = None) -> Invalid:
        return cls(f"{field}: {message}", fields=[FieldError(field, message, zh)])


class Conflict(DomainError):
    status = 409
    code = "conflict"


class Unauthenticated(DomainError):
    status = 401
    code = "unauthenticated"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class TooManyRequests(DomainError):
    status = 429
    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
