"""The `yekuo` command line: demo, hub, simulators, configuration check, schema export and migrations."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from ground.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Sequence

    from simulators.dispatch.equipment import Equipment

# Cases rebuilt per transaction by `yekuo cases rebuild`.
REBUILD_BATCH = 200


def _check_config(args: argparse.Namespace) -> int:
    import pydantic

    from yekuo.config import check_config
    from yekuo.sources import source_problems

    try:
        settings = Settings()
    except pydantic.ValidationError as exc:
        for detail in exc.errors():
            where = ".".join(str(part) for part in detail["loc"])
            print(f"settings {where}: {detail['msg']}", file=sys.stderr)
        print(f"{exc.error_count()} error(s) in the YEKUO_ settings", file=sys.stderr)
        return 1
    config_dir = Path(args.config_dir) if args.config_dir else settings.config_dir
    errors = [*source_problems(settings.declared_sources()), *check_config(config_dir)]
    for error in errors:
        print(error, file=sys.stderr)
    if errors:
        print(f"{len(errors)} configuration error(s) in {config_dir}", file=sys.stderr)
        return 1
    print(f"configuration in {config_dir} is valid")
    return 0


def _db_upgrade(args: argparse.Namespace) -> int:
    from store.database import SchemaError, create_engine, create_schema, schema_status

    engine = create_engine(args.db_url or Settings().db_url)
    try:
        before = schema_status(engine)
        create_schema(engine)
        after = schema_status(engine)
    except SchemaError as exc:
        print(f"yekuo db upgrade: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    if before.revision == after.revision:
        print(f"database schema: {after.describe()}; nothing to do")
    else:
        print(f"database schema: {before.revision or 'none'} -> {after.describe()}")
    return 0


def _db_current(args: argparse.Namespace) -> int:
    from store.database import create_engine, schema_status

    engine = create_engine(args.db_url or Settings().db_url)
    try:
        status = schema_status(engine)
    finally:
        engine.dispose()
    print(f"database schema: {status.describe()}")
    return 1 if status.behind else 0


def _schemas_export(args: argparse.Namespace) -> int:
    from canonical_model.registry import SCHEMA_DIR, export

    for path in export(Path(args.out) if args.out else SCHEMA_DIR):
        print(path)
    return 0


def _asyncapi_export(args: argparse.Namespace) -> int:
    from api.asyncapi import render, settings_document
    from yekuo.consumers import CONSUMERS

    text = render(settings_document(Settings(), CONSUMERS))
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(args.out)
    else:
        sys.stdout.write(text)
    return 0


def _report_stages(args: argparse.Namespace) -> int:
    from store.database import create_engine
    from workflow.analytics import VisitFilter, stage_analytics
    from workflow.config import load_workflow_config
    from workflow.report import render_stage_report

    settings = Settings()
    config = load_workflow_config(Path(args.config_dir) if args.config_dir else settings.config_dir)
    engine = create_engine(args.db_url or settings.db_url)
    try:
        with engine.connect() as conn:
            analytics = stage_analytics(
                conn,
                stage_order=tuple(config.stages),
                where=VisitFilter(customer_class=args.customer_class, unit=args.unit),
            )
    finally:
        engine.dispose()
    print(render_stage_report(analytics, config.stages), end="")
    return 0


def _report_process(args: argparse.Namespace) -> int:
    from datetime import datetime, time, timedelta

    from store.database import create_engine
    from workflow.process import ProcessFilter, process_figures
    from workflow.report import render_process_report
    from workflow.workdays import SHANGHAI

    if args.period_from and args.period_to and args.period_from > args.period_to:
        print(f"--from {args.period_from} is after --to {args.period_to}", file=sys.stderr)
        return 2
    settings = Settings()
    where = ProcessFilter(
        basis=args.basis,
        period_from=datetime.combine(args.period_from, time(), SHANGHAI) if args.period_from else None,
        period_to=(
            datetime.combine(args.period_to + timedelta(days=1), time(), SHANGHAI) if args.period_to else None
        ),
        customer_class=args.customer_class,
        unit=args.unit,
    )
    engine = create_engine(args.db_url or settings.db_url)
    try:
        with engine.connect() as conn:
            figures = process_figures(conn, where=where, target_days=settings.process.target_working_days)
    finally:
        engine.dispose()
    print(render_process_report(figures), end="")
    return 0


def _report_forecast(args: argparse.Namespace) -> int:
    from forecast.report import render_forecast_report
    from store.database import create_engine
    from store.forecast import stored_alerts

    engine = create_engine(args.db_url or Settings().db_url)
    try:
        with engine.connect() as conn:
            alerts = stored_alerts(conn)
    finally:
        engine.dispose()
    print(render_forecast_report(alerts), end="")
    return 0


def _forecast_run(args: argparse.Namespace) -> int:
    from forecast.refresh import refresh_forecasts, refresh_settings
    from ground.errors import ConfigError
    from store.database import create_engine, create_schema

    settings = Settings()
    if args.config_dir:
        settings = settings.model_copy(update={"config_dir": Path(args.config_dir)})
    try:
        refresh = refresh_settings(settings, province=args.province)
    except ConfigError as exc:
        print(f"yekuo forecast run: {exc}", file=sys.stderr)
        return 2
    engine = create_engine(args.db_url or settings.db_url)
    try:
        create_schema(engine)
        report = refresh_forecasts(engine, refresh)
    finally:
        engine.dispose()
    print(f"forecast refresh: {report.describe()}")
    return 0


def _assistant_gaps(args: argparse.Namespace) -> int:
    import json
    from dataclasses import asdict
    from datetime import datetime, time

    import sqlalchemy as sa

    from assistant.gaps import list_gaps
    from store.database import create_engine
    from store.schema import assistant_gaps
    from workflow.workdays import SHANGHAI, local_date

    since = datetime.combine(args.since, time(), SHANGHAI) if args.since else None
    engine = create_engine(args.db_url or Settings().db_url)
    try:
        with engine.connect() as conn:
            # A listing changes nothing: a database the hub has not set up yet simply has no gaps.
            stored = sa.inspect(conn).has_table(assistant_gaps.name)
            gaps = list_gaps(conn, since=since, limit=args.limit) if stored else []
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps([asdict(gap) for gap in gaps], ensure_ascii=False, default=datetime.isoformat))
        return 0
    rows = [("次数", "类型", "最近提问", "最接近条目", "得分", "问题")]
    rows += [
        (
            str(gap.times_asked),
            gap.kind,
            local_date(gap.last_asked_at).isoformat(),
            gap.best_entry_id or "—",
            f"{gap.best_score:.2f}" if gap.best_score is not None else "—",
            gap.question,
        )
        for gap in gaps
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(5)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[5])
    return 0


def _cases_rebuild(args: argparse.Namespace) -> int:
    import uuid

    import sqlalchemy as sa

    from store.database import create_engine
    from store.locks import lock_keys
    from store.schema import case_events
    from workflow.cases import case_key, default_tracker

    tracker = default_tracker()
    engine = create_engine(args.db_url or Settings().db_url)
    try:
        with engine.connect() as conn:
            numbers = list(
                conn.execute(sa.select(case_events.c.application_no).distinct().order_by("application_no"))
                .scalars()
                .all()
            )
        for start in range(0, len(numbers), REBUILD_BATCH):
            batch = numbers[start : start + REBUILD_BATCH]
            with engine.begin() as conn:
                # Running hubs' consumers may fold these cases meanwhile: take their keys first, as they do.
                lock_keys(conn, map(case_key, batch))
                for number in batch:
                    tracker.rebuild(conn, number, correlation_id=str(uuid.uuid4()))
    finally:
        engine.dispose()
    print(f"rebuilt {len(numbers)} case(s)")
    return 0


def _positive(text: str) -> int:
    """A count of at least 1, for argparse."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return value


