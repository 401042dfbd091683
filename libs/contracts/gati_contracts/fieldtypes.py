"""Constrained field types shared by every resource model.

Each type checks its value with a message that tells the user the accepted form and an example,
and carries the same rule into the generated CRD schema (`pattern`, `maxLength`,
`x-kubernetes-int-or-string`), so the API server refuses bad input before any service sees it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Final

from pydantic import AwareDatetime, Field, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from gati_contracts.durations import DURATION_HINT, DURATION_PATTERN
from gati_contracts.quantities import QUANTITY_HINT, QUANTITY_PATTERN, parse_quantity

DNS_LABEL_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
LABEL_VALUE_PATTERN: Final = r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
ENV_VAR_NAME_PATTERN: Final = r"^[A-Za-z_][A-Za-z0-9_]*$"
# RFC 3986 path characters; query and fragment belong to the router, not to a handler's path.
HANDLER_PATH_PATTERN: Final = r"^/[-A-Za-z0-9._~!$&'()*+,;=:@%/]*$"
# `prefix/name` as in label keys; Kubernetes uses it for condition types and resource names.
QUALIFIED_NAME_PATTERN: Final = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
CONDITION_REASON_PATTERN: Final = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
IMAGE_PATTERN: Final = r"^[^\s]+$"


@dataclass(frozen=True)
class StringForm:
    """A string rule whose failure reads as advice (`must be … such as …`) instead of a regex."""

    error_type: str
    pattern: str
    hint: str
    max_length: int | None = None
    engine_pattern: str | None = None
    """`pattern` as pydantic-core's regex engine (Rust's `regex`) must read it to accept exactly
    what Python's `re.fullmatch(pattern)` accepts, where the two differ: Rust's `\\s` is Unicode
    White_Space, which lacks Python's \\x1c-\\x1f. `pattern` alone goes into the CRD."""

    def __get_pydantic_core_schema__(
        self, source: type[Any], handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        # The rule is checked inside pydantic-core, where a Python function called for each such
        # string (seven in a GatiHandler, on every parse) cost ~0.3 us a call. Only a string
        # reaches it, so any other input keeps pydantic's own error (string_type); a string
        # outside the rule gets this form's error and hint, without context, as before.
        rule = core_schema.str_schema(
            pattern=self.engine_pattern or self.pattern, max_length=self.max_length
        )
        return core_schema.chain_schema(
            [
                handler(source),
                core_schema.custom_error_schema(
                    rule, custom_error_type=self.error_type, custom_error_message=self.hint
                ),
            ]
        )

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        # The plain string's schema, whichever mode: the rule's engine_pattern is no API rule.
        result = handler(schema["steps"][0] if schema["type"] == "chain" else schema)
        result.setdefault("description", self.hint)
        result["pattern"] = self.pattern
        if self.max_length is not None:
            result["maxLength"] = self.max_length
        return result


@dataclass(frozen=True)
class QuantityForm:
    """Kubernetes quantities arrive as strings or bare YAML numbers (`cpu: 1`); both are valid.

    The model keeps the text form so the value reaches the Deployment exactly as written.
    """

    def check(self, value: object) -> str:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise PydanticCustomError("quantity", QUANTITY_HINT)
        text = value if isinstance(value, str) else repr(value)
        try:
            number = parse_quantity(text)
        except ValueError:
            raise PydanticCustomError("quantity", QUANTITY_HINT) from None
        if number < 0:
            raise PydanticCustomError("quantity", "must not be negative; " + QUANTITY_HINT)
        return text

    def __get_pydantic_core_schema__(
        self, source: type[Any], handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_plain_validator_function(
            self.check, serialization=core_schema.to_string_ser_schema()
        )

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN,
            "x-kubernetes-int-or-string": True,
        }


DNSLabel = Annotated[
    str,
    StringForm(
        "dns_label",
        DNS_LABEL_PATTERN,
        "must be a DNS-1123 label: at most 63 lowercase letters, digits or '-', starting and "
        "ending with a letter or digit, such as my-app",
        63,
    ),
]
DNSSubdomain = Annotated[
    str,
    StringForm(
        "dns_subdomain",
        DNS_SUBDOMAIN_PATTERN,
        "must be a DNS-1123 subdomain: at most 253 lowercase letters, digits, '-' or '.', each "
        "dot-separated part starting and ending with a letter or digit, such as my-app.v1",
        253,
    ),
]
ObjectName = Annotated[
    str,
    StringForm(
        "object_name",
        DNS_SUBDOMAIN_PATTERN,
        "must be a DNS-1123 subdomain of at most 63 characters (it is also used as a label "
        "value): lowercase letters, digits, '-' or '.', such as orders-v2",
        63,
    ),
]
LabelValue = Annotated[
    str,
    StringForm(
        "label_value",
        LABEL_VALUE_PATTERN,
        "must be a Kubernetes label value: at most 63 letters, digits, '-', '_' or '.', starting "
        "and ending with a letter or digit, such as v2 or 1.4.0",
        63,
    ),
]
EnvVarName = Annotated[
    str,
    StringForm(
        "env_var_name",
        ENV_VAR_NAME_PATTERN,
        "must be an environment variable name: letters, digits and '_', not starting with a "
        "digit, such as LOG_LEVEL",
        253,
    ),
]
HandlerPath = Annotated[
    str,
    StringForm(
        "handler_path",
        HANDLER_PATH_PATTERN,
        "must be a URL path starting with '/', such as /api/users, made of letters, digits and "
        "-._~!$&'()*+,;=:@%/ (no spaces, query or fragment)",
        1024,
    ),
]
Image = Annotated[
    str,
    StringForm(
        "image",
        IMAGE_PATTERN,
        "must be a container image reference without spaces, such as ghcr.io/acme/api:1.2.0",
        4096,
        engine_pattern=r"^[^\s\x1c-\x1f]+$",
    ),
]
ConditionType = Annotated[
    str,
    StringForm(
        "condition_type",
        QUALIFIED_NAME_PATTERN,
        "must be a CamelCase condition type such as Ready",
        316,
    ),
]
ConditionReason = Annotated[
    str,
    StringForm(
        "condition_reason",
        CONDITION_REASON_PATTERN,
        "must be a CamelCase reason such as RolloutComplete (letters, digits, '_', ',' or ':')",
        1024,
    ),
]
Duration = Annotated[str, StringForm("duration", DURATION_PATTERN, DURATION_HINT, 64)]
Quantity = Annotated[str, QuantityForm()]

Port = Annotated[int, Field(ge=1, le=65535)]
Weight = Annotated[int, Field(ge=0, le=100)]
Replicas = Annotated[int, Field(ge=0)]
Ratio = Annotated[float, Field(ge=0, le=1)]

# A time without a zone would be written without an offset, which is not RFC 3339: the API
# server would refuse the status write that carries it.
Timestamp = AwareDatetime
