"""The exchange's one error hierarchy. Every failure a client can cause or see is one of these,
and the API turns each into the same JSON shape (see `exchange.api.errors`)."""


class ExchangeError(Exception):
    """Base: an HTTP status, a stable machine-readable code, the offending field (if any) and a
    message for people."""

    status = 400
    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code

    def as_dict(self) -> dict:
        return {
            "status": self.status,
            "code": self.code,
            "field": self.field,
            "message": self.message,
        }


class InvalidInput(ExchangeError):
    status = 400
    code = "invalid"


class NotFound(ExchangeError):
    status = 404
    code = "not_found"


class Forbidden(ExchangeError):
    status = 403
    code = "forbidden"


class Conflict(ExchangeError):
    status = 409
    code = "conflict"


class InsufficientFunds(ExchangeError):
    """An order's worst-case cost is above the account's available cash (cash minus what its open
    buy orders reserve): nothing was written. The request was valid; the account cannot pay."""

    status = 422
    code = "insufficient_funds"


class Unavailable(ExchangeError):
    """A dependency (Redis, the engine) cannot be reached; nothing was written."""

    status = 503
    code = "unavailable"