def _local_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-30") from None


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


def _api(args: argparse.Namespace) -> int:
    from yekuo.serve import serve_api

    settings = Settings()
    if args.workers is not None:
        settings = settings.model_copy(update={"api_workers": args.workers})
    return serve_api(settings)


def _sim_marketing(args: argparse.Namespace) -> int:
    from simulators.marketing.server import run

    run(
        host=args.host,
        port=args.port,
        seed=args.seed,
        customers=args.customers,
        applications=args.applications,
        faults=args.fault,
        push_url=args.push_url,
        push_api_key=args.push_api_key,
        change_interval_s=args.change_interval,
        history_years=args.history_years,
    )
    return 0


def _sim_pms(args: argparse.Namespace) -> int:
    from simulators.pms.runner import run

    run(
        args.db_url,
        args.seed,
        substation_count=args.substations,
        feeder_count=args.feeders,
        transformer_count=args.transformers,
        reset=args.reset,
        interval_s=args.interval,
        changes_per_tick=args.changes,
        ticks=args.ticks,
    )
    return 0


def _sim_dispatch(args: argparse.Namespace) -> int:
    import contextlib
    from datetime import date

    from simulators.dispatch.faults import parse_faults
    from simulators.dispatch.runner import choose_equipment, run

    sizes = {"feeders": args.feeders, "transformers": args.transformers}
    equipment = choose_equipment(args.pms_db, pms_seed=args.pms_seed, seed=args.seed, **sizes)
    if args.history_years is not None:
        return _sim_dispatch_history(args, equipment)
    with contextlib.suppress(KeyboardInterrupt):
        run(
            Path(args.out),
            args.seed,
            equipment=equipment,
            start=date.fromisoformat(args.start) if args.start else None,
            days=args.days,
            interval_s=args.interval,
            faults=parse_faults(args.faults),
            fault_rate=args.fault_rate,
            oversize_bytes=args.oversize_bytes,
            hold_s=args.hold,
            manifest=Path(args.manifest) if args.manifest else None,
        )
    return 0


