"""The one way a service refuses a request."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """A request refused as a whole, with nothing written.

    `code` is stable, so callers branch on it (the API answers with it as its error code);
    `message` is for people; `fields` names what was wrong, keyed as the input was (a field
    name, or an item's index for a batch), so a caller can point at it."""

    def __init__(self, message: str, *, code: str, fields: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.fields = fields or {}
