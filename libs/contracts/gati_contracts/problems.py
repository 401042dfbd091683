"""Turns pydantic validation errors into advice a user can act on.

Each problem names the field as the user wrote it (`spec.resources.limits.memory`, camelCase,
list indices in brackets), the accepted form and, where it helps, the offending value. Values
under `env` are never echoed: they may be secrets, and these messages end up in status and logs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

_KEY_MARKER = "[key]"
_REWORDED = {
    "missing": "is required",
    "extra_forbidden": "is not a known field; check its spelling (fields are camelCase, "
    "such as handlerPath)",
}
_MAX_SHOWN = 60


@dataclass(frozen=True)
class FieldProblem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


def wire_path(loc: Sequence[int | str]) -> str:
    """`('spec', 'steps', 1, 'weight')` → `spec.steps[1].weight`."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part != _KEY_MARKER:
            path += f".{part}" if path else part
    return path


def _message(error: ErrorDetails) -> str:
    message = _REWORDED.get(error["type"]) or error["msg"].replace("Input should", "must")
    if _KEY_MARKER in error["loc"]:
        message = f"key {message}"
    shown = error.get("input")
    secret_place = "env" in error["loc"]
    if error["type"] in _REWORDED or secret_place or not _is_scalar(shown):
        return message
    text = repr(shown)
    if len(text) > _MAX_SHOWN:
        text = text[: _MAX_SHOWN - 3] + "..."
    return f"{message} (got {text})"


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def field_problems(error: ValidationError) -> list[FieldProblem]:
    return [
        FieldProblem(wire_path(detail["loc"]), _message(detail))
        for detail in error.errors(include_url=False)
    ]


def describe(error: ValidationError) -> str:
    """All problems on one line each: the text for a `Failed` condition or a CLI error."""
    return "\n".join(str(problem) for problem in field_problems(error))