def _sim_dispatch_history(args: argparse.Namespace, equipment: Sequence[Equipment]) -> int:
    from ground import clock
    from ground.errors import ConfigError
    from simulators.dispatch.history import write_history
    from simulators.dispatch.runner import DISPATCH_ZONE

    years = args.history_years
    if years < 1:
        raise ConfigError(f"--history-years must be at least 1, not {years}")
    this_year = clock.now().astimezone(DISPATCH_ZONE).year
    start = date.fromisoformat(args.start) if args.start else date(this_year - years, 1, 1)
    days = write_history(Path(args.out), equipment, start, years, args.seed)
    print(f"dispatch simulator: wrote {days} days of history curves into {args.out} from {start}")
    return 0


def _sim_all(args: argparse.Namespace) -> int:
    from datetime import date

    from simulators.dispatch.faults import parse_faults
    from simulators.suite import SuiteOptions, run_suite
    from simulators.world import WorldScale

    scale = WorldScale(
        customers=args.customers,
        applications=args.applications,
        substations=args.substations,
        feeders=args.feeders,
        transformers=args.transformers,
    )
    run_suite(
        SuiteOptions(
            host=args.host,
            port=args.port,
            seed=args.seed,
            scale=scale,
            pms_db_url=args.pms_db_url,
            reset=args.reset,
            pms_interval_s=args.pms_interval,
            pms_changes=args.pms_changes,
            dispatch_out=Path(args.dispatch_out),
            dispatch_interval_s=args.dispatch_interval,
            dispatch_days=args.dispatch_days,
            dispatch_start=date.fromisoformat(args.dispatch_start) if args.dispatch_start else None,
            dispatch_faults=parse_faults(args.dispatch_faults),
            dispatch_fault_rate=args.dispatch_fault_rate,
            marketing_faults=args.fault,
        )
    )
    return 0


def _scenario_run(args: argparse.Namespace) -> int:
    from ground.errors import ConfigError
    from simulators.scenario.loader import load_scenario
    from simulators.scenario.report import render_json, render_text
    from simulators.scenario.runner import RunOptions, run_scenario
    from yekuo.hub import Hub

    try:
        scenario = load_scenario(Path(args.file))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    options = RunOptions(
        db_url=args.db_url, bus_url=args.bus_url, work_dir=Path(args.work_dir) if args.work_dir else None
    )
    # With --json, stdout carries the report only; progress goes to stderr.
    progress = (lambda line: print(line, file=sys.stderr, flush=True)) if args.json else None
    result = run_scenario(scenario, Hub, options, say=progress or (lambda line: print(line, flush=True)))
    print(render_json(result) if args.json else render_text(result), end="")
    return 0 if result.passed else 1


