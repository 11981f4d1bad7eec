"""The `yekuo` command line: demo, hub, simulators, configuration check and schema export."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from yekuo.settings import Settings


def _check_config(args: argparse.Namespace) -> int:
    from routes.config import check_config

    config_dir = Path(args.config_dir) if args.config_dir else Settings().config_dir
    errors = check_config(config_dir)
    for error in errors:
        print(error, file=sys.stderr)
    if errors:
        print(f"{len(errors)} configuration error(s) in {config_dir}", file=sys.stderr)
        return 1
    print(f"configuration in {config_dir} is valid")
    return 0


def _schemas_export(args: argparse.Namespace) -> int:
    from canonical_model.registry import SCHEMA_DIR, export

    for path in export(Path(args.out) if args.out else SCHEMA_DIR):
        print(path)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from yekuo.demo import DemoOptions, run_demo

    options = DemoOptions(
        seed=args.seed,
        customers=args.customers,
        applications=args.applications,
        api_port=args.api_port,
        sim_port=args.sim_port,
        exit_after_settled=args.exit_after_settled,
        timeout_s=args.timeout,
    )
    return run_demo(Settings(), options)


def _run(args: argparse.Namespace) -> int:
    from yekuo.serve import serve_hub

    return serve_hub(Settings())


def _sim_marketing(args: argparse.Namespace) -> int:
    from simulators.marketing.server import run

    run(
        host=args.host,
        port=args.port,
        seed=args.seed,
        customers=args.customers,
        applications=args.applications,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="yekuo", description="yekuo-hub: 业扩报装 integration hub")
    commands = parser.add_subparsers(dest="command", required=True)

    check = commands.add_parser("check-config", help="validate every mapping, code table and route")
    check.add_argument(
        "--config-dir", help="folder holding mappings/ and routes/ (default: YEKUO_CONFIG_DIR)"
    )
    check.set_defaults(func=_check_config)

    schemas = commands.add_parser("schemas", help="canonical JSON Schemas")
    schemas_commands = schemas.add_subparsers(dest="schemas_command", required=True)
    export = schemas_commands.add_parser("export", help="write the JSON Schemas of the canonical model")
    export.add_argument("--out", help="target folder (default: canonical_model/schemas)")
    export.set_defaults(func=_schemas_export)

    demo = commands.add_parser("demo", help="run the marketing simulator, the hub and the API together")
    demo.add_argument("--seed", type=int, default=20261126, help="simulator seed (default: %(default)s)")
    demo.add_argument("--customers", type=int, default=150, help="seeded customers (default: %(default)s)")
    demo.add_argument(
        "--applications", type=int, default=200, help="seeded applications (default: %(default)s)"
    )
    demo.add_argument("--api-port", type=int, default=8000, help="API port (default: %(default)s)")
    demo.add_argument(
        "--sim-port", type=int, default=8001, help="simulator port, 0 for any (default: %(default)s)"
    )
    demo.add_argument(
        "--exit-after-settled",
        action="store_true",
        help="exit with a summary once every application is tracked",
    )
    demo.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        help="give up settling after this many seconds (default: %(default)s)",
    )
    demo.set_defaults(func=_demo)

    run = commands.add_parser("run", help="run the hub and the API against the configured legacy systems")
    run.set_defaults(func=_run)

    sim = commands.add_parser("sim", help="run a legacy-system simulator in the foreground")
    sims = sim.add_subparsers(dest="system", required=True)
    marketing = sims.add_parser("marketing", help="marketing system (SOAP); prints its WSDL URL")
    marketing.add_argument("--host", default="127.0.0.1")
    marketing.add_argument("--port", type=int, default=8001)
    marketing.add_argument("--seed", type=int, default=20261126)
    marketing.add_argument("--customers", type=int, default=150)
    marketing.add_argument("--applications", type=int, default=200)
    marketing.set_defaults(func=_sim_marketing)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `yekuo` console script."""
    from yekuo.logs import configure

    args = build_parser().parse_args(argv)
    configure()
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
