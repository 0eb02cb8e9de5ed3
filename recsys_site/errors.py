"""Domain exceptions shared by every app; the API layer turns them into 4xx responses."""


class DomainError(Exception):
    """A request that cannot be carried out as asked. ``detail`` is shown to the client."""

    status_code = 400

    def __init__(self, message: str, *, detail: object | None = None) -> None:
        super().__init__(message)
        self.detail = detail if detail is not None else message


class ValidationFailed(DomainError):
    """Input failed validation; ``detail`` maps field names (or batch indexes) to messages."""


class NotFound(DomainError):
    status_code = 404


class Conflict(DomainError):
    status_code = 409
