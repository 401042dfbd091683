"""Whether a failed API call is sent again, and after how long: the `retries` a client's
`Configuration` names (a `urllib3.Retry`, as `kube_config.API_RETRIES`, an int or False) read
the way urllib3 reads them, so the policy stays where kube_config states it whichever
transport carries the calls. Pure: no I/O, no clock but Retry-After's date, unit-tested alone.

Three ways to fail, three budgets under the total: a connection that could not be made (any
verb: the request never left), an answer that never came after the request was sent (only a
verb the policy allows, and only with a read budget: the request may be in effect), and an
answer whose code the policy retries (429/5xx, or a Retry-After on 413/429/503).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import urllib3
from urllib3.exceptions import InvalidHeader

Budget = int | bool | None
"""urllib3's count: None is no limit of its own, False or 0 none at all."""


@dataclass(frozen=True, slots=True)
class Spent:
    """Retries made so far in one call; each retry spends from the total and its kind."""

    total: int = 0
    connect: int = 0
    read: int = 0
    status: int = 0


NOTHING_SPENT: Final = Spent()


def _left(budget: Budget, spent: int) -> bool:
    return budget is None or (budget is not False and spent < budget)


class RetryPolicy:
    def __init__(self, retries: urllib3.Retry | bool | int | None) -> None:
        # from_int gives None urllib3's default (3 tries) and False none, as the official
        # client's pool would.
        self._retry = urllib3.Retry.from_int(retries)

    def after_connect_error(self, spent: Spent) -> tuple[float, Spent] | None:
        """The pause before trying to connect again and what that spends, or None to fail."""
        retry = self._retry
        if not (_left(retry.total, spent.total) and _left(retry.connect, spent.connect)):
            return None
        now = Spent(spent.total + 1, spent.connect + 1, spent.read, spent.status)
        return self._backoff(now), now

    def after_read_error(self, method: str, spent: Spent) -> tuple[float, Spent] | None:
        """After the request went out and no answer came (a read timeout, a dropped link)."""
        if (
            not self._repeatable(method)
            or not _left(self._retry.total, spent.total)
            or not _left(self._retry.read, spent.read)
        ):
            return None
        now = Spent(spent.total + 1, spent.connect, spent.read + 1, spent.status)
        return self._backoff(now), now

    def after_answer(
        self, method: str, code: int, retry_after: str | None, spent: Spent
    ) -> tuple[float, Spent] | None:
        """After an answer with `code`: None to hand it to the caller as it is."""
        retry = self._retry
        if not self._repeatable(method):
            return None
        forced = bool(retry.status_forcelist) and code in retry.status_forcelist
        told = (
            bool(retry.total)
            and retry.respect_retry_after_header
            and retry_after is not None
            and code in retry.RETRY_AFTER_STATUS_CODES
        )
        if not (forced or told):
            return None
        if not (_left(retry.total, spent.total) and _left(retry.status, spent.status)):
            return None
        now = Spent(spent.total + 1, spent.connect, spent.read, spent.status + 1)
        if retry.respect_retry_after_header and retry_after is not None:
            try:
                return retry.parse_retry_after(retry_after), now
            except InvalidHeader:
                pass  # a date nobody can read: fall back to the policy's own pause
        return self._backoff(now), now

    def _repeatable(self, method: str) -> bool:
        allowed = self._retry.allowed_methods  # None: every verb, as urllib3 reads it
        return allowed is None or method in allowed

    def _backoff(self, spent: Spent) -> float:
        """urllib3's: none before the first retry, then factor x 2^(n-1) up to the maximum."""
        if spent.total <= 1:
            return 0.0
        pause = self._retry.backoff_factor * 2 ** (spent.total - 1)
        return float(max(0.0, min(self._retry.backoff_max, pause)))
