"""Domain exceptions shared by every app; the API layer turns them into 4xx responses."""

import re


class DomainError(Exception):
    """A request that cannot be carried out as asked. ``detail`` is shown to the client."""

    status_code = 400

    def __init__(self, message: str, *, detail: object | None = None) -> None:
        super().__init__(message)
        self.detail = detail if detail is not None else message

    def detail_by_field(self) -> dict[str, list[str]]:
        """``detail`` as field → messages (a message that names no field goes under ``__all__``)."""
        if isinstance(self.detail, dict):
            return {str(field): list(messages) for field, messages in self.detail.items()}
        return {"__all__": [str(self)]}


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


# An absolute file path: a slash not preceded by a word character, a colon or a slash (so no URL), then names.
_ABSOLUTE_PATH = re.compile(r"(?<![\w:/.])/(?:[^\s'\"/]+/)*([^\s'\"/]*)")


def without_server_paths(text: str) -> str:
    """``text`` with each absolute path shortened to ``…/<its last name>``: messages shown to clients (a failed
    run's error) say what failed without telling how the server's disks are laid out."""
    return _ABSOLUTE_PATH.sub(lambda match: f"…/{match.group(1)}", text)
