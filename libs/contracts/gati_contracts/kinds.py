"""The kinds the operator speaks about, each named once: kind, plural, subject token, apiVersion.

Subjects, CRDs, the watcher and the CLI all look kinds up here, so a kind can never be spelled
two ways (`GatiHandler` in one place, `gatihandlers` where a token was expected in another).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

GROUP: Final = "gati.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
CATEGORY: Final = "gati"


@dataclass(frozen=True)
class KindInfo:
    kind: str
    api_version: str
    plural: str
    short_name: str | None
    """Short name for `kubectl get`; None for built-in kinds the operator does not define."""

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def token(self) -> str:
        """The kind's token in subjects (`gati.cr.<token>.…`): the lowercase singular."""
        return self.singular

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]


GATI_HANDLER: Final = KindInfo("GatiHandler", API_VERSION, "gatihandlers", "gh")
GATI_MODULE: Final = KindInfo("GatiModule", API_VERSION, "gatimodules", "gm")
GATI_VERSION: Final = KindInfo("GatiVersion", API_VERSION, "gativersions", "gv")
DEPLOYMENT: Final = KindInfo("Deployment", "apps/v1", "deployments", None)

GATI_KINDS: Final[tuple[KindInfo, ...]] = (GATI_HANDLER, GATI_MODULE, GATI_VERSION)
OWNED_KINDS: Final[tuple[KindInfo, ...]] = (DEPLOYMENT,)
ALL_KINDS: Final[tuple[KindInfo, ...]] = GATI_KINDS + OWNED_KINDS

_BY_KIND: Final = {info.kind: info for info in ALL_KINDS}
_BY_TOKEN: Final = {info.token: info for info in ALL_KINDS}


class UnknownKindError(ValueError):
    pass


def kind_info(kind: str) -> KindInfo:
    """Look a kind up by its Kubernetes name (`GatiHandler`)."""
    return _lookup(_BY_KIND, kind, "kind")


def kind_for_token(token: str) -> KindInfo:
    """Look a kind up by its subject token (`gatihandler`)."""
    return _lookup(_BY_TOKEN, token, "kind token")


def _lookup(table: dict[str, KindInfo], key: str, what: str) -> KindInfo:
    try:
        return table[key]
    except KeyError:
        expected = ", ".join(table)
        raise UnknownKindError(f"unknown {what} {key!r}; expected one of {expected}") from None
