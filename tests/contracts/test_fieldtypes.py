"""String forms are checked inside pydantic-core (Rust's regex engine), yet must accept exactly
what their pattern accepts under Python's `re.fullmatch`, as they did when checked in Python."""

from __future__ import annotations

import re
import sys
from types import ModuleType
from typing import Annotated, Any, get_args, get_origin

import pytest
from pydantic import TypeAdapter, ValidationError

from gati_contracts import fieldtypes, module, resources
from gati_contracts.fieldtypes import StringForm


def _forms(*modules: ModuleType) -> dict[str, tuple[Any, StringForm]]:
    found = {}
    for source in modules:
        for name, value in vars(source).items():
            if get_origin(value) is Annotated:
                form = next((m for m in get_args(value)[1:] if isinstance(m, StringForm)), None)
                if form is not None:
                    found[name] = (value, form)
    return found


FORMS = _forms(fieldtypes, module, resources)

# Every code point where the character classes in use could differ (ASCII, Latin-1, the
# whitespace either engine knows), then a stride through the rest; lone surrogates apart.
CODE_POINTS = sorted(
    {
        *range(0x3100),
        *(c for c in range(sys.maxunicode + 1) if chr(c).isspace()),
        *range(0x3100, sys.maxunicode + 1, 1009),
    }
    - set(range(0xD800, 0xE000))
)
CONTEXTS = ("{}", "a{}b", "/{}", "1{}s")


def test_every_form_of_the_models_is_checked_here() -> None:
    assert {"DNSLabel", "ObjectName", "Image", "Duration", "ResourceName", "ModuleName"} <= set(
        FORMS
    )


@pytest.mark.parametrize("name", sorted(FORMS))
def test_a_form_accepts_what_its_pattern_fullmatches(name: str) -> None:
    annotated, form = FORMS[name]
    adapter = TypeAdapter[str](annotated)
    pattern = re.compile(form.pattern)
    limit = form.max_length or sys.maxsize
    differ = []
    for code_point in CODE_POINTS:
        for context in CONTEXTS:
            text = context.format(chr(code_point))
            expected = len(text) <= limit and pattern.fullmatch(text) is not None
            try:
                adapter.validate_python(text)
                accepted = True
            except ValidationError:
                accepted = False
            if accepted != expected:
                differ.append(text)
    assert differ == []


@pytest.mark.parametrize("name", sorted(FORMS))
def test_a_form_refuses_with_its_advice_and_a_non_string_as_pydantic_does(name: str) -> None:
    annotated, form = FORMS[name]
    adapter = TypeAdapter[str](annotated)
    candidates = ["has space", "", "a" * ((form.max_length or 0) + 1)]
    limit = form.max_length or sys.maxsize
    refusable = [s for s in candidates if len(s) > limit or not re.fullmatch(form.pattern, s)]
    assert refusable
    for bad in refusable:
        with pytest.raises(ValidationError) as refused:
            adapter.validate_python(bad)
        assert refused.value.errors() == [
            {"type": form.error_type, "loc": (), "msg": form.hint, "input": bad}
        ]
    with pytest.raises(ValidationError) as refused:
        adapter.validate_python(5)
    [error] = refused.value.errors(include_url=False)
    assert (error["type"], error["msg"]) == ("string_type", "Input should be a valid string")


def test_an_image_with_a_lone_surrogate_is_refused() -> None:
    """Rust's engine cannot read it (it has no UTF-8 form, so no API server or bus message
    carries one); Python's `\\S` accepted it."""
    with pytest.raises(ValidationError, match="container image reference"):
        TypeAdapter[str](fieldtypes.Image).validate_python("ghcr.io/a\ud800")
