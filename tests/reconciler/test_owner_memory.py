"""OwnerMemory: a replica's own status writes stand in for the stream until it records them,
and a generation older than one acted on is told apart."""

from __future__ import annotations

from typing import Any

import pytest

from gati_reconciler.owner_memory import OwnerMemory


def state(version: str, generation: int = 1, uid: str = "u1", **status: Any) -> dict[str, Any]:
    return {
        "kind": "GatiHandler",
        "metadata": {"name": "h", "uid": uid, "generation": generation, "resourceVersion": version},
        "spec": {"image": "a:1"},
        "status": status,
    }


def test_an_unknown_object_reads_as_stored() -> None:
    memory = OwnerMemory()
    stored = state("5")
    assert memory.current(stored) is stored
    assert not memory.is_behind(stored)


def test_an_own_write_stands_in_until_the_stream_records_a_newer_version() -> None:
    memory = OwnerMemory()
    base = state("5")
    memory.wrote(base, {"phase": "Progressing"}, "6")
    current = memory.current(base)
    assert current["metadata"]["resourceVersion"] == "6"
    assert current["status"] == {"phase": "Progressing"}
    assert current["spec"] == base["spec"]
    echo = state("6", phase="Progressing")
    assert memory.current(echo) is echo  # recorded: the stream is the newest again
    later = state("7", generation=2)
    assert memory.current(later) is later  # someone else wrote after: theirs is newer


def test_writes_on_top_of_each_other_stand_in_for_every_base_not_yet_recorded() -> None:
    memory = OwnerMemory()
    memory.wrote(state("5"), {"phase": "Progressing"}, "6")
    memory.wrote(state("6"), {"phase": "Running"}, "7")
    for base in ("5", "6"):
        assert memory.current(state(base))["status"] == {"phase": "Running"}
    # A write over a version that is not the last one written starts a new chain.
    memory.wrote(state("9"), {"phase": "Degraded"}, "10")
    assert memory.current(state("5"))["metadata"]["resourceVersion"] == "5"
    assert memory.current(state("9"))["metadata"]["resourceVersion"] == "10"


def test_an_older_generation_of_the_same_incarnation_is_behind() -> None:
    memory = OwnerMemory()
    memory.acted(state("8", generation=3))
    assert memory.is_behind(state("4", generation=2))
    assert not memory.is_behind(state("8", generation=3))
    assert not memory.is_behind(state("9", generation=4))
    assert not memory.is_behind(state("2", generation=1, uid="u2"))  # a new incarnation
    memory.acted(state("4", generation=2))  # acting never lowers the mark
    assert memory.is_behind(state("4", generation=2))


def test_the_least_recently_used_object_is_forgotten_first() -> None:
    memory = OwnerMemory(size=2)
    for uid in ("a", "b"):
        memory.acted(state("1", generation=2, uid=uid))
    memory.acted(state("1", generation=2, uid="a"))  # used again
    memory.acted(state("1", generation=2, uid="c"))
    assert len(memory) == 2
    assert memory.is_behind(state("1", uid="a"))
    assert not memory.is_behind(state("1", uid="b"))
    with pytest.raises(ValueError, match="at least 1"):
        OwnerMemory(size=0)
