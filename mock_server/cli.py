"""The ``wavespeed-mock`` command: serve, proxy, schemas build/check/parse/add, drift docs/live/report, conformance."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from mock_server import __version__
from mock_server import settings as settings_mod
from mock_server.resources import data_dir


class _Parser(argparse.ArgumentParser):
    """Usage mistakes as one line that names the command's --help, instead of the whole usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"wavespeed-mock: {message} (see {self.prog} --help)\n")


def _one_line(exc: BaseException) -> str:
    return "; ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__


def _schemas_dir(value: str | None) -> Path:
    return Path(value) if value else data_dir("schemas")


def cmd_serve(args: argparse.Namespace) -> int:
    from mock_server.http.app import ScenarioFileError
    from mock_server.http.server import serve

    try:
        config = settings_mod.from_arguments(args)
    except ValueError as exc:
        sys.stderr.write(f"wavespeed-mock: {exc}\n")
        return 2
    if config.schemas:
        from mock_server.contract.catalog import catalog_for

        # Load the user's schemas before uvicorn starts, so a bad folder is one line and exit 2, not a traceback.
        try:
            catalog_for(config.schemas)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            sys.stderr.write(f"wavespeed-mock: --schemas {config.schemas}: {_reason(exc)}\n")
            return 2
    if config.replay:
        from mock_server.contract.catalog import catalog_for
        from mock_server.model.replay import Replayer

        # Likewise the cassettes: a bad one is one line naming the file, before any worker starts.
        try:
            Replayer.load(
                config.replay, catalog_for(config.schemas), speed=config.replay_speed, mode=config.replay_mode
            )
        except ValueError as exc:
            sys.stderr.write(f"wavespeed-mock: {exc}\n")
            return 2
    try:
        serve(config)
    except ScenarioFileError as exc:  # one readable line, not a traceback
        sys.stderr.write(f"wavespeed-mock: {exc}\n")
        return 2
    return 0


def _reason(exc: BaseException) -> str:
    return f"missing {exc}" if isinstance(exc, KeyError) else str(exc)


def cmd_schemas_build(args: argparse.Namespace) -> int:
    from mock_server.contract import generator

    out = _schemas_dir(args.out)
    sources = Path(args.sources) if args.sources else out / "sources"
    changed = generator.write(out, generator.build(generator.load_sources(sources)))
    for name in changed:
        sys.stdout.write(f"wrote {name}\n")
    sys.stdout.write(f"{len(changed)} file(s) changed in {out}\n")
    return 0


def cmd_schemas_check(args: argparse.Namespace) -> int:
    from mock_server.contract import generator

    out = _schemas_dir(args.out)
    sources = Path(args.sources) if args.sources else out / "sources"
    stale = generator.diff(out, generator.build(generator.load_sources(sources)))
    if stale:
        sys.stdout.write("committed schemas differ from what the sources generate:\n")
        for name in stale:
            sys.stdout.write(f"  {name}\n")
        sys.stdout.write("run `wavespeed-mock schemas build` and commit the result\n")
        return 1
    sys.stdout.write(f"schemas are fresh ({out})\n")
    return 0


def cmd_schemas_parse(args: argparse.Namespace) -> int:
    from mock_server.contract.docpages import PageParseError, parse_page_file

    try:
        table = parse_page_file(Path(args.page))
    except (OSError, PageParseError) as exc:
        sys.stderr.write(f"wavespeed-mock: {exc}\n")
        return 2
    text = table.dumps()
    if args.write:
        target = Path(args.write)
        target.write_text(text, encoding="utf-8")
        sys.stdout.write(f"wrote {target}\n")
    else:
        sys.stdout.write(text)
    return 0


