"""Reading any gati.dev object from its JSON, with one error type that carries usable advice.

Services receive raw objects on the bus; a malformed one must become a `Failed` condition with
the field named, never an exception that kills the consumer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from pydantic import ValidationError

from gati_contracts.handler import GatiHandler
from gati_contracts.kinds import GATI_HANDLER, GATI_MODULE, GATI_VERSION
from gati_contracts.module import GatiModule
from gati_contracts.problems import FieldProblem, field_problems
from gati_contracts.version import GatiVersion

GatiObject = GatiHandler | GatiModule | GatiVersion

MODELS: Final[dict[str, type[GatiObject]]] = {
    GATI_HANDLER.kind: GatiHandler,
    GATI_MODULE.kind: GatiModule,
    GATI_VERSION.kind: GatiVersion,
}


class InvalidObjectError(ValueError):
    """The object breaks the contract; `problems` names each bad field and its fix."""

    def __init__(self, kind: str, name: str, problems: list[FieldProblem]) -> None:
        self.kind = kind
        self.name = name
        self.problems = problems
        lines = "\n".join(f"  {problem}" for problem in problems)
        super().__init__(f"invalid {kind} {name!r}:\n{lines}")


def parse_object(data: object) -> GatiObject:
    """Validate a gati.dev object of any kind, chosen by its `kind` field."""
    if not isinstance(data, Mapping):
        problem = FieldProblem("", f"must be a JSON object (got {type(data).__name__})")
        raise InvalidObjectError("object", "", [problem])
    kind = data.get("kind")
    metadata = data.get("metadata")
    name = str(metadata.get("name", "")) if isinstance(metadata, Mapping) else ""
    model = MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        problem = FieldProblem("kind", f"must be one of {', '.join(MODELS)} (got {kind!r})")
        raise InvalidObjectError(str(kind), name, [problem])
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise InvalidObjectError(model.__name__, name, field_problems(error)) from None
