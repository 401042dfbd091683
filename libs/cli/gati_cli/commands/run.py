"""`gati-operator run <service>`: one service process, through the shared runtime lifecycle.

A service is the module `gati_<name>.service` with `async def main(ctx: ServiceContext)`;
everything else (settings, logging, NATS, provisioning, health, signals) is the runtime's.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gati_runtime.service import ServiceMain

SERVICES = ("watcher", "reconciler", "scaler", "timescape")
EXIT_USAGE = 2


class ServiceNotBuiltError(LookupError):
    """The service's package has no `service` module with a `main` yet."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run one operator service until SIGTERM",
        description="Run a service; settings come from GATI_* variables, overridden by flags "
        "(`gati-operator run <service> --help` lists them).",
    )
    parser.add_argument("service", choices=SERVICES)
    # Settings flags are parsed in `run`, so `gati-operator --help` never imports pydantic.
    parser.add_argument("settings", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    parser.set_defaults(func=run)


def _settings_flags(service: str, argv: list[str]) -> argparse.Namespace:
    from gati_runtime.settings import add_settings_arguments

    parser = argparse.ArgumentParser(prog=f"gati-operator run {service}")
    add_settings_arguments(parser)
    return parser.parse_args(argv)


def _service_variables() -> list[str]:
    """What services read beside `Settings`, as the settings reference lists it: known to every
    service, since one ConfigMap gives the same variables to all of them."""
    from gati_cli.reference import service_settings

    return [variable.name for group in service_settings().values() for variable in group]


def load_service(name: str) -> ServiceMain:
    module_name = f"gati_{name}.service"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name not in (module_name, f"gati_{name}"):
            raise  # the service exists but one of its own imports is missing
        raise ServiceNotBuiltError(
            f"service {name!r} is not built yet: there is no module {module_name} "
            f"(services/{name}/gati_{name}/service.py defining async def main(ctx))"
        ) from error
    main: ServiceMain | None = getattr(module, "main", None)
    if main is None or not callable(main):
        raise ServiceNotBuiltError(
            f"service {name!r} is not built yet: {module_name} defines no async main(ctx)"
        )
    return main


def run(args: argparse.Namespace) -> int:
    from gati_runtime.service import run_service
    from gati_runtime.settings import Settings, SettingsError

    try:
        flags = _settings_flags(args.service, args.settings)
        settings = Settings.load(args=flags)
        if settings.unknown_variables:  # only then worth importing what the services read
            settings = Settings.load(args=flags, also_known=_service_variables())
        main = load_service(args.service)
    except (SettingsError, ServiceNotBuiltError) as error:
        print(f"gati-operator run: {error}", file=sys.stderr)
        return EXIT_USAGE
    return run_service(args.service, main, settings)
