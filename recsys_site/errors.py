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


def error_text(error: DomainError) -> str:
    """The error's detail as one readable sentence: ``field: message; …`` for per-field details."""
    if not isinstance(error.detail, dict):
        return str(error.detail)
    parts = []
    for field, messages in error.detail.items():
        text = "; ".join(map(str, messages)) if isinstance(messages, list | tuple) else str(messages)
        parts.append(f"{str(field).replace('_', ' ')}: {text}")
    return "; ".join(parts)