def _dlq(args: argparse.Namespace) -> int:
    from yekuo.dlq import run

    return run(args, Settings())


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="yekuo", description="yekuo-hub: 业扩报装 integration hub")
    commands = parser.add_subparsers(dest="command", required=True)

    check = commands.add_parser(
        "check-config", help="validate the declared sources and every mapping, code table and route"
    )
    check.add_argument(
        "--config-dir", help="folder holding mappings/ and routes/ (default: YEKUO_CONFIG_DIR)"
    )
    check.set_defaults(func=_check_config)

    db = commands.add_parser("db", help="the hub database's schema")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_options = argparse.ArgumentParser(add_help=False)
    db_options.add_argument("--db-url", help="hub database (default: YEKUO_DB_URL)")
    db_upgrade = db_commands.add_parser(
        "upgrade", parents=[db_options], help="apply the migrations the database lacks (creates an empty one)"
    )
    db_upgrade.set_defaults(func=_db_upgrade)
    db_current = db_commands.add_parser(
        "current",
        parents=[db_options],
        help="the database's schema revision; exit 1 when older than the code",
    )
    db_current.set_defaults(func=_db_current)

    dlq_options = argparse.ArgumentParser(add_help=False)
    dlq_options.add_argument("--db-url", help="hub database (default: YEKUO_DB_URL)")
    dlq_options.add_argument("--bus-url", help="bus a dead letter is replayed on (default: YEKUO_BUS_URL)")
    dlq_options.add_argument(
        "--config-dir",
        help="mappings and routes an invalid record is replayed through (default: YEKUO_CONFIG_DIR)",
    )
    dlq = commands.add_parser("dlq", help="parked messages: dead letters and invalid input")
    dlq_commands = dlq.add_subparsers(dest="dlq_command", required=True)
    dlq_list = dlq_commands.add_parser(
        "list", parents=[dlq_options], help="list parked messages, oldest first"
    )
    dlq_list.add_argument("--kind", choices=["dead", "invalid"], help="only this kind (default: both)")
    dlq_list.add_argument(
        "--status",
        choices=["parked", "replayed", "discarded", "all"],
        default="parked",
        help="only this status (default: %(default)s)",
    )
    dlq_list.add_argument("--after", type=int, help="start after this id (the next-page cursor)")
    dlq_list.add_argument("--limit", type=int, default=50, help="at most this many (default: %(default)s)")
    dlq_show = dlq_commands.add_parser("show", parents=[dlq_options], help="one message with its payload")
    dlq_show.add_argument("id", type=int)
    dlq_show.add_argument(
        "--unmask",
        action="store_true",
        help="show personal data unmasked; the read is recorded in the audit log under --operator",
    )
    dlq_show.add_argument("--operator", help="who is reading, for the audit log (default: OS user)")
    for name, text in (
        ("replay", "send a message through the hub again (safe: consumers deduplicate)"),
        ("discard", "drop a message for good (it stays listed as discarded)"),
    ):
        action = dlq_commands.add_parser(name, parents=[dlq_options], help=text)
        action.add_argument("id", type=int)
        action.add_argument("--operator", help="who is acting, recorded with the action (default: OS user)")
    dlq.set_defaults(func=_dlq)

    schemas = commands.add_parser("schemas", help="canonical JSON Schemas")
    schemas_commands = schemas.add_subparsers(dest="schemas_command", required=True)
    export = schemas_commands.add_parser("export", help="write the JSON Schemas of the canonical model")
    export.add_argument("--out", help="target folder (default: canonical_model/schemas)")
    export.set_defaults(func=_schemas_export)

    asyncapi = commands.add_parser("asyncapi", help="the AsyncAPI 3.0 document of the hub's events")
    asyncapi_commands = asyncapi.add_subparsers(dest="asyncapi_command", required=True)
    asyncapi_export = asyncapi_commands.add_parser("export", help="write the document built from the routes")
    asyncapi_export.add_argument("--out", help="target file (default: standard output)")
    asyncapi_export.set_defaults(func=_asyncapi_export)

    cases = commands.add_parser("cases", help="the tracked cases")
    cases_commands = cases.add_subparsers(dest="cases_command", required=True)
    rebuild = cases_commands.add_parser(
        "rebuild",
        help="rebuild every case from its kept events, with its analytics facts",
        description="Each case is folded again from its events and stored with its timeline, stage visits "
        "and the facts the process figures read (case_figures, stage_visits.excess_days): for a database "
        "made before those tables, or after the workday calendar or the stage model changed. A stage entry "
        "the timeline did not have yet is published, as when an event arrives.",
    )
    rebuild.add_argument("--db-url", help="hub database (default: YEKUO_DB_URL)")
    rebuild.set_defaults(func=_cases_rebuild)

    report = commands.add_parser("report", help="reports over the workflow state")
    reports = report.add_subparsers(dest="report", required=True)
    stages = reports.add_parser(
        "stages", help="stage durations (spread in working days), rework and bottlenecks"
    )
    stages.add_argument("--customer-class", help="only this customer class, e.g. hv_single_source")
    stages.add_argument("--unit", help="only this supply unit (ORG_NO)")
    stages.add_argument("--db-url", help="hub database (default: YEKUO_DB_URL)")
    stages.add_argument("--config-dir", help="folder holding workflow/ (default: YEKUO_CONFIG_DIR)")
    stages.set_defaults(func=_report_stages)
    process = reports.add_parser(
        "process", help="days from application to power, commitments kept, rework by cause, findings"
    )
    process.add_argument(
        "--from", dest="period_from", type=_local_date, metavar="DATE", help="period start (inclusive)"
    )
    process.add_argument(
        "--to", dest="period_to", type=_local_date, metavar="DATE", help="period end (inclusive)"
    )
    process.add_argument(
        "--basis",
        choices=("energised", "opened"),
        default="energised",
        help="cases energised in the period, or submitted in it (default: %(default)s)",
    )
    process.add_argument("--customer-class", help="only this customer class, e.g. hv_single_source")
    process.add_argument("--unit", help="only this supply unit (ORG_NO)")
    process.add_argument("--db-url", help="hub database (default: YEKUO_DB_URL)")
    process.set_defaults(func=_report_process)

    forecast_report = reports.add_parser(
        "forecast", help="planning alerts: equipment forecast to exceed its limit, by crossing month"
    )
    forecast_report.add_argument("--db-url", help="hub database (default: YEKUO_DB_URL)")
    forecast_report.set_defaults(func=_report_forecast)

    assistant = commands.add_parser("assistant", help="the customer assistant")
    assistant_commands = assistant.add_subparsers(dest="assistant_command", required=True)
    gaps = assistant_commands.add_parser(
        "gaps",
        help="questions the knowledge base answered badly or not at all, most asked first",
        description="Questions are kept with personal data replaced (【手机号】, 【姓名】, ...), one row per "
        "scrubbed text, for staff to turn into knowledge entries.",
    )
    gaps.add_argument(
        "--since", type=_local_date, metavar="DATE", help="only questions last asked on or after this day"
    )
    gaps.add_argument("--limit", type=_positive, default=50, help="at most this many (default: %(default)s)")
    gaps.add_argument("--json", action="store_true", help="print the gaps as JSON")
    gaps.add_argument("--db-url", help="hub database (default: YEKUO_DB_URL)")
    gaps.set_defaults(func=_assistant_gaps)

    forecast = commands.add_parser("forecast", help="equipment load forecasts")
    forecast_commands = forecast.add_subparsers(dest="forecast_command", required=True)
    forecast_run = forecast_commands.add_parser(
        "run", help="forecast every substation, feeder and transformer now and raise the planning alerts"
    )
    forecast_run.add_argument(
        "--province", help="rule set (default: YEKUO_FORECAST__PROVINCE, else defaults)"
    )
    forecast_run.add_argument("--db-url", help="hub database (default: YEKUO_DB_URL)")
    forecast_run.add_argument("--config-dir", help="folder holding feasibility/ and forecast/")
    forecast_run.set_defaults(func=_forecast_run)

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

    api = commands.add_parser(
        "api",
        help="serve the API alone from several processes, beside the hub instances (`yekuo run`)",
        description="Serve the API alone from several processes, beside the hub instances (`yekuo run`). "
        "Its /metrics are those of the one process that answers; scrape the hub's from `yekuo run`.",
    )
    api.add_argument(
        "--workers",
        type=_positive,
        help="processes to serve from (default: YEKUO_API_WORKERS, else the cores)",
    )
    api.set_defaults(func=_api)

    sim = commands.add_parser("sim", help="run a legacy-system simulator in the foreground")
    sims = sim.add_subparsers(dest="system", required=True)
    marketing = sims.add_parser("marketing", help="marketing system (SOAP); prints its WSDL URL")
    marketing.add_argument("--host", default="127.0.0.1")
    marketing.add_argument("--port", type=int, default=8001)
    marketing.add_argument("--seed", type=int, default=20261126)
    marketing.add_argument("--customers", type=int, default=150)
    marketing.add_argument("--applications", type=int, default=200)
    marketing.add_argument(
        "--fault", action="append", default=[], help="fault[:op=O][:calls=N-M][:app=A][:delay=S], repeatable"
    )
    marketing.add_argument("--push-url", help="push every change to the hub's /soap/marketing endpoint")
    marketing.add_argument(
        "--push-api-key",
        default=os.environ.get("YEKUO_SIM_PUSH_API_KEY"),
        help="the API key the hub issued to the marketing system (default: $YEKUO_SIM_PUSH_API_KEY)",
    )
    marketing.add_argument("--change-interval", type=float, help="move an application a step every S s")
    marketing.add_argument(
        "--history-years",
        type=int,
        help="serve this many complete years of applications (simulators/marketing/history.py), "
        "--applications of them in the first year, with EV-charging adoption growing",
    )
    marketing.set_defaults(func=_sim_marketing)
    pms = sims.add_parser("pms", help="production management system (legacy database): seed, then change it")
    pms.add_argument("--db-url", required=True, help="SQLAlchemy URL of the PMS database (sqlite:///pms.db)")
    pms.add_argument("--seed", type=int, default=20261126)
    pms.add_argument("--substations", type=int, default=100)
    pms.add_argument("--feeders", type=int, default=2000)
    pms.add_argument("--transformers", type=int, default=50000)
    pms.add_argument("--reset", action="store_true", help="drop the PMS tables and seed them afresh")
    pms.add_argument("--interval", type=float, default=5.0, help="seconds between rounds of changes")
    pms.add_argument("--changes", type=int, default=20, help="rows changed per round")
    pms.add_argument("--ticks", type=int, default=None, help="stop after this many rounds (default: never)")
    pms.set_defaults(func=_sim_pms)
    dispatch = sims.add_parser(
        "dispatch", help="dispatch automation and metering: CIM/E and curve CSV load files into a folder"
    )
    dispatch.add_argument("--out", required=True, help="folder to write into (the hub's <drop_dir>/incoming)")
    dispatch.add_argument("--seed", type=int, default=20261126)
    dispatch.add_argument("--start", help="first simulated day, YYYY-MM-DD (default: a week ago)")
    dispatch.add_argument("--days", type=int, default=None, help="stop after this many days (default: never)")
    dispatch.add_argument("--interval", type=float, default=10.0, help="seconds between simulated days")
    dispatch.add_argument("--faults", default="", help="comma-separated triggers or all (see faults.py)")
    dispatch.add_argument("--fault-rate", type=float, default=0.0, help="chance of a faulty file a day, 0-1")
    dispatch.add_argument("--oversize-bytes", type=int, default=3 * 1024**3, help="size of oversized files")
    dispatch.add_argument("--hold", type=float, default=5.0, help="pause of the still_writing trigger (s)")
    dispatch.add_argument("--manifest", help="append what was written, and the hub's expected outcome, here")
    dispatch.add_argument("--pms-db", help="read the equipment from this PMS database (default: seed one)")
    dispatch.add_argument("--pms-seed", type=int, default=20261126, help="seed of the PMS grid to measure")
    dispatch.add_argument("--feeders", type=int, default=200, help="feeders to measure")
    dispatch.add_argument("--transformers", type=int, default=1000, help="transformers to measure")
    dispatch.add_argument(
        "--history-years",
        type=int,
        default=None,
        help="write this many years of daily curves at once (simulators/dispatch/history.py), from --start "
        "or 1 January that many years ago, and stop",
    )
    dispatch.set_defaults(func=_sim_dispatch)
    _add_sim_all(sims)
    _add_scenario(commands)

    from yekuo import audit, auth, pii

    pii.add_parser(commands)
    audit.add_parser(commands)
    auth.add_parser(commands)
    return parser


