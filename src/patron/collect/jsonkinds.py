"""Names of JSON value kinds, for error messages ("got a number")."""

from __future__ import annotations


def json_kind(value: object) -> str:
    """How a decoded JSON value reads in an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
