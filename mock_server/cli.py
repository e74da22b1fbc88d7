"""The ``wavespeed-mock`` command: serve, schemas build/check/parse, drift docs, conformance."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from mock_server import settings as settings_mod
from mock_server.resources import data_dir


def _schemas_dir(value: str | None) -> Path:
    return Path(value) if value else data_dir("schemas")


def cmd_serve(args: argparse.Namespace) -> int:
    from mock_server.http.app import ScenarioFileError
    from mock_server.http.server import serve

    if args.workers != 1:
        sys.stderr.write("wavespeed-mock: --workers must be 1: predictions live in one process's memory, so a "
                         "poll landing on another worker would answer 404.\n")
        return 2
    try:
        config = settings_mod.from_arguments(args)
    except ValueError as exc:
        sys.stderr.write(f"wavespeed-mock: {exc}\n")
        return 2
    try:
        serve(config)
    except ScenarioFileError as exc:  # one readable line, not a traceback
        sys.stderr.write(f"wavespeed-mock: {exc}\n")
        return 2
    return 0


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


def cmd_drift_docs(args: argparse.Namespace) -> int:
    from mock_server.contract.drift import run_drift_docs

    return run_drift_docs(args.old, args.new, fmt=args.format, stream=sys.stdout)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wavespeed-mock", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the fake WaveSpeed API server",
                           description="Run the fake WaveSpeed API. Every option also reads an environment variable.")
    settings_mod.add_arguments(serve)
    serve.add_argument("--workers", type=int, default=1, help="must be 1 (state is in memory)")
    serve.set_defaults(handler=cmd_serve)

    schemas = sub.add_parser("schemas", help="generate or check the JSON Schemas").add_subparsers(
        dest="action", required=True)
    for name, handler, text in (("build", cmd_schemas_build, "regenerate schemas from the source tables"),
                                ("check", cmd_schemas_check, "exit 1 when committed schemas are stale")):
        action = schemas.add_parser(name, help=text)
        action.add_argument("--out", help="schemas directory (default: the installed one)")
        action.add_argument("--sources", help="source tables directory (default: OUT/sources)")
        action.set_defaults(handler=handler)
    parse = schemas.add_parser("parse", help="parse a saved doc page into a source table")
    parse.add_argument("page")
    parse.add_argument("--write", metavar="FILE", help="write the table here instead of printing it")
    parse.set_defaults(handler=cmd_schemas_parse)

    drift = sub.add_parser("drift", help="report drift").add_subparsers(dest="action", required=True)
    docs = drift.add_parser("docs", help="classified diff of two doc pages or source tables (exit 1 if breaking)")
    docs.add_argument("old")
    docs.add_argument("new")
    docs.add_argument("--format", choices=("text", "json"), default="text")
    docs.set_defaults(handler=cmd_drift_docs)

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
    result: int = args.handler(args)
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