def _add_sim_all(sims: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    every = sims.add_parser(
        "all",
        help="marketing, PMS and dispatch simulators together on one seeded world",
        description="One seed gives one world: the PMS grid is seeded, the marketing customers are placed "
        "next to its transformers, the dispatch files measure its feeders and transformers. Serves the "
        "marketing system in the foreground; PMS and dispatch change in the background.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    every.add_argument("--host", default="127.0.0.1", help="marketing simulator: address to listen on")
    every.add_argument("--port", type=int, default=8001, help="marketing simulator: port, 0 for any")
    every.add_argument("--seed", type=int, default=20261126, help="seed of the whole world")
    every.add_argument("--customers", type=int, default=150, help="marketing customers")
    every.add_argument("--applications", type=int, default=200, help="marketing applications")
    every.add_argument("--substations", type=int, default=100, help="PMS substations")
    every.add_argument("--feeders", type=int, default=2000, help="PMS 10 kV feeders")
    every.add_argument("--transformers", type=int, default=50000, help="PMS distribution transformers")
    every.add_argument(
        "--pms-db-url", default="sqlite:///var/pms.db", help="SQLAlchemy URL of the PMS database"
    )
    every.add_argument("--reset", action="store_true", help="drop the PMS tables and seed them afresh")
    every.add_argument(
        "--pms-interval", type=float, default=5.0, help="PMS: seconds between rounds of changes"
    )
    every.add_argument("--pms-changes", type=int, default=20, help="PMS: rows changed per round")
    every.add_argument(
        "--dispatch-out", default="var/dispatch/incoming", help="dispatch: folder the files are written to"
    )
    every.add_argument(
        "--dispatch-interval", type=float, default=10.0, help="dispatch: seconds between simulated days"
    )
    every.add_argument("--dispatch-days", type=int, default=None, help="dispatch: stop after this many days")
    every.add_argument("--dispatch-start", help="dispatch: first simulated day, YYYY-MM-DD (a week ago)")
    every.add_argument(
        "--dispatch-faults", default="", help="dispatch: comma-separated fault triggers, or all"
    )
    every.add_argument(
        "--dispatch-fault-rate", type=float, default=0.0, help="dispatch: chance of a faulty file a day, 0-1"
    )
    every.add_argument(
        "--fault",
        action="append",
        default=[],
        help="marketing: fault[:op=O][:calls=N-M][:app=A][:delay=S][:after=S][:for=S], repeatable",
    )
    every.set_defaults(func=_sim_all)


def _add_scenario(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    scenario = commands.add_parser("scenario", help="rehearse the hub against the simulators")
    scenarios = scenario.add_subparsers(dest="scenario_command", required=True)
    run = scenarios.add_parser(
        "run",
        help="run a scenario file and check its expectations (exit 0 pass, 1 fail, 2 invalid file)",
        description="Runs the hub against the three simulators on the scenario's seeded world, plays its "
        "fault schedule, shows progress, then prints a pass/fail report of its expectations.",
    )
    run.add_argument("file", help="scenario YAML file, e.g. scenarios/normal-day.yaml")
    run.add_argument(
        "--db-url", help="hub database; it is emptied first (default: SQLite in a temporary folder)"
    )
    run.add_argument("--bus-url", help="bus (default: a private in-process bus)")
    run.add_argument("--work-dir", help="keep the PMS database and drop folder here (default: temporary)")
    run.add_argument("--json", action="store_true", help="print the report as JSON (progress on stderr)")
    run.set_defaults(func=_scenario_run)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `yekuo` console script."""
    from ground.logs import configure

    args = build_parser().parse_args(argv)
    configure()
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
