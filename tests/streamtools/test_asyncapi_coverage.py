"""The published AsyncAPI document names every subject the code publishes or reads.

The subjects are collected from the code itself, not from a list kept by hand: every subject
builder of `gati_contracts.subjects` (and every subject root constant) that the services, the
CLI or the stream tools import, plus any literal `gati.…` subject written in their source. A new
builder or a hand-written subject without a channel in `docs/schemas/asyncapi.yaml` fails here.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Iterator
from pathlib import Path

import yaml

import gati_contracts.subjects as subjects_module
from gati_contracts.events import EVENT_TYPES, schema_name

ROOT = Path(__file__).parents[2]
SCANNED = [
    ROOT / "services",
    ROOT / "libs" / "cli",
    ROOT / "libs" / "streamtools",
    ROOT / "libs" / "runtime",
]
SUBJECTS_MODULE = "gati_contracts.subjects"
NOT_SUBJECTS = {"gati.dev", *(schema_name(event) for event in EVENT_TYPES)}
"""Strings that start like a subject and are not one: the API group and the schema names."""


def channel_roots() -> list[str]:
    document = yaml.safe_load((ROOT / "docs" / "schemas" / "asyncapi.yaml").read_text())
    return [
        channel["address"].split("{", 1)[0].rstrip(".") for channel in document["channels"].values()
    ]


def builder_roots() -> dict[str, str]:
    """Each subject builder, and root constant, of the contracts with the root it writes."""
    roots = {
        name: value
        for name, value in vars(subjects_module).items()
        if name.endswith("_ROOT") and isinstance(value, str)
    }
    builders: dict[str, str] = {}
    for name, function in inspect.getmembers(subjects_module, inspect.isfunction):
        returns_subject = inspect.signature(function).return_annotation in ("str", str)
        if not name.endswith("_subject") or not returns_subject:
            continue
        used = {
            node.id
            for node in ast.walk(ast.parse(inspect.getsource(function)))
            if isinstance(node, ast.Name) and node.id in roots
        }
        assert len(used) == 1, f"{name} should write exactly one root, found {used}"
        builders[name] = roots[used.pop()]
    return {**builders, **roots}


def sources() -> Iterator[tuple[Path, ast.Module]]:
    for folder in SCANNED:
        for path in sorted(folder.rglob("*.py")):
            yield path, ast.parse(path.read_text(), str(path))


def used_names(tree: ast.Module, known: dict[str, str]) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == SUBJECTS_MODULE:
            names |= {alias.name for alias in node.names if alias.name in known}
        elif isinstance(node, ast.Attribute) and node.attr in known:
            names.add(node.attr)
    return names


def literal_subjects(tree: ast.Module) -> set[str]:
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value.startswith("gati.")
        and " " not in node.value
        and not any(node.value.startswith(skip) for skip in NOT_SUBJECTS)
    }


def covered(subject: str, roots: list[str]) -> bool:
    """A subject lies under a channel root; a filter (`gati.>`) must at least reach one."""
    tokens = subject.split(".")
    wild = next((i for i, token in enumerate(tokens) if token in {"*", ">"}), None)
    if wild is not None:
        fixed = ".".join(tokens[:wild])
        return any(root == fixed or root.startswith(fixed + ".") for root in roots)
    return any(subject == root or subject.startswith(root + ".") for root in roots)


def test_every_subject_the_code_uses_has_a_channel() -> None:
    known = builder_roots()
    roots = channel_roots()
    missing: list[str] = []
    seen_builders: set[str] = set()
    for path, tree in sources():
        for name in used_names(tree, known):
            seen_builders.add(name)
            if not covered(known[name], roots):
                missing.append(f"{path.relative_to(ROOT)}: {name} writes {known[name]}")
        missing += [
            f"{path.relative_to(ROOT)}: literal {subject!r}"
            for subject in literal_subjects(tree)
            if not covered(subject, roots)
        ]
    assert not missing, "subjects without an AsyncAPI channel:\n" + "\n".join(missing)
    assert seen_builders, "the scan found no subject builder at all; is it still looking?"


def test_the_scan_would_notice_an_undocumented_subject() -> None:
    tree = ast.parse("from gati_contracts.subjects import cr_subject\nX = 'gati.audit.trail'\n")
    assert used_names(tree, builder_roots()) == {"cr_subject"}
    assert literal_subjects(tree) == {"gati.audit.trail"}
    assert not covered("gati.audit.trail", channel_roots())
