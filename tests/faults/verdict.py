"""How every fault test ends: once the operator has converged, the same facts are checked and
the same figures recorded, so the four faults are judged by one rule and compared in one table.

Taking the verdict (`judge`) happens while the stack still runs, since `verify` and the ledger
read NATS and the API server; concluding (`Verdict.conclude`) records the figures before it
asserts, so a failing run still leaves its numbers for docs/reliability.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faults.figures import FaultFigures, record
from faults.ledger import Ledger, read_ledger, settled_drift
from faults.workload import Burst, Converged
from fixtures.service_processes import ServiceGroup


@dataclass(frozen=True)
class Verdict:
    burst: Burst
    converged: Converged
    drift: list[Any]
    """`verify`'s drift that stayed: each entry a lost change."""
    ledger: Ledger

    def conclude(self, fault: str, fault_over: float, **extra: float | int | str) -> None:
        """Record the figures, then assert nothing was lost or stored twice; `fault_over` is the
        monotonic time the fault ended (0 s to converge when it converged during the fault)."""
        record(
            FaultFigures(
                fault=fault,
                changes=self.burst.changes,
                recorded=self.ledger.handler_generations,
                lost=len(self.drift),
                duplicated=self.ledger.duplicates,
                converge_after_fault_s=round(max(self.converged.at - fault_over, 0.0), 1),
                extra=extra,
            )
        )
        assert self.drift == []
        assert self.ledger.duplicates == 0


def judge(
    operator: ServiceGroup, burst: Burst, converged: Converged, nats_url: str, kubeconfig: Path
) -> Verdict:
    """The burst's writes all landed and no service died unasked; then what `verify` and the
    stream say, read while NATS and the API server are still up."""
    assert burst.error is None, burst.error
    assert operator.unexpected_exits() == {}, operator.log_tail()
    return Verdict(burst, converged, settled_drift(nats_url, kubeconfig), read_ledger(nats_url))