def cmd_schemas_add(args: argparse.Namespace) -> int:
    from mock_server.contract.userschemas import add

    into = args.into or os.environ.get(settings_mod.PREFIX + "SCHEMAS")
    if not into:
        sys.stderr.write("wavespeed-mock schemas add: say where with --into DIR (or set WAVESPEED_MOCK_SCHEMAS)\n")
        return 2
    try:
        added = add(args.source, into, args.models or ())
    except (OSError, ValueError, KeyError, TypeError) as exc:  # PageParseError and CatalogError are ValueErrors
        sys.stderr.write(f"wavespeed-mock schemas add: {_reason(exc)}\n")
        return 2
    for table, path in zip(added.tables, added.written, strict=True):
        sys.stdout.write(f"added {table.key} -> {path}\n")
    sys.stdout.write(
        f"{len(added.changed)} generated file(s) changed in {into}; "
        f"serve them with: wavespeed-mock serve --schemas {into}\n"
    )
    return 0


def cmd_drift_docs(args: argparse.Namespace) -> int:
    from mock_server.contract.drift import run_drift_docs

    return run_drift_docs(args.old, args.new, fmt=args.format, stream=sys.stdout)


def cmd_drift_live(args: argparse.Namespace) -> int:
    from mock_server.contract.livedrift import run_drift_live

    return run_drift_live(
        target=args.target,
        catalog_file=args.catalog,
        models=args.models or (),
        fmt=args.format,
        schemas=args.schemas,
        stream=sys.stdout,
    )


def cmd_proxy(args: argparse.Namespace) -> int:
    from mock_server.http.proxy import ProxyConfig, serve_proxy

    try:
        config = ProxyConfig(
            upstream=args.upstream,
            record_dir=Path(args.record) if args.record else None,
            report_path=Path(args.report) if args.report else None,
            placeholders=args.placeholders,
            timeout=args.timeout,
            fetch_outputs=args.fetch_outputs,
        ).validated()
    except ValueError as exc:
        sys.stderr.write(f"wavespeed-mock proxy: {exc}\n")
        return 2
    if args.placeholders and not args.record:
        sys.stderr.write("wavespeed-mock proxy: --placeholders only applies with --record DIR\n")
        return 2
    serve_proxy(config, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def cmd_drift_report(args: argparse.Namespace) -> int:
    from mock_server.contract.report import run_drift_report

    return run_drift_report(args.files, fmt=args.format, stream=sys.stdout)


def _add_proxy_parser(sub: Any) -> None:
    proxy = sub.add_parser(
        "proxy",
        help="pass requests through to a real API, checking every answer against the schemas",
        description="Forward every request to --upstream unchanged (the client's Authorization passes through and "
        "is never stored) and return its answer unchanged. Every JSON answer of /api/v3/ is checked "
        "against the schemas; each difference is named in an X-WaveSpeed-Mock-Drift header and kept in "
        "--report. --record DIR writes one lifecycle cassette per prediction.",
    )
    proxy.add_argument(
        "--upstream", required=True, metavar="URL", help="the API to forward to, e.g. https://api.wavespeed.ai"
    )
    proxy.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    proxy.add_argument("--port", type=int, default=8080, help="TCP port (default 8080; 0 picks a free one)")
    proxy.add_argument("--record", metavar="DIR", help="write a cassette per prediction here (media under DIR/media)")
    proxy.add_argument("--report", metavar="FILE", help="keep the drift findings in this JSON file")
    proxy.add_argument(
        "--placeholders",
        action="store_true",
        help="with --record: store a generated picture of the same size and format instead of each output",
    )
    proxy.add_argument(
        "--fetch-outputs",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="with --record: download outputs at the terminal poll to measure them (default on; off: "
        "only outputs downloaded through the proxy are measured)",
    )
    proxy.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="how long an upstream answer may take (default 600: sync mode can take minutes)",
    )
    proxy.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    proxy.set_defaults(handler=cmd_proxy)


