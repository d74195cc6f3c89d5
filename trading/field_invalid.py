"""The error of a wire schema that names the offending field: a command's, an authorization's."""

from __future__ import annotations


class FieldInvalid(ValueError):
    """A value that does not satisfy its schema; ``field`` names the offending key and
    ``reason`` says what it must be."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