def _add_drift_report_parser(drift: Any) -> None:
    report = drift.add_parser(
        "report",
        help="combine drift docs/live, proxy and conformance reports (exit 1 if breaking)",
        description="Read JSON reports of drift docs, drift live, the proxy (--report) and conformance (--report); "
        "print every finding classified by source and breaking/non-breaking. Exit 1 on any breaking "
        "finding, 0 otherwise, 2 when an input cannot be read.",
    )
    report.add_argument("files", nargs="+", metavar="FILE")
    report.add_argument("--format", choices=("text", "json"), default="text")
    report.set_defaults(handler=cmd_drift_report)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="wavespeed-mock", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser(
        "serve",
        help="run the fake WaveSpeed API server",
        description="Run the fake WaveSpeed API. Every option also reads an environment variable.",
    )
    settings_mod.add_arguments(serve)
    serve.set_defaults(handler=cmd_serve)

    schemas = sub.add_parser("schemas", help="generate or check the JSON Schemas").add_subparsers(
        dest="action", required=True
    )
    for name, handler, text in (
        ("build", cmd_schemas_build, "regenerate schemas from the source tables"),
        ("check", cmd_schemas_check, "exit 1 when committed schemas are stale"),
    ):
        action = schemas.add_parser(name, help=text)
        action.add_argument("--out", help="schemas directory (default: the installed one)")
        action.add_argument("--sources", help="source tables directory (default: OUT/sources)")
        action.set_defaults(handler=handler)
    parse = schemas.add_parser("parse", help="parse a saved doc page into a source table")
    parse.add_argument("page")
    parse.add_argument("--write", metavar="FILE", help="write the table here instead of printing it")
    parse.set_defaults(handler=cmd_schemas_parse)
    add = schemas.add_parser(
        "add",
        help="add a saved doc page or a model catalog JSON to a schemas folder for serve --schemas",
        description="Write the source table(s) of SOURCE into DIR/sources and generate DIR's schemas, so that "
        "`wavespeed-mock serve --schemas DIR` serves them on top of the shipped endpoints.",
    )
    add.add_argument(
        "source",
        metavar="SOURCE",
        help="a saved WaveSpeed doc page, a GET /api/v3/models JSON (envelope or list), or a source table",
    )
    add.add_argument("--into", metavar="DIR", help="the schemas folder (default: $WAVESPEED_MOCK_SCHEMAS)")
    add.add_argument(
        "--models",
        metavar="GLOB",
        action="append",
        help="from a catalog, only the models matching this glob (repeatable; default: all)",
    )
    add.set_defaults(handler=cmd_schemas_add)

    drift = sub.add_parser("drift", help="report drift").add_subparsers(dest="action", required=True)
    docs = drift.add_parser("docs", help="classified diff of two doc pages or source tables (exit 1 if breaking)")
    docs.add_argument("old")
    docs.add_argument("new")
    docs.add_argument("--format", choices=("text", "json"), default="text")
    docs.set_defaults(handler=cmd_drift_docs)
    live = drift.add_parser(
        "live",
        help="the fake's schemas against the live GET /api/v3/models catalog (exit 1 if breaking)",
        description="Diff the request schemas the fake serves against the live model catalog (or a saved one), "
        "with the classification of `drift docs`. Exit 1 on breaking drift, 2 on usage or fetch errors.",
    )
    live.add_argument(
        "--target",
        metavar="URL",
        help="API to read GET /api/v3/models from, with $WAVESPEED_API_KEY (default https://api.wavespeed.ai)",
    )
    live.add_argument("--catalog", metavar="FILE", help="a saved catalog JSON instead of a live API")
    live.add_argument(
        "--models",
        metavar="GLOB",
        action="append",
        help="compare the models of either side matching this glob (repeatable; default: every model the fake serves)",
    )
    live.add_argument("--schemas", metavar="DIR", help="also the fake's extra schemas folder (as serve --schemas)")
    live.add_argument("--format", choices=("text", "json"), default="text")
    live.set_defaults(handler=cmd_drift_live)

    _add_drift_report_parser(drift)
    _add_proxy_parser(sub)

    # Dispatched in main() before argparse so that pytest options pass through untouched.
    sub.add_parser("conformance", help="run the conformance suite against the fake or a URL (see its --help)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["conformance"]:
        from mock_server.testing.conformance_runner import main as conformance_main

        exit_code: int = conformance_main(argv[1:])
        return exit_code
    args = build_parser().parse_args(argv)
    try:
        result: int = args.handler(args)
    except (ValueError, OSError) as exc:
        # Bad input (a scenario file, a setting, a file to read) is the user's to fix: no traceback to read past.
        sys.stderr.write(f"wavespeed-mock: {_one_line(exc)}\n")
        return 2
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
